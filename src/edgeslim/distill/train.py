"""The distillation training loop shared by both stages: seeded length-grouped batches, the finetune lr schedule,
a time budget, resumable state, and teacher logits served from a disk cache when no loss needs more."""
from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..fileio import atomic_path
from ..progress import progress_bar
from ..finetune.step import lr_factor, optimizer_step
from ..training.text import Encoded, collate, length_grouped_batches
from .losses import LossContext, Outputs, combined_loss, needs_of


@dataclass
class Stage:
    """One training stage: its data (teacher-tokenised), losses and budget."""

    name: str                                   # "general" | "task"
    weights: dict[str, float]
    data: Encoded
    minutes: float
    epochs: float
    lr: float
    labels: bool = False                        # pass gold labels (task stage)
    cached_logits: Any = None                   # [N, C] teacher logits in `data` order, or None

    @property
    def needs(self) -> set[str]:
        return needs_of(self.weights)

    @property
    def teacher_online(self) -> bool:
        n = self.needs
        return bool(n & {"hidden", "attentions"}) or ("logits" in n and self.cached_logits is None)


@dataclass
class TrainSettings:
    batch_size: int = 32
    warmup: float = 0.06
    weight_decay: float = 0.01
    checkpoint_minutes: float = 2.0
    seed: int = 0
    quiet: bool = False


