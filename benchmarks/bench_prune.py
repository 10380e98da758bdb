"""Pruning benchmark on the SST-2 teacher: vocabulary pruning (train+dev vs train-only text) and the structured
pruned model (heads/FFN, made beforehand with `edgeslim prune`), against the unpruned teacher.

Reports params, embedding params, safetensors size, SST-2 dev accuracy (PyTorch FP32, batch 32, padded to the longest
sentence in length-sorted batches), predictions that differ from the teacher, and ONNX Runtime FP32 latency at batch 1,
seq 128 (2 threads) measured interleaved with the teacher (`edgeslim.measure.compare_latency`).

Run under the shared lock:
    flock /tmp/edgeslim-heavy.lock .venv/bin/python benchmarks/bench_prune.py \
        --teacher runs/teacher-sst2 --pruned runs/prune/sst2-h50-f50
(benchmarks/run_all.py makes the pruned model first: `make bench` or `benchmarks/run_all.py --only prune`.)
Writes benchmarks/out/bench_prune.json and .md and prints the table.
"""
from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import resolve_teacher


def dev_outputs(model: Any, tok: Any, task: Any) -> np.ndarray:
    from edgeslim.evaluate.text import EvalSettings, predict_text
    from edgeslim.runtime.torch_rt import torch_forward

    examples = task.load("dev")
    return predict_text(torch_forward(model), tok, examples, EvalSettings("dev", 32, 128))


def weights_mb(model: Any) -> float:
    """Size of the model's safetensors file in MB (written to a temp folder)."""
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        return round((Path(tmp) / "model.safetensors").stat().st_size / 1e6, 2)


def row(name: str, model: Any, tok: Any, task: Any, ref_preds: np.ndarray | None) -> tuple[dict[str, Any], np.ndarray]:
    from edgeslim.models.pruned import count_params

    out = dev_outputs(model, tok, task)
    preds = out.argmax(-1)
    labels = np.array([e.label for e in task.load("dev")])
    r = {"model": name, "params": count_params(model),
         "embedding_params": model.get_input_embeddings().weight.numel(),
         "vocab": model.config.vocab_size, "weights_mb": weights_mb(model),
         "dev_accuracy": float((preds == labels).mean()),
         "preds_differ_from_teacher": None if ref_preds is None else int((preds != ref_preds).sum())}
    return r, preds


def onnx_latency(models: dict[str, Any], reference: str, seq_len: int, rounds: int, iters: int) -> dict[str, Any]:
    from edgeslim.measure import compare_latency
    from edgeslim.runtime.onnx_rt import make_session
    from edgeslim.export.onnx import export_text_model_to_onnx

    feed = {"input_ids": np.full((1, seq_len), 1000, np.int64), "attention_mask": np.ones((1, seq_len), np.int64),
            "token_type_ids": np.zeros((1, seq_len), np.int64)}
    with tempfile.TemporaryDirectory() as tmp:
        fns, sizes = {}, {}
        for name, m in models.items():
            f = export_text_model_to_onnx(m, Path(tmp) / f"{name}.onnx")
            sizes[name] = round(f.stat().st_size / 1e6, 2)
            sess = make_session(f, 2)
            fns[name] = (lambda s: (lambda: s.run(None, feed)))(sess)
        cmp = compare_latency(fns, reference=reference, rounds=rounds, iters=iters)
    d = cmp.to_dict()
    d["onnx_mb"] = sizes
    d["speedup"] = {n: round(cmp.speedup(n), 3) for n in models}
    return d


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--teacher", default=None, help="fine-tuned teacher [$EDGESLIM_BENCH_TEACHER, runs/teacher-sst2 "
                                                    "if present, else runs/demo/01-finetune]")
    ap.add_argument("--pruned", default=None, help="structured-pruned artifact (edgeslim prune output)")
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--out", default="benchmarks/out")
    args = ap.parse_args()
    args.teacher = args.teacher or str(resolve_teacher())

    import torch

    from edgeslim.measure import host_facts
    from edgeslim.models.hf import load_model, load_tokenizer
    from edgeslim.prune.step import structure_of, vocab_texts
    from edgeslim.models.vocab import collect_vocab, prune_vocab
    from edgeslim.tasks import get_task

    torch.set_num_threads(2)
    task = get_task("sst2")
    t0 = time.perf_counter()
    teacher, tok = load_model(args.teacher, "classification"), load_tokenizer(args.teacher)
    rows: list[dict[str, Any]] = []
    r, ref = row("teacher", teacher, tok, task, None)
    rows.append(r)
    vocab_ids = {}
    for which, label in (("task", "train+dev"), ("train", "train only")):
        keep = collect_vocab(tok, vocab_texts(task, which, None))
        vocab_ids[which] = keep
        m, t = prune_vocab(copy.deepcopy(teacher), tok, keep)
        r, _ = row(f"teacher + vocab ({label})", m, t, task, ref)
        rows.append(r)
    latency = None
    if args.pruned:
        pruned, ptok = load_model(args.pruned, "classification"), load_tokenizer(args.pruned)
        r, _ = row("heads+FFN pruned (recovered)", pruned, ptok, task, ref)
        rows.append(r)
        m, t = prune_vocab(copy.deepcopy(pruned), ptok, collect_vocab(ptok, vocab_texts(task, "train", None)))
        r, _ = row("heads+FFN pruned + vocab (train only)", m, t, task, ref)
        rows.append(r)
        latency = onnx_latency({"teacher": teacher, "pruned": pruned}, "teacher", args.seq_len, args.rounds, args.iters)
        rows[0]["onnx_p50_ms"] = round(latency["stats"]["teacher"]["p50_ms"], 2)
        rows[-2]["onnx_p50_ms"] = round(latency["stats"]["pruned"]["p50_ms"], 2)
        rows[-2]["speedup_vs_teacher"] = latency["speedup"]["pruned"]
        lo, hi = latency["ratio_spread"]["pruned"]
        rows[-2]["speedup_spread"] = [round(1 / hi, 3), round(1 / lo, 3)]
        shape = structure_of(pruned)
        rows[-2]["heads_per_layer"], rows[-2]["ffn_per_layer"] = shape["heads_per_layer"], shape["ffn_per_layer"]
    result = {"rows": rows, "latency": latency, "host": host_facts(), "seconds": round(time.perf_counter() - t0, 1),
              "settings": {"accuracy": "PyTorch FP32, batch 32, longest-in-batch padding, length-sorted",
                           "latency": f"ONNX Runtime FP32, batch 1, seq {args.seq_len}, 2 threads, interleaved "
                                      f"{args.rounds} rounds x {args.iters} iters, paired per-round ratio"},
              "teacher": args.teacher, "pruned": args.pruned}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_prune.json").write_text(json.dumps(result, indent=2, default=str))
    cols = ["model", "params", "embedding_params", "weights_mb", "dev_accuracy", "preds_differ_from_teacher",
            "onnx_p50_ms", "speedup_vs_teacher"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c)
            cells.append("-" if v is None else f"{v:.4f}" if c == "dev_accuracy" else f"{v:,}" if isinstance(v, int)
                         else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    (out / "bench_prune.md").write_text(table + "\n")
    print(table)
    if latency:
        print(f"speedup spread over rounds: {rows[-2]['speedup_spread']}; "
              f"host CPU flags: {result['host'].get('cpu_flags')}")


if __name__ == "__main__":
    main()
