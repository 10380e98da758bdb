"""Structured pruning that physically removes attention heads, FFN neurons, encoder layers and vocabulary rows.

Flow of the `prune` step: importance on a calibration set -> (optional) search of the pruning ratio that meets a
parameter or latency target -> remove the least important units in `iterations` rounds, each followed by recovery
fine-tuning (optionally distilled from the unpruned model) -> (optional) vocabulary pruning -> save -> dev metrics.
How the pruned shapes are stored and reloaded: see `edgeslim.models.pruned`.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import random
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ..artifact import ModelArtifact
from ..context import RunContext
from ..errors import ConfigError, StepError
from ..fileio import atomic_dir
from ..registry import register_step

SCORES = ("gradient", "magnitude")
SCOPES = ("layer", "global")
VOCABS = ("task", "train")


@dataclass(frozen=True)
class PruneConfig:
    """Remove the least important heads/FFN neurons/layers (and unused vocabulary), then recover by fine-tuning."""

    heads: float = 0.0               # share of attention heads removed, in [0, 1)
    ffn: float = 0.0                 # share of FFN neurons removed, in [0, 1)
    drop_layers: int = 0             # number of least important encoder layers removed
    vocab: str | None = None         # None | "task" (train file + dev text) | "train" (train text, val carved out)
    score: str = "gradient"          # "gradient" (Michel et al.) | "magnitude"
    scope: str = "layer"             # "layer": same share in every layer | "global": ranked across layers
    calib_samples: int = 512         # training examples used for importance scores
    recover_minutes: float = 0.0     # recovery fine-tuning budget (split over the iterations)
    iterations: int = 1              # prune in this many rounds, recovering after each
    distill: bool = True             # recovery loss mixes soft labels of the unpruned model (KL, temperature T)
    kd_alpha: float = 0.5
    kd_temperature: float = 2.0
    lr: float = 1e-4                 # recovery peak learning rate (the teacher's fine-tuning default)
    batch_size: int = 32
    max_length: int = 128
    target_params: int | None = None       # prune (up to heads/ffn ratios) until params <= this
    target_latency_ms: float | None = None  # ... or until latency (batch 1, target_seq_len) <= this
    latency_source: str = "onnxruntime"    # "onnxruntime" (measured here) or a hardware profile name (predicted)
    target_seq_len: int = 128
    eval: bool = True                # score the pruned model on the dev split
    checkpoint_minutes: float = 2.0  # recovery checkpoints: a re-run after a crash resumes from the last one

    def __post_init__(self) -> None:
        for name in ("heads", "ffn"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not 0 <= v < 1:
                raise ConfigError(f"prune: {name} must be in [0, 1) (share of units removed), got {v!r}; "
                                  "to remove whole layers use drop_layers")
        if not isinstance(self.drop_layers, int) or self.drop_layers < 0:
            raise ConfigError(f"prune: drop_layers must be an integer >= 0, got {self.drop_layers!r}")
        if self.vocab not in (None,) + VOCABS:
            raise ConfigError(f"prune: vocab must be one of {', '.join(VOCABS)} or unset, got {self.vocab!r}")
        if self.score not in SCORES:
            raise ConfigError(f"prune: score must be one of {', '.join(SCORES)}, got {self.score!r}")
        if self.scope not in SCOPES:
            raise ConfigError(f"prune: scope must be one of {', '.join(SCOPES)}, got {self.scope!r}")
        if self.calib_samples < 1 or self.batch_size < 1 or self.iterations < 1:
            raise ConfigError("prune: calib_samples, batch_size and iterations must be >= 1")
        if not self.checkpoint_minutes > 0:
            raise ConfigError(f"prune: checkpoint_minutes must be > 0, got {self.checkpoint_minutes}")
        if self.recover_minutes < 0:
            raise ConfigError(f"prune: recover_minutes must be >= 0, got {self.recover_minutes}")
        if not 0 <= self.kd_alpha <= 1 or self.kd_temperature <= 0 or self.lr <= 0:
            raise ConfigError("prune: kd_alpha must be in [0, 1], kd_temperature and lr > 0")
        if self.target_params is not None and self.target_latency_ms is not None:
            raise ConfigError("prune: set one target (target_params or target_latency_ms), not both")
        if self.target_params is not None and self.target_params <= 0:
            raise ConfigError(f"prune: target_params must be > 0, got {self.target_params}")
        if self.target_latency_ms is not None and self.target_latency_ms <= 0:
            raise ConfigError(f"prune: target_latency_ms must be > 0, got {self.target_latency_ms}")
        if self.has_target and self.heads == 0 and self.ffn == 0:
            raise ConfigError("prune: a target needs the largest ratios to search: set heads and/or ffn > 0")

    @property
    def has_target(self) -> bool:
        return self.target_params is not None or self.target_latency_ms is not None

    @property
    def structural(self) -> bool:
        return self.heads > 0 or self.ffn > 0 or self.drop_layers > 0


# ---------------------------------------------------------------- choosing what to remove


def keep_count(n: int, ratio: float) -> int:
    """Units kept when a share `ratio` of n is removed (at least one)."""
    return max(1, n - int(ratio * n + 1e-9))


def choose_removal(scores: Sequence[Sequence[float]], keep: Sequence[int] | int, scope: str) -> list[list[int]]:
    """Indices to remove per layer (lowest scores first).

    `keep` is a per-layer count (scope "layer") or a total over all layers (scope "global"; scores are normalised by
    each layer's L2 norm, as Michel et al. do, and every layer keeps at least one unit).
    """
    if scope == "layer":
        out = []
        for s, k in zip(scores, keep):
            order = sorted(range(len(s)), key=lambda j: (s[j], j))
            out.append(sorted(order[:max(0, len(s) - k)]))
        return out
    total = int(keep)
    norm = [math.sqrt(sum(x * x for x in s)) or 1.0 for s in scores]
    best = [max(range(len(s)), key=lambda j: s[j]) for s in scores]
    kept = {(i, best[i]) for i in range(len(scores))}
    rest = sorted(((s[j] / norm[i], i, j) for i, s in enumerate(scores) for j in range(len(s))
                   if (i, j) not in kept), reverse=True)
    for _, i, j in rest[:max(0, total - len(kept))]:
        kept.add((i, j))
    return [sorted(j for j in range(len(s)) if (i, j) not in kept) for i, s in enumerate(scores)]


@dataclass
class Plan:
    """What one pruning round removes: per layer, current head indices and FFN neuron indices."""

    heads: list[list[int]]
    ffn: list[list[int]]
    layers: list[int] = field(default_factory=list)


def plan_for(imp: Any, orig_heads: Sequence[int], orig_ffn: Sequence[int], heads: float, ffn: float,
             scope: str) -> Plan:
    """Plan removing shares `heads`/`ffn` of the ORIGINAL unit counts, given scores of the current model."""
    if scope == "layer":
        kh: Any = [min(len(s), keep_count(n, heads)) for s, n in zip(imp.heads, orig_heads)]
        kf: Any = [min(len(s), keep_count(n, ffn)) for s, n in zip(imp.ffn, orig_ffn)]
    else:
        kh = min(sum(map(len, imp.heads)), keep_count(sum(orig_heads), heads))
        kf = min(sum(map(len, imp.ffn)), keep_count(sum(orig_ffn), ffn))
    return Plan(choose_removal(imp.heads, kh, scope), choose_removal(imp.ffn, kf, scope))


def apply_plan(model: Any, plan: Plan) -> None:
    """Physically remove the planned heads, neurons and layers from `model` and record the structure."""
    from ..models.pruned import (drop_layers, encoder_layers, ffn_size, keep_ffn, original_heads, record_structure,
                                 remove_heads)

    removed: dict[int, list[int]] = {}
    for i, layer in enumerate(encoder_layers(model)):
        hs = plan.heads[i] if i < len(plan.heads) else []
        if hs:
            orig = original_heads(model.config, i)
            remove_heads(layer, hs)
            removed[i] = [orig[h] for h in hs]
        fs = set(plan.ffn[i]) if i < len(plan.ffn) else set()
        if fs:
            keep_ffn(layer, [j for j in range(ffn_size(layer)) if j not in fs])
    record_structure(model, removed)
    if plan.layers:
        drop_layers(model, plan.layers)


def structure_of(model: Any) -> dict[str, Any]:
    """Per-layer heads and FFN widths, and parameter counts."""
    from ..models.pruned import count_params, encoder_layers, ffn_size, head_count

    layers = encoder_layers(model)
    emb = model.get_input_embeddings().weight.numel()
    return {"layers": len(layers), "heads_per_layer": [head_count(m) for m in layers],
            "ffn_per_layer": [ffn_size(m) for m in layers], "params": count_params(model), "embedding_params": emb}


# ---------------------------------------------------------------- data, importance, recovery


def calibration_batches(tok: Any, task: Any, settings: Any, n: int, batch_size: int, max_length: int,
                        seed: int) -> list[dict[str, Any]]:
    """`n` seeded-random labelled training examples as length-grouped batches."""
    from ..training.text import collate, encode, length_grouped_batches

    train = task.load("train", settings)
    rng = random.Random(seed)
    sample = rng.sample(train, min(n, len(train)))
    enc = encode(tok, sample, max_length)
    return [collate(enc, b, tok.pad_token_id) for b in length_grouped_batches(enc.lengths, batch_size, seed)]



def recover(net: Any, teacher: Any | None, tok: Any, task: Any, cfg: PruneConfig, minutes: float, seed: int,
            settings: Any, quiet: bool = True, checkpoint_dir: Path | None = None) -> dict[str, Any]:
    """Fine-tune `net` on the task's train split for `minutes` (loss mixes teacher soft labels when given).

    With `checkpoint_dir`, progress is checkpointed there and a re-run resumes it (keyed by the starting weights).
    """
    import torch
    import torch.nn.functional as F

    from ..artifact import run_key
    from ..training.kd import soft_label_kl
    from ..training.loop import LoopConfig, train_loop, weights_fingerprint
    from ..training.text import collate, encode

    if minutes <= 0:
        return {"steps": 0, "seconds": 0.0}
    enc = encode(tok, task.load("train", settings), cfg.max_length)
    T, a = cfg.kd_temperature, cfg.kd_alpha if teacher is not None else 0.0

    def loss_fn(b: list[int]) -> tuple[Any, dict[str, float]]:
        batch = collate(enc, b, tok.pad_token_id)
        out = net(**batch)
        if a == 0:
            return out.loss, {}
        with torch.no_grad():
            t_logits = teacher(**{k: v for k, v in batch.items() if k != "labels"}).logits
        if task.kind == "regression":
            kd = F.mse_loss(out.logits, t_logits)
        else:
            kd = soft_label_kl(out.logits, t_logits, T)
        return (1 - a) * out.loss + a * kd, {}

    # time-only: recovery is sized in minutes; seed + 1000 keeps the batch order recovery always had
    loop = LoopConfig(lr=cfg.lr, epochs=None, max_minutes=minutes, batch_size=cfg.batch_size, warmup=0.05,
                      weight_decay=0.01, checkpoint_minutes=cfg.checkpoint_minutes, seed=seed + 1000)
    checkpoint, key = None, ""
    if checkpoint_dir is not None:
        key = run_key(weights_fingerprint(net, *([teacher] if teacher is not None else [])), task.name,
                      dataclasses.asdict(cfg), minutes, seed)
        checkpoint = Path(checkpoint_dir) / f"recovery-{key}.pt"
    net.train()
    if teacher is not None:
        teacher.eval()
    res = train_loop([(n, p) for n, p in net.named_parameters() if p.requires_grad], enc.lengths, loss_fn, loop,
                     checkpoint=checkpoint, key=key, modules={"model": net},
                     description="prune: recovery fine-tuning", quiet=quiet)
    net.eval()
    return {"steps": res.steps, "seconds": round(res.seconds, 1), "final_loss": res.mean_loss(),
            "distill": teacher is not None and a > 0, "resumed": res.resumed}


# ---------------------------------------------------------------- targets


def model_latency_ms(model: Any, seq_len: int, source: str, threads: int = 2) -> float:
    """Batch-1 latency of `model` at `seq_len`: measured with ONNX Runtime here, or predicted for a profile."""
    if source != "onnxruntime":
        from ..hardware import predict_latency

        return float(predict_latency(model.config.to_dict(), source, batch=1, seq_len=seq_len).latency_ms)
    import numpy as np

    from ..measure import measure_latency
    from ..runtime.onnx_rt import make_session
    from ..runtime.onnx_export import export_text_model_to_onnx

    with tempfile.TemporaryDirectory(prefix="edgeslim-prune-") as tmp:
        f = export_text_model_to_onnx(model, Path(tmp) / "m.onnx", seq_len=16)
        sess = make_session(f, threads)
        feed = {"input_ids": np.ones((1, seq_len), np.int64), "attention_mask": np.ones((1, seq_len), np.int64),
                "token_type_ids": np.zeros((1, seq_len), np.int64)}
        names = {i.name for i in sess.get_inputs()}
        feed = {k: v for k, v in feed.items() if k in names}
        return measure_latency(lambda: sess.run(None, feed), warmup=5, iters=30).p50_ms


def search_scale(fits: Callable[[float], bool], steps: int = 20) -> float | None:
    """Smallest scale s in (0, 1] (on a 1/steps grid) with fits(s), assuming fits is monotone in s."""
    lo, hi = 0, steps
    if not fits(1.0):
        return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid / steps):
            hi = mid
        else:
            lo = mid
    return hi / steps


def target_scale(model: Any, imp: Any, cfg: PruneConfig, threads: int) -> tuple[float, dict[str, Any]]:
    """Scale of the (heads, ffn) ratios that meets the configured target; records every probe."""
    from ..models.pruned import count_params, encoder_layers, ffn_size, head_count

    layers = encoder_layers(model)
    oh, of = [head_count(m) for m in layers], [ffn_size(m) for m in layers]
    probes: list[dict[str, Any]] = []

    def candidate(s: float) -> Any:
        m = copy.deepcopy(model)
        plan = plan_for(imp, oh, of, cfg.heads * s, cfg.ffn * s, cfg.scope)
        plan.layers = list(getattr(imp, "drop", []) or [])
        apply_plan(m, plan)
        return m

    def fits(s: float) -> bool:
        m = candidate(s)
        if cfg.target_params is not None:
            value, limit = count_params(m), cfg.target_params
        else:
            value, limit = model_latency_ms(m, cfg.target_seq_len, cfg.latency_source, threads), cfg.target_latency_ms
        probes.append({"scale": s, "heads": round(cfg.heads * s, 4), "ffn": round(cfg.ffn * s, 4),
                       "value": value, "fits": value <= limit})
        return value <= limit

    s = search_scale(fits)
    what = (f"{cfg.target_params:,} parameters" if cfg.target_params is not None else
            f"{cfg.target_latency_ms} ms ({cfg.latency_source}, batch 1, seq {cfg.target_seq_len})")
    if s is None:
        raise StepError(f"prune: target {what} is not reachable with heads<={cfg.heads}, ffn<={cfg.ffn}, "
                        f"drop_layers={cfg.drop_layers} (at the largest ratios: {probes[-1]['value']}); "
                        "raise the ratios, add drop_layers, or loosen the target")
    out: dict[str, Any] = {"target": what, "scale": s, "probes": probes}
    if cfg.target_latency_ms is not None and cfg.latency_source != "onnxruntime":
        from ..hardware.check import trust_for

        # the search met a predicted latency (fp32, the profile's precision here): say how far it is checked
        out["trust"] = trust_for(cfg.latency_source, "fp32").to_dict()
        out["trust_label"] = out["trust"]["label"]
    return s, out


# ---------------------------------------------------------------- the step


def vocab_texts(task: Any, which: str, settings: Any) -> list[str]:
    """Text of the task's train split ("train"; val carved out) or of its whole train file and dev ("task")."""
    if which == "task":
        splits = ["train-full" if "train-full" in task.splits else "train"] + (["dev"] if "dev" in task.files else [])
    else:
        splits = ["train"]
    texts: list[str] = []
    for sp in splits:
        for e in task.load(sp, settings):
            texts.append(e.text_a)
            if e.text_b is not None:
                texts.append(e.text_b)
    return texts


def prune_model(net: Any, tok: Any, task: Any, cfg: PruneConfig, ctx: RunContext,
                teacher: Any | None = None) -> tuple[Any, Any, dict[str, Any]]:
    """Prune a loaded model (in place) by `cfg`; returns (model, tokenizer, report)."""
    import torch

    from ..models.pruned import encoder_layers, ffn_size, head_count
    from .importance import compute_importance

    torch.set_num_threads(ctx.threads)
    report: dict[str, Any] = {"before": structure_of(net)}
    if cfg.drop_layers >= len(encoder_layers(net)):
        raise ConfigError(f"prune: drop_layers={cfg.drop_layers} would remove all {len(encoder_layers(net))} "
                          "layers; keep at least one")
    rounds: list[dict[str, Any]] = []
    if cfg.structural:
        layers = encoder_layers(net)
        oh, of = [head_count(m) for m in layers], [ffn_size(m) for m in layers]
        calib = (calibration_batches(tok, task, ctx.settings, cfg.calib_samples, cfg.batch_size, cfg.max_length,
                                     ctx.seed) if cfg.score == "gradient" or cfg.drop_layers else None)
        t0 = time.perf_counter()
        imp = compute_importance(net, cfg.score, calib, with_layers=cfg.drop_layers > 0)
        drop = sorted(sorted(range(len(imp.layers)), key=lambda i: imp.layers[i])[:cfg.drop_layers]) \
            if cfg.drop_layers else []
        imp.drop = drop
        report["importance"] = {"method": imp.method, "seconds": round(time.perf_counter() - t0, 1),
                                "layer_loss_increase": imp.layers, "dropped_layers": drop}
        scale = 1.0
        if cfg.has_target:
            scale, report["target"] = target_scale(net, imp, cfg, ctx.threads)
        heads, ffn = cfg.heads * scale, cfg.ffn * scale
        if teacher is None and cfg.distill and cfg.recover_minutes > 0:
            teacher = copy.deepcopy(net).eval()
        ckpt_dir = ctx.checkpoint_dir   # recovery checkpoints: a re-run after a crash resumes
        for r in range(1, cfg.iterations + 1):
            if r > 1:   # re-score the recovered, partly pruned model
                imp = compute_importance(net, cfg.score, calib)
            # layers are dropped in the last round, after head/FFN scores that still index all layers
            h_r, f_r = heads * r / cfg.iterations, ffn * r / cfg.iterations
            plan = plan_for(imp, oh, of, h_r, f_r, cfg.scope)
            if r == cfg.iterations:
                plan.layers = drop
            apply_plan(net, plan)
            rec = recover(net, teacher, tok, task, cfg, cfg.recover_minutes / cfg.iterations, ctx.seed + r,
                          ctx.settings, ctx.quiet, checkpoint_dir=ckpt_dir)
            rounds.append({"round": r, "heads": round(h_r, 4), "ffn": round(f_r, 4), **structure_of(net),
                           "recovery": rec})
        shutil.rmtree(ckpt_dir, ignore_errors=True)
        report["rounds"] = rounds
    if cfg.vocab:
        from ..models.vocab import collect_vocab, prune_vocab

        keep = collect_vocab(tok, vocab_texts(task, cfg.vocab, ctx.settings))
        net, tok = prune_vocab(net, tok, keep)
        report["vocab"] = {"source": cfg.vocab, "kept": len(keep)}
    report["after"] = structure_of(net)
    b, a = report["before"], report["after"]
    report["params_removed"] = b["params"] - a["params"]
    report["params_ratio"] = round(a["params"] / b["params"], 4)
    return net, tok, report


# disk: the pruned model (<= 1x) + recovery checkpoints (3x, twice while one replaces the other)
@register_step("prune", PruneConfig, accepts=("hf",), produces="hf", backends=("torch", "transformers"),
               disk_factor=7.0)
def prune(model: ModelArtifact, cfg: PruneConfig, ctx: RunContext) -> ModelArtifact:
    """Prune heads/FFN/layers/vocabulary of an HF text classifier, recover, save and score it on dev."""
    from ..models.hf import load_model, load_tokenizer, save_model
    from ..tasks.base import get_task
    from ..evaluate.text import EvalSettings, evaluate_text_model

    if model.format != "hf":
        raise StepError(f"prune takes an HF PyTorch artifact, got format {model.format!r}; prune before export")
    if not cfg.structural and not cfg.vocab:
        raise ConfigError("prune: nothing to do; set heads, ffn, drop_layers or vocab")
    task_name = ctx.task or model.task
    if not task_name:
        raise ConfigError("prune needs a task for calibration/recovery/vocabulary: pass --task (e.g. sst2)")
    task = get_task(task_name)
    if task.kind not in ("classification", "regression"):
        raise StepError(f"prune supports text classification/regression tasks so far, not {task.kind!r}")
    ctx.seed_everything()
    tok = load_tokenizer(model.path)
    id2label = {i: n for i, n in enumerate(task.labels)} if task.labels else None
    net = load_model(model.path, task.kind, num_labels=task.num_labels, id2label=id2label)
    net, tok, report = prune_model(net, tok, task, cfg, ctx)
    metrics: dict[str, Any] = {}
    if cfg.eval:
        metrics = evaluate_text_model(net, tok, task, EvalSettings("dev", 32, cfg.max_length), ctx.settings)
    metrics["prune"] = report
    with atomic_dir(ctx.out_dir) as tmp:
        save_model(net, tmp, tok)
    return ModelArtifact.create(ctx.out_dir, "hf", task=task.name, parent=model, step="prune",
                                step_config={**dataclasses.asdict(cfg), "seed": ctx.seed}, metrics=metrics,
                                extra={"labels": list(task.labels), "kind": task.kind})
