"""The `distill` step: build a student from the teacher, then two-stage knowledge distillation.

Stage 1 (`general`) matches the teacher's hidden states / attention maps on unlabelled text (SQuAD paragraphs +
other GLUE tasks' sentences + user files); stage 2 (`task`) matches the fine-tuned teacher's soft labels (plus the
gold labels) on the task's training set. See docs/distill.md.
"""
from __future__ import annotations

import dataclasses
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..artifact import ModelArtifact, run_key
from ..context import RunContext
from ..errors import ConfigError
from ..fileio import atomic_dir
from ..registry import register_step
from ..tasks.base import get_task

STAGES = ("general", "task")
VOCABS = ("task", "full")
DEFAULT_GENERAL_LOSSES = {"hidden_mse": 1.0, "attention": 1.0, "embedding": 1.0}
DEFAULT_TASK_LOSSES = {"kl": 1.0, "ce": 0.5}


@dataclass(frozen=True)
class DistillConfig:
    """Distil the input (fine-tuned teacher) into a smaller student: general then task stage."""

    student_layers: int | tuple[int, ...] | None = 3   # count (evenly spaced, first and last kept) or a layer map
    student_hidden: int | None = None                  # None = the teacher's
    student_heads: int | None = None                   # None = student_hidden / teacher head size
    student_ffn: int | None = None                     # None = the teacher's
    init: str = "teacher"                              # "teacher" (slice mapped layers) | "scratch"
    vocab: str = "task"                                # "task": keep the ids of the task's train text; "full"
    projection: bool = True                            # learned student->teacher width map for hidden losses
    stages: tuple[str, ...] | str = STAGES
    general_losses: dict[str, float] | str = field(default_factory=lambda: dict(DEFAULT_GENERAL_LOSSES))
    task_losses: dict[str, float] | str = field(default_factory=lambda: dict(DEFAULT_TASK_LOSSES))
    temperature: float = 2.0
    general_minutes: float = 3.0
    task_minutes: float = 5.0
    general_epochs: float = 1.0
    task_epochs: float = 3.0
    corpus: tuple[str, ...] | str = ("squad", "glue")
    corpus_files: tuple[str, ...] | str = ()
    general_limit: int | None = None                   # cap on stage-1 texts
    task_limit: int | None = None                      # cap on stage-2 training examples
    general_teacher: str | None = None                 # another model for stage 1 (same vocabulary); None = teacher
    lr: float = 1e-4
    general_lr: float | None = None                    # None = lr
    batch_size: int = 32
    max_length: int = 64
    warmup: float = 0.06
    weight_decay: float = 0.01
    calib_examples: int = 512                          # examples scoring channels/heads/neurons for width slicing
    checkpoint_minutes: float = 2.0
    eval_batch_size: int = 32
    eval_max_length: int = 128

    def __post_init__(self) -> None:
        from .losses import parse_weights
        from .student import INITS

        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        if isinstance(self.student_layers, (list, tuple)):
            put("student_layers", tuple(int(x) for x in self.student_layers))
        elif self.student_layers is not None and not isinstance(self.student_layers, int):
            raise ConfigError(f"distill: student_layers must be a count or a list of teacher layers, "
                              f"got {self.student_layers!r}")
        stages = (self.stages,) if isinstance(self.stages, str) else tuple(self.stages)
        for s in stages:
            if s not in STAGES:
                raise ConfigError(f"distill: unknown stage {s!r}; stages are {', '.join(STAGES)}")
        if not stages or len(set(stages)) != len(stages) or list(stages) != sorted(stages, key=STAGES.index):
            raise ConfigError(f"distill: stages must be a non-empty ordered subset of {list(STAGES)}, got {list(stages)}")
        put("stages", stages)
        for name in ("corpus", "corpus_files"):
            v = getattr(self, name)
            put(name, (v,) if isinstance(v, str) else tuple(v))
        put("general_losses", parse_weights(self.general_losses, "distill: general_losses"))
        put("task_losses", parse_weights(self.task_losses, "distill: task_losses"))
        if "general" in stages and "ce" in self.general_losses:
            raise ConfigError("distill: general_losses cannot use 'ce': the general corpus has no labels")
        if self.init not in INITS:
            raise ConfigError(f"distill: init must be one of {', '.join(INITS)}, got {self.init!r}")
        if self.vocab not in VOCABS:
            raise ConfigError(f"distill: vocab must be one of {', '.join(VOCABS)}, got {self.vocab!r}")
        for name in ("temperature", "general_minutes", "task_minutes", "general_epochs", "task_epochs", "lr",
                     "checkpoint_minutes"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"distill: {name} must be > 0, got {getattr(self, name)}")
        for name in ("batch_size", "calib_examples", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"distill: {name} must be >= 1, got {getattr(self, name)}")
        if not 8 <= self.max_length <= 512:
            raise ConfigError(f"distill: max_length must be in 8..512, got {self.max_length}")
        if not 0 <= self.warmup < 1:
            raise ConfigError(f"distill: warmup must be in [0, 1), got {self.warmup}")
        if self.general_lr is not None and self.general_lr <= 0:
            raise ConfigError(f"distill: general_lr must be > 0, got {self.general_lr}")
        if self.general_teacher is not None and "kl" in self.general_losses:
            raise ConfigError("distill: 'kl' in general_losses needs the task teacher's logits; drop general_teacher "
                              "or the kl loss")


