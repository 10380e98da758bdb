"""Measured latency on this host (ONNX Runtime and eager PyTorch), through edgeslim.measure.

Every figure here is measured; results carry `label = "measured"`. Threads are pinned; models are timed
in interleaved rounds when compared, and the spread of the per-round medians is reported.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..measure import LatencyStats, compare_latency, measure_latency, time_calls


@dataclass(frozen=True)
class ShapeSpec:
    """A random BERT classifier shape to time (head_dim 64 unless heads says otherwise; FFN = 4 x hidden)."""

    layers: int
    hidden: int
    seq_len: int
    batch: int = 1
    heads: int = 0
    vocab: int = 8000

    @property
    def name(self) -> str:
        return f"L{self.layers}-H{self.hidden}-S{self.seq_len}-B{self.batch}"

    def config(self) -> dict[str, Any]:
        """A BERT config.json-style dict of this shape (what the predictor reads)."""
        heads = self.heads or max(1, self.hidden // 64)
        return {"model_type": "bert", "num_hidden_layers": self.layers, "hidden_size": self.hidden,
                "num_attention_heads": heads, "intermediate_size": 4 * self.hidden, "vocab_size": self.vocab,
                "max_position_embeddings": 512, "type_vocab_size": 2, "num_labels": 2}


def text_feed(batch: int, seq_len: int, vocab: int, seed: int = 0) -> dict[str, Any]:
    """Random token ids with a full attention mask, as numpy int64 (ONNX Runtime feed)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return {"input_ids": rng.integers(0, vocab, (batch, seq_len), dtype=np.int64),
            "attention_mask": np.ones((batch, seq_len), dtype=np.int64),
            "token_type_ids": np.zeros((batch, seq_len), dtype=np.int64)}


def onnx_runner(onnx_path: str | Path, feed: dict[str, Any], threads: int = 2) -> Callable[[], Any]:
    """A zero-argument callable running one ONNX Runtime inference on `feed`."""
    from ..runtime.onnx_rt import make_session

    sess = make_session(onnx_path, threads)
    names = {i.name for i in sess.get_inputs()}
    feed = {k: v for k, v in feed.items() if k in names}
    return lambda: sess.run(None, feed)


def torch_runner(model: Any, feed: dict[str, Any], threads: int = 2) -> Callable[[], Any]:
    """A zero-argument callable running one eager PyTorch inference (no grad) on `feed`."""
    import torch

    torch.set_num_threads(threads)
    tfeed = {k: torch.from_numpy(v) for k, v in feed.items()}

    def run() -> Any:
        with torch.inference_mode():
            return model(**tfeed)

    return run


def iters_for(fn: Callable[[], Any], budget_s: float, lo: int = 5, hi: int = 200) -> int:
    """How many timed calls fit in `budget_s` (one call is timed to estimate)."""
    one = min(time_calls(fn, 2)) / 1000
    return int(max(lo, min(hi, budget_s / max(one, 1e-6))))


def shape_runner(spec: ShapeSpec, folder: str | Path, threads: int = 2) -> Callable[[], Any]:
    """Export a random BERT of `spec`'s shape to ONNX in `folder`; return a callable running it in ONNX Runtime."""
    from ..models.tiny import tiny_bert
    from ..runtime.onnx_export import export_text_model_to_onnx

    cfg = spec.config()
    model = tiny_bert("classification", layers=spec.layers, hidden=spec.hidden, heads=cfg["num_attention_heads"],
                      ffn=cfg["intermediate_size"], vocab=spec.vocab, max_positions=512)
    path = export_text_model_to_onnx(model, Path(folder) / f"{spec.name}.onnx", seq_len=16)
    return onnx_runner(path, text_feed(spec.batch, spec.seq_len, spec.vocab), threads)


