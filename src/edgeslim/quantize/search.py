"""Accuracy-goal search: the fastest quantized candidate whose metric stays within `max_drop` of FP32.

Candidates are schemes (dynamic INT8, static INT8 per calibration method, FP16 on request) and mixed-precision
variants of the best static scheme that keep its top-k most sensitive MatMul/Gemm groups in FP32. Every
candidate is scored on a subset of the selection split (screening; "val", carved from train) and timed against
FP32 in interleaved rounds; candidates that pass screening (with a small slack) are re-scored on the whole
selection split, and the fastest that meets the goal there wins; candidates within `speed_tie` (default 3%) of the
fastest are a tie that timing noise cannot break, and the most accurate of them wins. The chosen model and FP32
are then scored on the reporting split ("dev"), which chose nothing.
"""
from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import ConfigError, StepError
from .onnx_schemes import MatMulGroup, Scheme, parse_scheme, quantize_onnx
from .scoring import OnnxScorer


@dataclass(frozen=True)
class Goal:
    """Largest allowed metric drop: absolute points (0.5 = half a point of accuracy) or % of the FP32 metric."""

    max_drop: float
    relative: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.max_drop, (int, float)) or self.max_drop < 0:
            raise ConfigError(f"quantize: max_drop must be >= 0 (points, or '1%' for relative), got {self.max_drop!r}")

    def allowed_points(self, fp32_metric: float) -> float:
        """The allowed drop in points (metric x 100) for a model whose FP32 metric is `fp32_metric`."""
        return self.max_drop * fp32_metric if self.relative else self.max_drop

    def __str__(self) -> str:
        return f"{self.max_drop:g}% of FP32" if self.relative else f"{self.max_drop:g} points"