@dataclass
class Prepared:
    """Teacher, student and everything derived from them, before any training."""

    task: Any
    teacher: Any
    tokenizer: Any
    student: Any
    student_tokenizer: Any
    plan: Any
    selection: Any
    projection: Any
    lut: Any
    keep_ids: list[int] | None
    train: Any                    # teacher-tokenised training examples (Encoded)
    teacher_params: int
    student_params: int

    def sizes(self) -> dict[str, Any]:
        """Parameter counts and ratio (all parameters, embeddings included)."""
        emb_t = self.teacher.get_input_embeddings().weight.numel()
        emb_s = self.student.get_input_embeddings().weight.numel()
        return {"teacher_params": self.teacher_params, "student_params": self.student_params,
                "ratio": round(self.teacher_params / self.student_params, 3),
                "teacher_word_embedding_params": emb_t, "student_word_embedding_params": emb_s,
                "counted": "all parameters incl. word/position embeddings, pooler and classifier",
                "student_vocab": len(self.student_tokenizer), "teacher_vocab": len(self.tokenizer)}


def _task_text(examples: list[Any]) -> list[str]:
    return [t for e in examples for t in (e.text_a, e.text_b) if t]


def prepare(model: ModelArtifact, cfg: DistillConfig, ctx: RunContext) -> Prepared:
    """Check the request against the teacher, load it, and build the (untrained) student; fails before training."""
    import random

    import torch

    from .student import activation_importance, build_student, count_params, plan_student, \
        selection_projection
    from .train import id_lut
    from ..models.hf import load_model, load_tokenizer, model_shape
    from ..training.text import collate, encode

    task_name = ctx.task or model.task
    if not task_name:
        raise ConfigError("distill needs a task: pass --task (e.g. sst2) or set `task:` in the recipe")
    task = get_task(task_name)
    if task.kind != "classification":
        raise ConfigError(f"distill supports text classification tasks (e.g. sst2), not {task.kind!r} ({task.name})")
    shape = model_shape(model.path)
    layers = cfg.student_layers
    plan = plan_student(shape, layers=layers, hidden=cfg.student_hidden, heads=cfg.student_heads,
                        ffn=cfg.student_ffn, init=cfg.init)
    hidden_losses = {n for st in cfg.stages for n, w in
                     (cfg.general_losses if st == "general" else cfg.task_losses).items()
                     if w > 0 and n in ("hidden_mse", "embedding", "cosine")}
    if plan.hidden != shape.hidden and hidden_losses and not cfg.projection:
        raise ConfigError(f"distill: width mismatch without projection: student hidden {plan.hidden} != teacher "
                          f"hidden {shape.hidden} and {sorted(hidden_losses)} compare hidden states; set "
                          "projection: true (learned map) or drop those losses")
    ctx.seed_everything()
    id2label = {i: n for i, n in enumerate(task.labels)}
    teacher = load_model(model.path, task.kind, num_labels=task.num_labels, id2label=id2label)
    tok = load_tokenizer(model.path)
    examples = task.load("train", ctx.settings)
    if cfg.task_limit:
        examples = random.Random(ctx.seed).sample(examples, min(cfg.task_limit, len(examples)))
    train = encode(tok, examples, cfg.max_length)
    importance = None
    if cfg.init == "teacher" and (plan.hidden, plan.heads, plan.ffn) != (shape.hidden, shape.heads, shape.ffn):
        calib = list(range(min(cfg.calib_examples, len(train))))
        batches = [collate(train, calib[i:i + 64], tok.pad_token_id, with_labels=False)
                   for i in range(0, len(calib), 64)]
        importance = activation_importance(teacher, batches)
    torch.manual_seed(ctx.seed)
    student, sel = build_student(teacher, plan, importance)
    stok, keep, lut = tok, None, None
    if cfg.vocab == "task":
        from ..models.vocab import check_keep_ids, collect_vocab, prune_vocab

        keep = check_keep_ids(tok, collect_vocab(tok, _task_text(examples)))
        student, stok = prune_vocab(student, tok, keep)
        lut = id_lut(len(tok), keep, stok.unk_token_id)
    projection = None
    if plan.hidden != shape.hidden and cfg.projection:
        projection = selection_projection(plan.hidden, shape.hidden, sel.channels)
    return Prepared(task, teacher, tok, student, stok, plan, sel, projection, lut, keep, train,
                    count_params(teacher), count_params(student))


