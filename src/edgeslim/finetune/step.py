"""Fine-tune a model on a task: seeded, length-grouped batches, time budget, resumable checkpoints."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

from ..artifact import ModelArtifact
from ..context import RunContext
from ..errors import ConfigError
from ..fileio import atomic_dir, atomic_path
from ..progress import progress_bar
from ..registry import register_step
from ..tasks.base import get_task
from ..training.loop import lr_factor, optimizer_step


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






def _run_key(source: ModelArtifact, task: str, cfg: FinetuneConfig, seed: int) -> str:
    blob = json.dumps([source.content_hash, task, dataclasses.asdict(cfg), seed], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@register_step("finetune", FinetuneConfig, accepts=("hf",), produces="hf", backends=("torch", "transformers"))
def finetune(model: ModelArtifact, cfg: FinetuneConfig, ctx: RunContext) -> ModelArtifact:
    """Fine-tune `model` on the context's task and evaluate it on the dev split."""
    import torch

    from ..models.hf import load_model, load_tokenizer, save_model
    from ..evaluate.text import EvalSettings, evaluate_text_model
    from ..training.text import collate, encode, length_grouped_batches

    task_name = ctx.task or model.task
    if not task_name:
        raise ConfigError("finetune needs a task: pass --task (e.g. sst2) or set `task:` in the recipe")
    task = get_task(task_name)
    if task.kind not in ("classification", "regression"):
        if task.kind == "qa":
            from .qa import finetune_qa

            return finetune_qa(model, cfg, ctx, task)
        raise ConfigError(f"finetune supports text classification/regression/QA tasks, not {task.kind!r}")
    ctx.seed_everything()
    out = Path(ctx.out_dir)
    ckpt_dir = out.with_name(out.name + ".ckpt")
    key = _run_key(model, task.name, cfg, ctx.seed)

    train = task.load("train", ctx.settings)
    tok = load_tokenizer(model.path)
    id2label = {i: n for i, n in enumerate(task.labels)} if task.labels else None
    net = load_model(model.path, task.kind, num_labels=task.num_labels, id2label=id2label)
    enc = encode(tok, train, cfg.max_length)
    steps_per_epoch = math.ceil(len(enc) / cfg.batch_size)
    total_steps = max(1, int(cfg.epochs * steps_per_epoch))
    budget = cfg.max_minutes * 60

    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")
    groups = [
        {"params": [p for n, p in net.named_parameters() if not n.endswith(no_decay)], "weight_decay": cfg.weight_decay},
        {"params": [p for n, p in net.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=cfg.lr)
    step, elapsed, resumed = 0, 0.0, False
    state_file = ckpt_dir / "state.pt"
    if state_file.is_file():
        state = torch.load(state_file, weights_only=False)
        if state.get("key") == key:
            net.load_state_dict(state["model"])
            opt.load_state_dict(state["optim"])
            step, elapsed, resumed = state["step"], state["elapsed"], True
            torch.set_rng_state(state["torch_rng"])

    def save_checkpoint() -> None:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(state_file) as tmp:
            torch.save({"key": key, "model": net.state_dict(), "optim": opt.state_dict(), "step": step,
                        "elapsed": elapsed, "torch_rng": torch.get_rng_state()}, tmp)

    net.train()
    start = time.perf_counter() - elapsed
    last_ckpt = time.perf_counter()
    losses: list[float] = []
    stopped_by = "epochs"
    with progress_bar(f"finetune {task.name}", total_steps, ctx.quiet) as bar:
        bar.advance(step)
        while step < total_steps:
            epoch = step // steps_per_epoch
            batches = length_grouped_batches(enc.lengths, cfg.batch_size, ctx.seed + epoch)
            for b in batches[step - epoch * steps_per_epoch:]:
                elapsed = time.perf_counter() - start
                if elapsed >= budget:
                    stopped_by = "max_minutes"
                    break
                progress = max(step / total_steps, elapsed / budget)
                for g in opt.param_groups:
                    g["lr"] = cfg.lr * lr_factor(progress, cfg.warmup)
                batch = collate(enc, b, tok.pad_token_id)
                loss = net(**batch).loss
                optimizer_step(loss, net.parameters(), opt)
                step += 1
                losses.append(loss.item())
                bar.advance()
                if step % 20 == 0:
                    bar.set(f"loss {sum(losses[-50:]) / len(losses[-50:]):.4f}")
                if time.perf_counter() - last_ckpt > cfg.checkpoint_minutes * 60:
                    elapsed = time.perf_counter() - start
                    save_checkpoint()
                    last_ckpt = time.perf_counter()
                if step >= total_steps:
                    break
            if stopped_by == "max_minutes":
                break
    train_seconds = time.perf_counter() - start
    net.eval()
    metrics = evaluate_text_model(net, tok, task, EvalSettings("dev", cfg.eval_batch_size, cfg.max_length),
                                  ctx.settings)
    metrics["train"] = {"steps": step, "epochs": round(step / steps_per_epoch, 3), "seconds": round(train_seconds, 1),
                        "stopped_by": stopped_by, "resumed": resumed, "final_loss": (
                            round(sum(losses[-50:]) / len(losses[-50:]), 4) if losses else None)}
    with atomic_dir(out) as tmp:
        save_model(net, tmp, tok)
    art = ModelArtifact.create(out, "hf", task=task.name, parent=model, step="finetune",
                               step_config={**dataclasses.asdict(cfg), "seed": ctx.seed}, metrics=metrics,
                               extra={"labels": list(task.labels), "kind": task.kind})
    if ckpt_dir.exists():
        import shutil

        shutil.rmtree(ckpt_dir)
    return art