def measure_shape(spec: ShapeSpec, threads: int = 2, budget_s: float = 1.5, workdir: str | Path | None = None
                  ) -> LatencyStats:
    """Time a random BERT of `spec`'s shape in ONNX Runtime (batch x seq_len), after warm-up."""
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        fn = shape_runner(spec, tmp, threads)
        time_calls(fn, 3)
        return measure_latency(fn, warmup=2, iters=iters_for(fn, budget_s))


def measure_shapes_rounds(specs: list[ShapeSpec], threads: int = 2, rounds: int = 3, budget_s: float = 0.6,
                          progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Time many shapes in interleaved rounds (every shape once per round, order rotated).

    On a shared machine a neighbour's burst slows whichever shape is running; the least-disturbed round is the
    best estimate of the undisturbed latency, so each shape reports `best_round_p50_ms` (the minimum over rounds
    of that round's median) together with all round medians and the pooled p50/p95/p99.
    """
    say = progress or (lambda s: None)
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"shapes to time must have distinct names, got {names}")
    with tempfile.TemporaryDirectory() as tmp:
        fns: dict[str, Callable[[], Any]] = {}
        iters: dict[str, int] = {}
        for spec in specs:
            fn = shape_runner(spec, tmp, threads)
            time_calls(fn, 3)
            fns[spec.name] = fn
            iters[spec.name] = iters_for(fn, budget_s, lo=3, hi=100)
        say(f"exported {len(specs)} shapes; timing {rounds} interleaved rounds")
        cmp = compare_latency(fns, rounds=rounds, iters=iters, warmup=0,
                              on_round=lambda r: say(f"round {r + 1}/{rounds} done"))
    return [{"shape": name, "best_round_p50_ms": min(cmp.round_medians[name]), "round_p50_ms": cmp.round_medians[name],
             **cmp.stats[name].to_dict()} for name in fns]


def measure_artifact(art: Any, *, batch: int, seq_len: int, vocab: int, threads: int = 2, budget_s: float = 6.0,
                     torch_too: bool = True) -> dict[str, Any]:
    """Time an artifact on this host in ONNX Runtime (an HF artifact is exported to a temp file first) and,
    for HF artifacts, in eager PyTorch, in interleaved rounds. Returns stats per runtime plus the round spread."""
    from ..runtime.onnx_rt import onnx_file

    feed = text_feed(batch, seq_len, vocab)
    fns: dict[str, Callable[[], Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if art.format == "onnx":
            fns["onnxruntime"] = onnx_runner(onnx_file(art), feed, threads)
        elif art.format == "hf":
            from ..models.hf import artifact_kind, load_model
            from ..runtime.onnx_export import export_text_model_to_onnx

            kind = artifact_kind(art) or "classification"
            model = load_model(art.path, kind)
            if kind in ("classification", "regression"):
                path = export_text_model_to_onnx(model, Path(tmp) / "model.onnx", seq_len=min(seq_len, 16))
                fns["onnxruntime"] = onnx_runner(path, feed, threads)
            if torch_too:
                fns["pytorch"] = torch_runner(model, feed, threads)
        else:
            from ..errors import StepError

            raise StepError(f"measuring {art.format!r} artifacts on this host is not supported; "
                            "measured latency covers onnx and hf artifacts (other formats are predicted only)")
        for fn in fns.values():
            time_calls(fn, 2)
        one_s = sum(min(time_calls(fn, 2)) for fn in fns.values()) / 1000
        rounds = 5
        iters = int(max(5, min(50, budget_s / rounds / max(one_s, 1e-6))))
        cmp = compare_latency(fns, rounds=rounds, iters=iters, warmup=2)
    out = {"label": "measured", "threads": threads, "batch": batch, "seq_len": seq_len, "rounds": rounds,
           "iters_per_round": iters, "host": cmp.host, "runtimes": {}}
    for name, st in cmp.stats.items():
        meds = cmp.round_medians[name]
        out["runtimes"][name] = {**st.to_dict(), "round_median_min_ms": round(min(meds), 4),
                                 "round_median_max_ms": round(max(meds), 4)}
    return out