@dataclass
class StageResult:
    steps: int = 0
    seconds: float = 0.0
    stopped_by: str = "epochs"
    losses: list[dict[str, float]] = field(default_factory=list)

    def summary(self, total_steps: int, steps_per_epoch: int) -> dict[str, Any]:
        window = max(1, min(50, len(self.losses) // 4))   # mean of the first / last `window` steps
        tail, first = self.losses[-window:], self.losses[:window]
        keys = sorted({k for d in tail for k in d})
        return {"steps": self.steps, "planned_steps": total_steps, "epochs": round(self.steps / steps_per_epoch, 3),
                "seconds": round(self.seconds, 1), "stopped_by": self.stopped_by,
                "first_loss": {k: round(sum(d.get(k, 0) for d in first) / max(1, len(first)), 4) for k in keys},
                "final_loss": {k: round(sum(d.get(k, 0) for d in tail) / max(1, len(tail)), 4) for k in keys}}


def id_lut(teacher_vocab: int, keep_ids: list[int] | None, unk_new: int | None) -> Any:
    """teacher token id -> student token id (identity without vocabulary pruning; dropped ids -> [UNK])."""
    import torch

    if keep_ids is None:
        return None
    lut = torch.full((teacher_vocab,), int(unk_new), dtype=torch.long)
    lut[torch.tensor(keep_ids, dtype=torch.long)] = torch.arange(len(keep_ids), dtype=torch.long)
    return lut


def teacher_logits(teacher: Any, data: Encoded, pad_id: int, *, cache_dir: Path | None, key: str,
                   batch_size: int = 128, quiet: bool = False) -> Any:
    """Teacher logits for every example of `data` (in order), computed once and cached on disk under `key`."""
    import torch

    from ..training.text import iter_batches

    cache = Path(cache_dir) / f"teacher-logits-{key}.pt" if cache_dir else None
    if cache is not None and cache.is_file():
        blob = torch.load(cache, weights_only=True)
        if blob["n"] == len(data):
            return blob["logits"]
    out = None
    with progress_bar("teacher logits (cached once)", math.ceil(len(data) / batch_size), quiet) as bar, \
            torch.inference_mode():
        for idx, batch in iter_batches(data, batch_size, pad_id):
            logits = teacher(**batch).logits.float()
            if out is None:
                out = torch.zeros(len(data), logits.shape[-1])
            out[torch.tensor(idx)] = logits
            bar.advance()
    if cache is not None:
        with atomic_path(cache) as tmp:
            torch.save({"n": len(data), "logits": out}, tmp)
    return out


def cache_key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def train_stage(stage: Stage, student: Any, teacher: Any, loss_ctx: LossContext, lut: Any, pad_id: int,
                settings: TrainSettings, *, resume: dict[str, Any] | None = None,
                save: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train `student` (and the projection in `loss_ctx`) on one stage; returns the stage's summary.

    `resume` is a state dict that `save` wrote earlier for this stage (optimizer, step, elapsed, rng).
    """
    import torch

    needs = stage.needs
    want_hidden, want_att = "hidden" in needs, "attentions" in needs
    params = [(n, p) for n, p in student.named_parameters()]
    if loss_ctx.projection is not None and want_hidden:
        params += [(f"projection.{n}", p) for n, p in loss_ctx.projection.named_parameters()]
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")
    groups = [{"params": [p for n, p in params if not n.endswith(no_decay)], "weight_decay": settings.weight_decay},
              {"params": [p for n, p in params if n.endswith(no_decay)], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=stage.lr)
    steps_per_epoch = math.ceil(len(stage.data) / settings.batch_size)
    total_steps = max(1, int(stage.epochs * steps_per_epoch))
    budget = stage.minutes * 60
    res = StageResult()
    elapsed = 0.0
    if resume:
        opt.load_state_dict(resume["optim"])
        res.steps, elapsed, res.losses = resume["step"], resume["elapsed"], resume.get("losses", [])
        torch.set_rng_state(resume["torch_rng"])

    def snapshot() -> dict[str, Any]:
        return {"optim": opt.state_dict(), "step": res.steps, "elapsed": elapsed, "losses": res.losses[-200:],
                "torch_rng": torch.get_rng_state()}

    student.train()
    teacher.eval()
    start = time.perf_counter() - elapsed
    last_ckpt = time.perf_counter()
    with progress_bar(f"distill: {stage.name} stage", total_steps, settings.quiet) as bar:
        bar.advance(res.steps)
        while res.steps < total_steps and res.stopped_by != "max_minutes":
            epoch = res.steps // steps_per_epoch
            batches = length_grouped_batches(stage.data.lengths, settings.batch_size, settings.seed + epoch)
            for b in batches[res.steps - epoch * steps_per_epoch:]:
                elapsed = time.perf_counter() - start
                if elapsed >= budget:
                    res.stopped_by = "max_minutes"
                    break
                progress = max(res.steps / total_steps, elapsed / budget)
                for g in opt.param_groups:
                    g["lr"] = stage.lr * lr_factor(progress, settings.warmup)
                batch = collate(stage.data, b, pad_id, with_labels=stage.labels)
                labels = batch.pop("labels", None)
                if stage.teacher_online:
                    with torch.no_grad():
                        to = teacher(**batch, output_hidden_states=want_hidden, output_attentions=want_att)
                    t_out = Outputs(to.logits, to.hidden_states if want_hidden else None,
                                    to.attentions if want_att else None)
                else:
                    t_out = Outputs(stage.cached_logits[b] if stage.cached_logits is not None else None)
                s_batch = dict(batch)
                if lut is not None:
                    s_batch["input_ids"] = lut[batch["input_ids"]]
                so = student(**s_batch, output_hidden_states=want_hidden, output_attentions=want_att)
                s_out = Outputs(so.logits, so.hidden_states if want_hidden else None,
                                so.attentions if want_att else None)
                loss_ctx.mask, loss_ctx.labels = batch["attention_mask"], labels
                loss, parts = combined_loss(stage.weights, s_out, t_out, loss_ctx)
                optimizer_step(loss, [p for _, p in params], opt)
                res.steps += 1
                parts["total"] = float(loss.detach())
                res.losses.append(parts)
                bar.advance()
                if res.steps % 20 == 0:
                    tail = res.losses[-50:]
                    bar.set(f"loss {sum(d['total'] for d in tail) / len(tail):.4f}")
                if save is not None and time.perf_counter() - last_ckpt > settings.checkpoint_minutes * 60:
                    elapsed = time.perf_counter() - start
                    save(snapshot())
                    last_ckpt = time.perf_counter()
                if res.steps >= total_steps:
                    break
    res.seconds = time.perf_counter() - start
    student.eval()
    return res.summary(total_steps, steps_per_epoch)