# disk: as finetune, with the teacher's size as the bound of the student's
@register_step("distill", DistillConfig, accepts=("hf",), produces="hf", backends=("torch", "transformers"),
               disk_factor=7.0)
def distill(model: ModelArtifact, cfg: DistillConfig, ctx: RunContext) -> ModelArtifact:
    """Distil the teacher into a smaller student (general then task stage) and score it on dev."""
    from .corpus import general_corpus
    from .losses import LossContext
    from .train import Stage, teacher_logits, train_stage
    from ..models.hf import load_model, load_tokenizer, save_model
    from ..tasks.base import TextExample
    from ..evaluate.text import EvalSettings, evaluate_text_model
    from ..training.loop import LoopConfig, read_checkpoint
    from ..training.text import encode

    p = prepare(model, cfg, ctx)
    out = Path(ctx.out_dir)
    ckpt_dir = ctx.checkpoint_dir
    state_file = ckpt_dir / "state.pt"
    key = run_key(model.content_hash, p.task.name, dataclasses.asdict(cfg), ctx.seed)
    stage_keys = [run_key(key, name) for name in cfg.stages]
    # stage lr, epochs and minutes are set per stage (Stage); the rest is shared
    loop = LoopConfig(lr=cfg.lr, batch_size=cfg.batch_size, warmup=cfg.warmup, weight_decay=cfg.weight_decay,
                      checkpoint_minutes=cfg.checkpoint_minutes, seed=ctx.seed)
    # One checkpoint file for the whole step: it holds the stage in progress (or last finished), keyed by that
    # stage, with the summaries of the stages before it; those are not re-run.
    saved = read_checkpoint(state_file)
    first = stage_keys.index(saved["key"]) if saved is not None and saved["key"] in stage_keys else 0
    results: dict[str, Any] = dict(saved["extra"]["results"]) if first else {}
    resumed = saved is not None and first > 0

    head_map = p.selection.heads
    t0 = time.perf_counter()
    for i, name in enumerate(cfg.stages):
        if i < first:
            continue
        loss_ctx = LossContext(layer_map=p.plan.layer_map, head_map=head_map, projection=p.projection,
                               temperature=cfg.temperature)
        if name == "general":
            texts = general_corpus(cfg.corpus, cfg.corpus_files, exclude_task=p.task.name, settings=ctx.settings,
                                   limit=cfg.general_limit, seed=ctx.seed)
            data = encode(p.tokenizer, [TextExample(t, None, 0) for t in texts], cfg.max_length)
            teacher = p.teacher
            if cfg.general_teacher:
                teacher = load_model(cfg.general_teacher, None)
                if load_tokenizer(cfg.general_teacher).get_vocab() != p.tokenizer.get_vocab():
                    raise ConfigError(f"distill: general_teacher {cfg.general_teacher} has another vocabulary than "
                                      "the teacher; use a model with the same tokenizer")
            stage = Stage(name, dict(cfg.general_losses), data, cfg.general_minutes, cfg.general_epochs,
                          cfg.general_lr or cfg.lr)
        else:
            teacher = p.teacher
            weights = dict(cfg.task_losses)
            cached = None
            stage = Stage(name, weights, p.train, cfg.task_minutes, cfg.task_epochs, cfg.lr, labels=True)
            if stage.needs <= {"logits", "labels"} and "logits" in stage.needs:
                ck = run_key(model.content_hash, p.task.name, cfg.max_length, cfg.task_limit, ctx.seed
                             if cfg.task_limit else None, len(p.train))
                cached = teacher_logits(p.teacher, p.train, p.tokenizer.pad_token_id,
                                        cache_dir=Path(ctx.settings.runs_dir) / ".cache" / "distill", key=ck,
                                        quiet=ctx.quiet)
                stage.cached_logits = cached
        result = train_stage(stage, p.student, teacher, loss_ctx, p.lut, p.tokenizer.pad_token_id, loop,
                             checkpoint=state_file, key=stage_keys[i], extra={"results": results}, quiet=ctx.quiet)
        resumed = resumed or result["resumed"]
        result["losses"] = stage.weights
        result["teacher_logits"] = "online" if stage.teacher_online else ("cached" if stage.cached_logits is not None
                                                                            else "unused")
        if name == "general":
            result["corpus_texts"] = len(stage.data)
        results[name] = result
    train_seconds = time.perf_counter() - t0
    metrics = evaluate_text_model(p.student, p.student_tokenizer, p.task,
                                  EvalSettings("dev", cfg.eval_batch_size, cfg.eval_max_length), ctx.settings)
    primary = p.task.primary
    teacher_score = model.metrics.get(primary) if isinstance(model.metrics, dict) else None
    teacher_eval = "teacher manifest"
    if not isinstance(teacher_score, (int, float)):
        teacher_score = evaluate_text_model(p.teacher, p.tokenizer, p.task, EvalSettings(
            "dev", cfg.eval_batch_size, cfg.eval_max_length), ctx.settings)[primary]
        teacher_eval = "measured now"
    metrics["distill"] = {**p.sizes(), "stages": results, "train_seconds": round(train_seconds, 1),
                          "resumed": resumed, "teacher_" + primary: teacher_score, "teacher_score_from": teacher_eval,
                          "retention": round(metrics[primary] / teacher_score, 4) if teacher_score else None,
                          "layer_map": list(p.plan.layer_map)}
    with atomic_dir(out) as tmp:
        save_model(p.student, tmp, p.student_tokenizer)
    extra = {"kind": p.task.kind, "labels": list(p.task.labels),
             "student": {**dataclasses.asdict(p.plan), "vocab": len(p.student_tokenizer)},
             "params": p.student_params, "teacher_params": p.teacher_params}
    art = ModelArtifact.create(out, "hf", task=p.task.name, parent=model, step="distill",
                               step_config={**dataclasses.asdict(cfg), "seed": ctx.seed}, metrics=metrics,
                               extra=extra)
    if ckpt_dir.exists():
        shutil.rmtree(ckpt_dir)
    return art