def parse_goal(value: float | int | str) -> Goal:
    """0.5 or '0.5' -> 0.5 points absolute; '1%' -> 1% of the FP32 metric. Negative values are rejected."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Goal(float(value))
    m = re.fullmatch(r"\s*(-?[0-9]*\.?[0-9]+)\s*(%?)\s*", str(value))
    if not m:
        raise ConfigError(f"quantize: max_drop must be a number of points (0.5) or a percentage ('1%'), got {value!r}")
    return Goal(float(m.group(1)), relative=bool(m.group(2)))


@dataclass
class Candidate:
    """One quantized model tried by the search, with everything measured about it."""

    scheme: Scheme
    path: Path
    size_bytes: int
    build_seconds: float
    screen_metric: float
    screen_drop: float                     # points
    screen_sqnr_db: float
    select_metric: float | None = None     # on the whole selection split (finalists)
    select_drop: float | None = None       # points
    dev_metric: float | None = None        # on the reporting split (the chosen candidate)
    dev_drop: float | None = None          # points
    latency_p50_ms: float | None = None
    speedup: float | None = None           # FP32 time / this model's time (paired, interleaved)
    meets_goal: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in dataclasses.asdict(self).items() if k not in ("scheme", "path")}
        d["scheme"] = self.scheme.name
        d["precision"] = self.scheme.precision
        d["excluded_groups"] = list(self.scheme.exclude)
        return d


@dataclass(frozen=True)
class SearchSettings:
    """What the search tries and how much CPU it may spend."""

    goal: Goal
    schemes: tuple[str, ...] = ("dynamic", "dynamic-attn", "dynamic-pertensor", "dynamic-attn-pertensor",
                                 "static-minmax", "static-percentile", "static-entropy")
    mixed_k: tuple[int, ...] = (2, 4, 8)        # mixed candidates keep this many most sensitive groups in FP32
    screen_slack: float = 0.5                  # points: screening keeps candidates within goal + slack
    sensitivity_size: int = 150                # sensitivity runs on this many of the screening examples
    select_all: bool = False                   # score every candidate on the whole selection split (not finalists)
    latency_seq_len: int = 128
    latency_rounds: int = 5
    latency_iters: int = 20
    per_channel: bool = True
    embeddings: bool = True
    speed_tie: float = 0.03                    # speed-ups within 3% of the fastest count as a tie -> most accurate


@dataclass
class SearchResult:
    """Every candidate, the chosen one, and how everything was measured."""

    goal: Goal
    fp32: dict[str, Any]
    candidates: list[Candidate]
    chosen: Candidate | None
    sensitivity: Any = None                    # SensitivityReport of the base static scheme, if run
    latency: dict[str, Any] = field(default_factory=dict)
    evaluated_on: dict[str, Any] = field(default_factory=dict)   # set name -> split, examples, batch, padding
    selection: str = ""                        # one line: which split selected, which only reports

    def to_dict(self) -> dict[str, Any]:
        return {"goal": str(self.goal), "fp32": self.fp32, "candidates": [c.to_dict() for c in self.candidates],
                "chosen": self.chosen.scheme.name if self.chosen else None,
                "sensitivity": self.sensitivity.to_dict() if self.sensitivity else None,
                "latency": self.latency, "evaluated_on": self.evaluated_on, "selection": self.selection}

    def to_markdown(self) -> str:
        e = self.evaluated_on
        f = self.fp32
        sel, dev = e["select"], e.get("dev")
        fmt = lambda v, p: "-" if v is None else f"{v:.{p}f}"  # noqa: E731
        header = (f"Goal: drop <= {self.goal} on {sel['split']}. {self.selection[:1].upper()}{self.selection[1:]}. "
                  f"FP32 {f['metric_name']}: screen {f['screen_metric']:.4f}, select {f['select_metric']:.4f}, dev "
                  f"{fmt(f.get('dev_metric'), 4)}. Screen = {e['screen']['examples']} {sel['split']} examples, "
                  f"select = {sel['examples']} {sel['split']} examples, dev = {dev['examples'] if dev else '-'} "
                  f"examples; batch {sel['batch_size']}, padding {sel['padding']}. Latency: batch 1, sequence "
                  f"{self.latency.get('seq_len')}, interleaved rounds, speed-up = FP32 time / model time (paired "
                  "median).")
        lines = [header, "",
                 ("| scheme | FP32 groups | size (MB) | screen | screen drop | SQNR (dB) | select | select drop | dev "
                  "| dev drop | p50 (ms) | speed-up | meets goal |"),
                 "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for c in self.candidates:
            mark = " **chosen**" if c is self.chosen else ""
            lines.append(f"| {c.scheme.name}{mark} | {len(c.scheme.exclude)} | {c.size_bytes / 1e6:.1f} | "
                         f"{c.screen_metric:.4f} | {c.screen_drop:+.2f} | {c.screen_sqnr_db:.1f} | "
                         f"{fmt(c.select_metric, 4)} | {fmt(c.select_drop, 2)} | {fmt(c.dev_metric, 4)} | "
                         f"{fmt(c.dev_drop, 2)} | {fmt(c.latency_p50_ms, 2)} | {fmt(c.speedup, 2)} | "
                         f"{'-' if c.meets_goal is None else ('yes' if c.meets_goal else 'no')} |")
        return "\n".join(lines) + "\n"


def choose(candidates: Sequence[Candidate], speed_tie: float = 0.0) -> Candidate | None:
    """The fastest candidate that meets the goal; among those within `speed_tie` (a fraction) of the fastest
    speed-up, which timing noise cannot tell apart, the most accurate on the selection split (then the faster)."""
    ok = [c for c in candidates if c.meets_goal]
    if not ok:
        return None
    top = max(c.speedup or 0.0 for c in ok)
    tied = [c for c in ok if (c.speedup or 0.0) >= top * (1.0 - speed_tie) - 1e-12]
    return min(tied, key=lambda c: (c.select_drop if c.select_drop is not None else 1e9, -(c.speedup or 0.0)))


def latency_inputs(seq_len: int, vocab_hint: int = 1000) -> dict[str, Any]:
    """A batch-1 input of `seq_len` tokens (fixed ids, full attention) for timing."""
    import numpy as np

    rng = np.random.default_rng(0)
    ids = rng.integers(1000 if vocab_hint > 2000 else 5, vocab_hint, size=(1, seq_len), dtype=np.int64)
    return {"input_ids": ids, "attention_mask": np.ones((1, seq_len), np.int64),
            "token_type_ids": np.zeros((1, seq_len), np.int64)}


def time_models(models: dict[str, Path], reference: str, seq_len: int, rounds: int, iters: int,
                threads: int = 2, vocab_hint: int = 1000) -> Any:
    """compare_latency over ONNX Runtime sessions of `models` on one batch-1 input."""
    from ..measure import compare_latency
    from ..runtime.onnx_rt import make_session

    feed = latency_inputs(seq_len, vocab_hint)
    fns: dict[str, Callable[[], Any]] = {}
    for name, path in models.items():
        sess = make_session(path, threads)
        names = [i.name for i in sess.get_inputs()]
        fns[name] = (lambda s=sess, f={n: feed[n] for n in names}: s.run(None, f))
    return compare_latency(fns, reference=reference, rounds=rounds, iters=iters, warmup=5)


def search_quantized(fp32_model: Path, scorer: OnnxScorer, settings: SearchSettings, workdir: Path, *,
                     calibration: Sequence[dict[str, Any]], groups: Sequence[MatMulGroup], vocab_hint: int = 1000, pad_id: int = 0,
                     selection: str = "selection: val (carved from train), dev: reporting only",
                     log: Callable[[str], None] = lambda s: None) -> SearchResult:
    """Build, score and time every candidate; pick the fastest meeting the goal on the whole selection split.

    `fp32_model` should be pre-processed (see onnx_schemes.preprocess). `scorer` holds sets "screen" (a subset
    of the selection split), "select" (all of it) and, for reporting, "dev": the chosen model and FP32 are scored
    on "dev" after the choice (when "dev" is the very list "select" is, its numbers are copied, not re-run).
    `selection` is the one-line note the report carries. Raises StepError "no candidate meets ..." listing the
    best candidates found when none meets the goal.
    """
    from .sensitivity import analyse_sensitivity

    workdir = Path(workdir)
    cache = workdir / "calibration-cache"
    cache.mkdir(parents=True, exist_ok=True)
    metric_name = scorer.task.primary
    split = scorer.splits.get("select", "select")
    fp32_screen = scorer.metric(fp32_model, "screen")
    fp32_select = scorer.metric(fp32_model, "select")
    allowed = settings.goal.allowed_points(fp32_select)
    log(f"FP32 {metric_name}: screen {fp32_screen:.4f}, {split} {fp32_select:.4f}; allowed drop {allowed:.3f} "
        f"points ({selection})")

    def build(scheme: Scheme) -> Candidate:
        out = workdir / f"{scheme.name}.onnx"
        t0 = time.perf_counter()
        quantize_onnx(fp32_model, out, scheme, calibration=calibration, groups=groups, cache_dir=cache,
                      pad_id=pad_id)
        secs = time.perf_counter() - t0
        m = scorer.metric(out, "screen")
        c = Candidate(scheme, out, out.stat().st_size, round(secs, 2), m, round((fp32_screen - m) * 100, 4),
                      round(scorer.sqnr(fp32_model, out, "screen"), 3))
        log(f"{scheme.name}: screen {m:.4f} (drop {c.screen_drop:+.2f}), SQNR {c.screen_sqnr_db:.1f} dB, "
            f"{c.size_bytes / 1e6:.1f} MB, built in {secs:.1f}s")
        return c

    base = [dataclasses.replace(parse_scheme(s, per_channel=settings.per_channel), embeddings=settings.embeddings)
            for s in settings.schemes]
    candidates = [build(s) for s in base]
    sensitivity = None
    statics = [c for c in candidates if c.scheme.kind == "static"]
    ks = sorted({k for k in settings.mixed_k if 0 < k < len(groups)})
    if statics and ks:
        best_static = max(statics, key=lambda c: (c.screen_metric, c.screen_sqnr_db))
        scorer.examples["sensitivity"] = list(scorer.examples["screen"])[:settings.sensitivity_size]
        scorer.splits["sensitivity"] = scorer.splits.get("screen", split)
        log(f"sensitivity of {len(groups)} groups under {best_static.scheme.name} "
            f"({len(scorer.examples['sensitivity'])} examples) ...")
        sensitivity = analyse_sensitivity(fp32_model, best_static.scheme, scorer, "sensitivity", groups, workdir,
                                          calibration=calibration, cache_dir=cache, pad_id=pad_id)
        ranking = sensitivity.ranking()
        for k in ks:
            candidates.append(build(dataclasses.replace(best_static.scheme, exclude=tuple(ranking[:k]))))

    log(f"timing FP32 and {len(candidates)} candidates ...")
    comp = time_models({"fp32": fp32_model, **{c.scheme.name: c.path for c in candidates}}, "fp32",
                       settings.latency_seq_len, settings.latency_rounds, settings.latency_iters, scorer.threads,
                       vocab_hint)
    for c in candidates:
        c.latency_p50_ms = round(comp.stats[c.scheme.name].p50_ms, 3)
        c.speedup = round(comp.speedup(c.scheme.name), 3)
    latency = {"seq_len": settings.latency_seq_len, "batch": 1, "fp32_p50_ms": round(comp.stats["fp32"].p50_ms, 3),
               "comparison": comp.to_dict()}

    def finalist(c: Candidate) -> bool:
        return settings.select_all or c.screen_drop <= allowed + settings.screen_slack

    log(f"scoring {sum(map(finalist, candidates))} finalists on {split} ({len(scorer.examples['select'])} "
        "examples) ...")
    for c in candidates:
        if finalist(c):
            m = scorer.metric(c.path, "select")
            c.select_metric = m
            c.select_drop = round((fp32_select - m) * 100, 4)
            c.meets_goal = c.select_drop <= allowed + 1e-9
        else:
            c.meets_goal = False
    chosen = choose(candidates, settings.speed_tie)
    fp32 = {"metric_name": metric_name, "screen_metric": fp32_screen, "select_metric": fp32_select,
            "dev_metric": None, "allowed_drop_points": allowed}
    evaluated_on = {name: {"split": name, **scorer.describe(name)}
                    for name in ("screen", "select", "dev") if name in scorer.examples}
    if chosen is not None and "dev" in scorer.examples:
        if scorer.examples["dev"] is scorer.examples["select"]:
            fp32["dev_metric"], chosen.dev_metric, chosen.dev_drop = fp32_select, chosen.select_metric, \
                chosen.select_drop
        else:
            log(f"reporting: {chosen.scheme.name} and FP32 on dev ({len(scorer.examples['dev'])} examples) ...")
            fp32["dev_metric"] = scorer.metric(fp32_model, "dev")
            chosen.dev_metric = scorer.metric(chosen.path, "dev")
            chosen.dev_drop = round((fp32["dev_metric"] - chosen.dev_metric) * 100, 4)
    result = SearchResult(settings.goal, fp32, candidates, chosen, sensitivity, latency, evaluated_on, selection)
    if result.chosen is None:
        ranked = sorted(candidates, key=lambda c: (c.select_drop if c.select_drop is not None else 1e9,
                                                   c.screen_drop))
        best = "; ".join(
            f"{c.scheme.name}: " + (f"{split} drop {c.select_drop:.2f}" if c.select_drop is not None else
                                    f"screen drop {c.screen_drop:.2f}") + f" points, {c.speedup:.2f}x"
            for c in ranked[:3])
        raise StepError(f"no candidate meets max_drop {settings.goal} on {split} (allowed {allowed:.3f} points of "
                        f"{metric_name} below FP32 {fp32_select:.4f}); best found: {best}. Allow a larger max_drop, "
                        "add mixed_k values, or keep the FP32 model")
    return result
