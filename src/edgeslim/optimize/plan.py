"""Plan a recipe from a goal: which student shape fits the target's deadline and size, and how the time budget is
spent across the six steps (baseline, distill, prune, quantize, export, validate).

Every latency here is *predicted* (roofline model of the target profile, INT8 where the target runs it); sizes are
estimates of the INT8 ONNX file (weights and embedding tables at 1 byte, LayerNorm/bias at 4). The run measures both.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError, EdgeslimError

QUICK_BUDGET = 10.0
DEFAULT_BUDGET = 40.0
HEAD_SHARES = (0.0, 0.5)
FFN_FRACTIONS = (1.0, 0.5, 0.25, 0.125)


class GoalImpossible(EdgeslimError):
    """The predictor rules the goal out before any training (exit 2)."""


@dataclass(frozen=True)
class Goal:
    """What the user asks for: model, task, target device, deadline, allowed drop, size and time budget."""

    model: str
    task: str
    target: str
    deadline_ms: float
    max_drop: float                      # metric points below the teacher (dev, batch 1, deployed runtime)
    max_size_mb: float | None = None     # the deployable file, MB (10^6 bytes)
    budget_minutes: float | None = None  # None: 40 (10 with quick)
    seq_len: int = 128                   # tokens per request the deadline applies to (batch 1)
    quick: bool = False
    runtime: str | None = None           # override the runtime the target profile names
    seed: int = 0
    threads: int = 2

    def __post_init__(self) -> None:
        from ..hardware.predict import check_deadline
        from ..hardware.schema import RUNTIME_NAMES, list_profiles
        from ..registry import suggest

        known = list_profiles()
        if self.target not in known:
            raise ConfigError(f"optimize: unknown target {self.target!r}.{suggest(self.target, known)} "
                              f"Targets: {', '.join(known)} (see `edgeslim hw list`)")
        check_deadline(self.deadline_ms, "optimize: --deadline-ms")
        if not isinstance(self.max_drop, (int, float)) or self.max_drop < 0 or math.isnan(self.max_drop):
            raise ConfigError(f"optimize: --max-drop is in metric points (1.0 = one point of accuracy) and must be "
                              f">= 0, got {self.max_drop!r}")
        if self.max_size_mb is not None and not self.max_size_mb > 0:
            raise ConfigError(f"optimize: --max-size-mb must be > 0, got {self.max_size_mb}")
        if self.budget_minutes is not None and self.budget_minutes < 3:
            raise ConfigError(f"optimize: --budget-minutes must be >= 3 (the steps need a few minutes of "
                              f"training), got {self.budget_minutes}")
        if self.seq_len < 8:
            raise ConfigError(f"optimize: --seq-len must be >= 8, got {self.seq_len}")
        if self.runtime is not None and self.runtime not in RUNTIME_NAMES:
            raise ConfigError(f"optimize: --runtime must be one of {', '.join(RUNTIME_NAMES)}, got {self.runtime!r}")

    @property
    def budget(self) -> float:
        return self.budget_minutes or (QUICK_BUDGET if self.quick else DEFAULT_BUDGET)

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "budget": self.budget}


@dataclass(frozen=True)
class Candidate:
    """One student shape the planner considered, with its predicted latency and estimated size."""

    layers: int
    ffn: int
    head_share: float                    # share of attention heads the prune step removes
    heads: int                           # heads per layer after pruning
    params: int
    core_params: int                     # encoder + pooler parameters (embeddings excluded): the capacity proxy
    predicted_ms: float                  # on the target, batch 1, goal.seq_len, at `precision`
    predicted_fp32_ms: float             # the same before quantization (what the prune step's target is set to)
    precision: str
    size_mb: float                       # estimated deployable INT8 file
    fits_deadline: bool
    fits_size: bool

    @property
    def fits(self) -> bool:
        return self.fits_deadline and self.fits_size

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "fits": self.fits, "label": "predicted"}


@dataclass
class Plan:
    """The chosen shape, every candidate, the time split, and the recipe to run."""

    goal: Goal
    teacher: dict[str, Any]
    runtime: str
    needs_finetune: bool
    vocab: int
    candidates: list[Candidate]
    chosen: Candidate
    minutes: dict[str, float]
    recipe: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    trust: dict[str, Any] = field(default_factory=dict)   # the target's trust at the chosen precision (hardware/check)

    def to_dict(self) -> dict[str, Any]:
        return {"teacher": self.teacher, "runtime": self.runtime, "needs_finetune": self.needs_finetune,
                "student_vocab": self.vocab, "chosen": self.chosen.to_dict(), "trust": self.trust,
                "trust_label": self.trust.get("label", "unchecked"),
                "candidates": [c.to_dict() for c in self.candidates], "minutes": self.minutes, "notes": self.notes,
                "rule": "of the shapes whose predicted latency and estimated size fit, the one with the most "
                        "encoder parameters (deeper on a tie)"}


def estimated_int8_mb(cost: Any) -> float:
    """INT8 ONNX file estimate: linear weights and embedding tables 1 byte each, other parameters 4, +3% for scales,
    zero points and graph (measured files were 1.0% and 2.0% above the +1% estimate: SST-2 and MRPC demos)."""
    one = sum(o.params for o in cost.ops if o.kind in ("linear", "gather"))
    return (one + 4 * (cost.params - one)) * 1.03 / 1e6


def student_vocab(source: Any, task: Any, settings: Any = None) -> int:
    """Token ids the task's training text uses (what distill's `vocab: task` keeps)."""
    from ..models.hf import load_tokenizer
    from ..models.vocab import collect_vocab

    tok = load_tokenizer(source)
    texts = [t for e in task.load("train", settings) for t in (e.text_a, e.text_b) if t]
    return len(collect_vocab(tok, texts))


def candidates_for(teacher: Any, vocab: int, profile: Any, goal: Goal) -> list[Candidate]:
    """Every (layers, FFN width, head share) student the planner can build, predicted on `profile`."""
    from ..hardware import model_cost, predict_cost

    prec = "int8" if "int8" in profile.peak_gops else ("fp16" if "fp16" in profile.peak_gops else "fp32")
    out: list[Candidate] = []
    seen: set[tuple[int, int, int]] = set()
    for layers in range(teacher.layers, 1, -1):
        for frac in FFN_FRACTIONS:
            ffn = max(32, int(teacher.ffn * frac))
            for share in HEAD_SHARES:
                heads = max(1, int(round(teacher.heads * (1 - share))))
                if (layers, ffn, heads) in seen:   # tiny teachers: the fractions meet their floors
                    continue
                seen.add((layers, ffn, heads))
                shape = dataclasses.replace(teacher, layers=layers, ffn=ffn, vocab=vocab, ffn_per_layer=None,
                                            heads_per_layer=(heads,) * layers)
                cost = model_cost(shape, batch=1, seq_len=goal.seq_len, precision=prec)
                lat = predict_cost(cost, profile).latency_ms
                fp32 = (lat if prec == "fp32" else predict_cost(
                    model_cost(shape, batch=1, seq_len=goal.seq_len, precision="fp32"), profile).latency_ms
                        if "fp32" in profile.peak_gops else lat)
                size = estimated_int8_mb(cost if prec == "int8" else
                                         model_cost(shape, batch=1, seq_len=goal.seq_len, precision="int8"))
                core = sum(o.params for o in cost.ops if o.layer != "embeddings")
                out.append(Candidate(layers, ffn, share, heads, cost.params, core, round(lat, 4), round(fp32, 4), prec,
                                     round(size, 3), lat <= goal.deadline_ms,
                                     goal.max_size_mb is None or size <= goal.max_size_mb))
    return out


def choose(cands: list[Candidate]) -> Candidate | None:
    ok = [c for c in cands if c.fits]
    return max(ok, key=lambda c: (c.core_params, c.layers, -c.head_share)) if ok else None


def impossible_message(goal: Goal, cands: list[Candidate]) -> str:
    fastest = min(cands, key=lambda c: c.predicted_ms)
    smallest = min(cands, key=lambda c: c.size_mb)
    parts = []
    if not any(c.fits_deadline for c in cands):
        parts.append(f"deadline: the fastest student the planner can build ({fastest.layers} layers, FFN "
                     f"{fastest.ffn}, {fastest.heads} heads, {fastest.precision}) is predicted at "
                     f"{fastest.predicted_ms:.3f} ms on {goal.target} at batch 1, {goal.seq_len} tokens: "
                     f"{fastest.predicted_ms - goal.deadline_ms:.3f} ms over the {goal.deadline_ms} ms deadline "
                     f"({fastest.predicted_ms / goal.deadline_ms:.1f}x)")
    if goal.max_size_mb is not None and not any(c.fits_size for c in cands):
        parts.append(f"size: the smallest student is estimated at {smallest.size_mb:.2f} MB, "
                     f"{smallest.size_mb - goal.max_size_mb:.2f} MB over --max-size-mb {goal.max_size_mb}")
    if not parts:
        parts.append("no single student shape meets both the deadline and the size limit")
    return ("optimize: the goal is ruled out before training (predicted): " + "; ".join(parts)
            + ". Relax --deadline-ms or --max-size-mb, shorten --seq-len, or pick a faster --target")


def split_minutes(goal: Goal, n_train: int, needs_finetune: bool, head_share: float) -> dict[str, float]:
    """Training minutes per step: what the budget leaves after the fixed costs (teacher logits, evals, search,
    export, validate), split 35/8/42/15 over fine-tune, general and task distillation, prune recovery."""
    # measured on this project's 2-vCPU AVX2 machines (SST-2, 66k train): teacher logits over the train set ~5.5 min
    # (~200 examples/s at 64 tokens), evaluations ~1 min, quantization search ~3 min, validation ~2 min
    overhead = (2.0 + n_train / 20000) if goal.quick else (4.0 + n_train / 9000)
    train = max(1.5, goal.budget - overhead)
    shares = {"finetune": 0.35 if needs_finetune else 0.0, "general": 0.0 if goal.quick else 0.08,
              "task": 0.42, "recover": 0.15 if head_share > 0 else 0.0}
    total = sum(shares.values())
    return {k: round(train * v / total, 2) for k, v in shares.items()} | {"fixed_estimate": round(overhead, 2)}


def build_recipe(goal: Goal, plan_shape: Candidate, minutes: dict[str, float], needs_finetune: bool,
                 runtime: str) -> dict[str, Any]:
    """The recipe (a plain dict, written as DIR/recipe.yaml) that carries the plan out."""
    steps: list[dict[str, Any]] = []
    if needs_finetune:
        steps.append({"finetune": {"epochs": 3, "max_minutes": minutes["finetune"]}})
    steps.append({"eval": {"split": "val", "batch_size": 32}})
    distill: dict[str, Any] = {"student_layers": plan_shape.layers, "student_ffn": plan_shape.ffn, "vocab": "task",
                               "task_minutes": minutes["task"], "task_epochs": 10}
    if goal.quick:
        distill.update(stages=["task"], task_limit=20000)
    else:
        distill.update(general_minutes=minutes["general"])
    steps.append({"distill": distill})
    if plan_shape.head_share > 0:
        source = "onnxruntime" if goal.target == "host" else goal.target
        steps.append({"prune": {"heads": plan_shape.head_share, "target_latency_ms": round(
            plan_shape.predicted_fp32_ms * 1.02, 4) if source != "onnxruntime" else goal.deadline_ms,
            "latency_source": source, "target_seq_len": goal.seq_len, "recover_minutes": minutes["recover"]}})
    quant: dict[str, Any] = {"scheme": "auto", "max_drop": round(goal.max_drop / 2, 4),
                             "latency_seq_len": goal.seq_len}
    if goal.quick:
        quant.update(candidates=["dynamic", "dynamic-attn"], mixed_k=[], screen_size=200)
    if runtime == "onnxruntime":
        steps.append({"quantize": quant})
    elif runtime == "litert":
        steps.append({"export.litert": {"precision": "int8", "seq_len": goal.seq_len}})
    else:
        raise ConfigError(f"optimize: target {goal.target!r} deploys with {runtime}, which cannot run on this Linux "
                          "host, so the validate step could not score it; pass --runtime onnxruntime (or litert) "
                          "to optimize for that runtime on this target")
    steps.append({"validate": {"target": goal.target, "deadline_ms": goal.deadline_ms, "seq_len": goal.seq_len,
                               "batch_size": 32, "rounds": 5 if goal.quick else 9,
                               "budget_s": 10.0 if goal.quick else 30.0}})
    return {"description": (f"Planned by `edgeslim optimize` for {goal.target} ({runtime}): deadline "
                            f"{goal.deadline_ms} ms at batch 1, {goal.seq_len} tokens; at most {goal.max_drop} points "
                            f"below the teacher" + (f"; at most {goal.max_size_mb} MB" if goal.max_size_mb else "")
                            + f"; about {goal.budget:g} minutes."),
            "model": goal.model, "task": goal.task, "seed": goal.seed, "threads": goal.threads, "steps": steps}


def plan(goal: Goal, settings: Any = None) -> Plan:
    """Plan the run for `goal`; raises GoalImpossible when the predictor rules it out (before any training)."""
    from ..artifact import ModelArtifact
    from ..hardware import load_profile, resolve_config
    from ..models.zoo import resolve_model_source
    from ..tasks.base import get_task

    task = get_task(goal.task)
    if task.kind not in ("classification", "regression"):
        raise ConfigError(f"optimize supports text classification/regression tasks so far, not {task.name} "
                          f"({task.kind}); see `edgeslim tasks`")
    src = resolve_model_source(goal.model)
    art = ModelArtifact.load(src)
    if art.format != "hf":
        raise ConfigError(f"optimize: --model must be a PyTorch (Hugging Face) model folder or packaged name, got a "
                          f"{art.format} artifact ({src})")
    teacher = resolve_config(src)
    if teacher.is_vision:
        raise ConfigError("optimize: vision models are not planned yet; use a recipe (`edgeslim run`)")
    profile = load_profile(goal.target)
    runtime = goal.runtime or profile.runtime
    needs_finetune = art.task != task.name
    vocab = student_vocab(src, task, settings)
    cands = candidates_for(teacher, vocab, profile, goal)
    chosen = choose(cands)
    if chosen is None:
        raise GoalImpossible(impossible_message(goal, cands))
    n_train = len(task.load("train", settings))
    minutes = split_minutes(goal, n_train, needs_finetune, chosen.head_share)
    notes = []
    if not needs_finetune:
        notes.append(f"{goal.model} is already fine-tuned on {task.name}: it is the teacher as given")
    if runtime != profile.runtime:
        notes.append(f"runtime {runtime} instead of the profile's {profile.runtime} (--runtime)")
    from ..hardware.check import trust_for

    trust = trust_for(profile, chosen.precision)
    _, hi = trust.range_ms(chosen.predicted_ms)
    if hi > goal.deadline_ms:
        notes.append(f"the chosen shape meets the {goal.deadline_ms:g} ms deadline at its predicted "
                     f"{chosen.predicted_ms:.2f} ms, but {goal.target} at {chosen.precision} is {trust.label}: it "
                     f"could take up to {hi:.2f} ms (validate's verdict will say uncertain unless measured)")
    recipe = build_recipe(goal, chosen, minutes, needs_finetune, runtime)
    return Plan(goal, {"path": str(src), "layers": teacher.layers, "hidden": teacher.hidden, "heads": teacher.heads,
                       "ffn": teacher.ffn, "vocab": teacher.vocab}, runtime, needs_finetune, vocab, cands, chosen,
                minutes, recipe, notes, trust.to_dict())
