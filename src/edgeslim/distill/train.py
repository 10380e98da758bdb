"""The distillation training stage shared by both stages, on the one training loop (training.loop), with teacher
logits served from a disk cache when no loss needs more."""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..fileio import atomic_path
from ..progress import progress_bar
from ..training.loop import LoopConfig, LoopResult, train_loop
from ..training.text import Encoded, collate
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


def stage_summary(res: LoopResult) -> dict[str, Any]:
    """Steps, time, stop reason and the mean loss parts of the first and last steps of a stage."""
    window = max(1, min(50, res.steps // 4))   # mean of the first / last `window` steps
    first, tail = res.first_losses[:window], res.recent_losses[-window:]
    keys = sorted({k for d in tail for k in d})
    return {"steps": res.steps, "planned_steps": res.planned_steps, "epochs": res.epochs,
            "seconds": round(res.seconds, 1), "stopped_by": res.stopped_by, "resumed": res.resumed,
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
    with progress_bar("teacher logits (cached once)", math.ceil(len(data) / batch_size), quiet,
                      unit="batches") as bar, \
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


def train_stage(stage: Stage, student: Any, teacher: Any, loss_ctx: LossContext, lut: Any, pad_id: int,
                loop: LoopConfig, *, checkpoint: Path | None = None, key: str = "",
                extra: Mapping[str, Any] | None = None, quiet: bool = False) -> dict[str, Any]:
    """Train `student` (and the projection in `loss_ctx`) on one stage; returns the stage's summary.

    `loop` holds the settings both stages share; the stage sets lr, epochs and minutes. A checkpoint saved under
    `key` (student, projection, optimizer, step) is resumed; `extra` is saved with it.
    """
    import torch

    needs = stage.needs
    want_hidden, want_att = "hidden" in needs, "attentions" in needs
    params = list(student.named_parameters())
    if loss_ctx.projection is not None and want_hidden:
        params += [(f"projection.{n}", p) for n, p in loss_ctx.projection.named_parameters()]
    modules = {"student": student}
    if loss_ctx.projection is not None:
        modules["projection"] = loss_ctx.projection

    def loss_fn(b: list[int]) -> tuple[Any, dict[str, float]]:
        batch = collate(stage.data, b, pad_id, with_labels=stage.labels)
        labels = batch.pop("labels", None)
        if stage.teacher_online:
            with torch.no_grad():
                to = teacher(**batch, output_hidden_states=want_hidden, output_attentions=want_att)
            t_out = Outputs(to.logits, to.hidden_states if want_hidden else None, to.attentions if want_att else None)
        else:
            t_out = Outputs(stage.cached_logits[b] if stage.cached_logits is not None else None)
        s_batch = dict(batch)
        if lut is not None:
            s_batch["input_ids"] = lut[batch["input_ids"]]
        so = student(**s_batch, output_hidden_states=want_hidden, output_attentions=want_att)
        s_out = Outputs(so.logits, so.hidden_states if want_hidden else None, so.attentions if want_att else None)
        loss_ctx.mask, loss_ctx.labels = batch["attention_mask"], labels
        return combined_loss(stage.weights, s_out, t_out, loss_ctx)

    cfg = dataclasses.replace(loop, lr=stage.lr, epochs=stage.epochs, max_minutes=stage.minutes)
    student.train()
    teacher.eval()
    res = train_loop(params, stage.data.lengths, loss_fn, cfg, checkpoint=checkpoint, key=key, modules=modules,
                     extra=extra, description=f"distill: {stage.name} stage", quiet=quiet)
    student.eval()
    return stage_summary(res)
