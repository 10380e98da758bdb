"""Fine-tune a model on a task: seeded, length-grouped batches, time budget, resumable checkpoints."""
from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..artifact import ModelArtifact, run_key
from ..context import RunContext
from ..errors import ConfigError
from ..fileio import atomic_dir
from ..registry import register_step
from ..tasks.base import TaskSpec, get_task
from ..training.loop import LoopConfig, lr_factor, train_loop  # noqa: F401  (lr_factor: older callers)


@dataclass(frozen=True)
class FinetuneConfig:
    """Fine-tune on the task's training split; stops at `epochs` or `max_minutes`, whichever is first."""

    epochs: float = 3.0
    max_minutes: float = 17.0
    batch_size: int = 32
    lr: float = 1e-4
    warmup: float = 0.06            # share of the schedule spent warming up
    weight_decay: float = 0.01
    max_length: int = 128
    checkpoint_minutes: float = 2.0
    eval_batch_size: int = 32

    def __post_init__(self) -> None:
        for name in ("epochs", "max_minutes", "lr", "checkpoint_minutes"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"finetune: {name} must be > 0, got {getattr(self, name)}")
        if self.batch_size < 1:
            raise ConfigError(f"finetune: batch_size must be >= 1, got {self.batch_size}")
        if not 0 <= self.warmup < 1:
            raise ConfigError(f"finetune: warmup must be in [0, 1), got {self.warmup}")


# disk: the model (1x) + a checkpoint of weights and two AdamW moments (3x), twice while one replaces the other
@register_step("finetune", FinetuneConfig, accepts=("hf",), produces="hf", backends=("torch", "transformers"),
               disk_factor=7.0)
def finetune(model: ModelArtifact, cfg: FinetuneConfig, ctx: RunContext) -> ModelArtifact:
    """Fine-tune `model` on the context's task and evaluate it on the dev split; a re-run after a crash resumes."""
    task_name = ctx.task or model.task
    if not task_name:
        raise ConfigError("finetune needs a task: pass --task (e.g. sst2) or set `task:` in the recipe")
    task = get_task(task_name)
    if task.kind not in ("classification", "regression", "qa"):
        raise ConfigError(f"finetune supports text classification/regression/QA tasks, not {task.kind!r}")
    ctx.seed_everything()
    ckpt_dir = ctx.checkpoint_dir
    loop = LoopConfig(lr=cfg.lr, epochs=cfg.epochs, max_minutes=cfg.max_minutes, batch_size=cfg.batch_size,
                      warmup=cfg.warmup, weight_decay=cfg.weight_decay, checkpoint_minutes=cfg.checkpoint_minutes,
                      seed=ctx.seed)
    key = run_key(model.content_hash, task.name, dataclasses.asdict(cfg), ctx.seed)
    if task.kind == "qa":
        from .qa import finetune_qa

        art = finetune_qa(model, cfg, ctx, task, loop, ckpt_dir / "state.pt", key)
    else:
        art = finetune_text(model, cfg, ctx, task, loop, ckpt_dir / "state.pt", key)
    shutil.rmtree(ckpt_dir, ignore_errors=True)     # the artifact is complete: nothing left to resume
    return art


def finetune_text(model: ModelArtifact, cfg: FinetuneConfig, ctx: RunContext, task: TaskSpec, loop: LoopConfig,
                  checkpoint: Path, key: str) -> ModelArtifact:
    """Fine-tune a sequence classification/regression head on the task's train split; score it on dev."""
    from ..evaluate.text import EvalSettings, evaluate_text_model
    from ..models.hf import load_model, load_tokenizer, save_model
    from ..training.text import collate, encode

    train = task.load("train", ctx.settings)
    tok = load_tokenizer(model.path)
    id2label = {i: n for i, n in enumerate(task.labels)} if task.labels else None
    net = load_model(model.path, task.kind, num_labels=task.num_labels, id2label=id2label)
    # what transformers sets on the first forward with labels, set up front: a run resumed from a finished
    # checkpoint makes no forward, and its config.json (so its content hash) must still match
    net.config.problem_type = "regression" if task.kind == "regression" else "single_label_classification"
    enc = encode(tok, train, cfg.max_length)

    def loss_fn(b: list[int]) -> tuple[Any, dict[str, float]]:
        return net(**collate(enc, b, tok.pad_token_id)).loss, {}

    net.train()
    res = train_loop(net.named_parameters(), enc.lengths, loss_fn, loop, checkpoint=checkpoint, key=key,
                     modules={"model": net}, description=f"finetune {task.name}", quiet=ctx.quiet)
    net.eval()
    metrics = evaluate_text_model(net, tok, task, EvalSettings("dev", cfg.eval_batch_size, cfg.max_length),
                                  ctx.settings)
    metrics["train"] = {"steps": res.steps, "epochs": res.epochs, "seconds": round(res.seconds, 1),
                        "stopped_by": res.stopped_by, "resumed": res.resumed, "final_loss": res.mean_loss()}
    with atomic_dir(ctx.out_dir) as tmp:
        save_model(net, tmp, tok)
    return ModelArtifact.create(ctx.out_dir, "hf", task=task.name, parent=model, step="finetune",
                                step_config={**dataclasses.asdict(cfg), "seed": ctx.seed}, metrics=metrics,
                                extra={"labels": list(task.labels), "kind": task.kind})
