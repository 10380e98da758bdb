"""The one training loop: parameter groups, warm-up/decay schedule, time budget, atomic checkpoints, resume.

Every training path (fine-tuning, SQuAD fine-tuning, both distillation stages, prune recovery) describes one
step as `loss_fn(batch_indices) -> (loss, parts)` and hands it to `train_loop`, which owns the rest.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DataError, ModelError
from ..fileio import atomic_path
from ..progress import progress_bar
from .memory import require_training_memory

FIRST_LOSSES = 50       # steps kept from the start of a run (the "first loss" of a summary)
RECENT_LOSSES = 200     # steps kept from its end (final loss, progress text); both go into checkpoints


def lr_factor(progress: float, warmup: float) -> float:
    """Linear warm-up then linear decay to zero, over progress in [0, 1]."""
    if progress < warmup:
        return progress / warmup
    return max(0.0, (1 - progress) / (1 - warmup))


def optimizer_step(loss: Any, params: Any, opt: Any, max_grad_norm: float = 1.0) -> None:
    """Backward, clip the gradient norm, step, and clear gradients: one training update."""
    import torch

    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
    opt.step()
    opt.zero_grad(set_to_none=True)


@dataclass(frozen=True)
class LoopConfig:
    """One training run: peak lr, schedule, budget (epochs and/or minutes, first reached wins), checkpoints."""

    lr: float
    epochs: float | None = None        # None: time-only, the run stops at max_minutes
    max_minutes: float = 10.0
    batch_size: int = 32
    warmup: float = 0.06               # share of the schedule spent warming up
    weight_decay: float = 0.01         # AdamW decay, not applied to biases and LayerNorm weights
    checkpoint_minutes: float = 2.0
    seed: int = 0                      # epoch e's batch order is seeded with seed + e
    max_grad_norm: float = 1.0

    def __post_init__(self) -> None:
        for name in ("lr", "max_minutes", "checkpoint_minutes", "max_grad_norm"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"training: {name} must be > 0, got {getattr(self, name)}")
        if self.epochs is not None and self.epochs <= 0:
            raise ConfigError(f"training: epochs must be > 0 or None (time only), got {self.epochs}")
        if self.batch_size < 1:
            raise ConfigError(f"training: batch_size must be >= 1, got {self.batch_size}")
        if not 0 <= self.warmup < 1:
            raise ConfigError(f"training: warmup must be in [0, 1), got {self.warmup}")


@dataclass
class LoopResult:
    """What a run did: steps, time, why it stopped, whether it resumed, and its first and recent losses."""

    steps: int
    planned_steps: int | None          # None for a time-only run
    steps_per_epoch: int
    seconds: float                     # training time, including the time before a resume
    stopped_by: str                    # "epochs" | "max_minutes"
    resumed: bool
    first_losses: list[dict[str, float]] = field(default_factory=list)
    recent_losses: list[dict[str, float]] = field(default_factory=list)

    @property
    def epochs(self) -> float:
        return round(self.steps / self.steps_per_epoch, 3)

    def mean_loss(self, last: int = 50, part: str = "total") -> float | None:
        """Mean of `part` over the last `last` steps (None before any step)."""
        tail = self.recent_losses[-last:]
        return round(sum(d.get(part, 0.0) for d in tail) / len(tail), 4) if tail else None


def no_decay(name: str) -> bool:
    """Biases and LayerNorm weights (any family's spelling) are not weight-decayed."""
    return name.endswith("bias") or "layernorm" in name.lower().replace("_", "")


def param_groups(named_params: Iterable[tuple[str, Any]], weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: decayed weights, then biases and LayerNorm weights without decay (empty groups dropped)."""
    named = list(named_params)
    groups = [{"params": [p for n, p in named if not no_decay(n)], "weight_decay": weight_decay},
              {"params": [p for n, p in named if no_decay(n)], "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def read_checkpoint(path: str | Path | None, key: str | None = None) -> dict[str, Any] | None:
    """The state saved at `path`, or None if there is none (or, given `key`, it belongs to another run)."""
    if path is None or not Path(path).is_file():
        return None
    import torch

    # weights_only: AdamW state is tensors, numbers, tuples and None, all on the safe list; a file holding any
    # other pickled object is refused, never run
    try:
        state = torch.load(path, weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError ... here
        raise ModelError(f"training checkpoint {path} cannot be loaded safely ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''}); delete it to start this step afresh") from exc
    if not isinstance(state, dict):
        raise ModelError(f"training checkpoint {path} is not an edgeslim checkpoint; delete it to start afresh")
    return state if key is None or state.get("key") == key else None


def weights_fingerprint(*modules: Any) -> list[Any]:
    """Per-tensor shape and sums of the modules' floating-point weights: a run-key part that identifies the
    starting weights when no artifact content hash is at hand (e.g. a model pruned in memory)."""
    out: list[Any] = []
    for m in modules:
        for name, t in m.state_dict().items():
            if t.is_floating_point():
                t = t.detach().double()
                out.append([name, list(t.shape), float(t.sum()), float(t.abs().sum())])
    return out


def train_loop(named_params: Iterable[tuple[str, Any]], lengths: Sequence[int],
               loss_fn: Callable[[list[int]], tuple[Any, Mapping[str, float]]], cfg: LoopConfig, *,
               checkpoint: str | Path | None = None, key: str = "", modules: Mapping[str, Any] | None = None,
               extra: Mapping[str, Any] | None = None, description: str = "training",
               quiet: bool = False) -> LoopResult:
    """Train the parameters on length-grouped batches of the examples until `cfg.epochs` or `cfg.max_minutes`.

    `loss_fn(batch_indices)` returns the batch loss and a dict of named loss parts (floats) to record. With a
    `checkpoint` path, the state of `modules`, the optimizer, step, elapsed time, torch RNG and recent losses
    is saved there atomically every `cfg.checkpoint_minutes` and when the run ends (`extra`, caller data, goes
    with it); a re-run with the same `key` resumes from it, and a finished one returns at once, weights restored.
    """
    import torch

    from .text import length_grouped_batches

    if not lengths:
        raise DataError(f"{description}: no training examples")
    named = list(named_params)
    params = [p for _, p in named]
    modules = dict(modules or {})
    # before any step: a model and batch that cannot fit fail now (ResourceError), not as an OOM kill an hour in
    require_training_memory(named, modules, min(cfg.batch_size, len(lengths)), max(lengths), description)
    opt = torch.optim.AdamW(param_groups(named, cfg.weight_decay), lr=cfg.lr)
    steps_per_epoch = math.ceil(len(lengths) / cfg.batch_size)
    planned = max(1, int(cfg.epochs * steps_per_epoch)) if cfg.epochs is not None else None
    budget = cfg.max_minutes * 60
    res = LoopResult(0, planned, steps_per_epoch, 0.0, "epochs", False)

    saved = read_checkpoint(checkpoint, key)
    if saved is not None:
        for name, m in modules.items():
            m.load_state_dict(saved["modules"][name])
        if saved["optimizer"] is not None:
            opt.load_state_dict(saved["optimizer"])
        torch.set_rng_state(saved["torch_rng"])
        res.steps, res.seconds, res.stopped_by = saved["step"], saved["elapsed"], saved["stopped_by"]
        res.first_losses, res.recent_losses, res.resumed = saved["first_losses"], saved["recent_losses"], True
        if saved["finished"]:
            return res

    def save(finished: bool) -> None:
        state = {"key": key, "modules": {n: m.state_dict() for n, m in modules.items()},
                 # a finished run never steps again: its optimizer state would only cost disk
                 "optimizer": None if finished else opt.state_dict(), "step": res.steps, "elapsed": res.seconds,
                 "stopped_by": res.stopped_by, "finished": finished, "torch_rng": torch.get_rng_state(),
                 "first_losses": res.first_losses, "recent_losses": res.recent_losses, "extra": dict(extra or {})}
        with atomic_path(checkpoint) as tmp:
            torch.save(state, tmp)

    start = time.perf_counter() - res.seconds
    last_save = time.perf_counter()
    # in a log (not a terminal) the bar is a heartbeat line every ~30 s: steps, loss, elapsed, time left
    with progress_bar(description, planned, quiet, completed=res.steps, time_budget=budget - res.seconds) as bar:
        while planned is None or res.steps < planned:
            epoch = res.steps // steps_per_epoch
            batches = length_grouped_batches(lengths, cfg.batch_size, cfg.seed + epoch)
            for b in batches[res.steps - epoch * steps_per_epoch:]:
                res.seconds = time.perf_counter() - start
                if res.seconds >= budget:
                    res.stopped_by = "max_minutes"
                    break
                # a step-budgeted run follows its steps unless the clock is ahead; before the first step the clock
                # is only noise (it made step 0's lr, hence the weights, differ between identical runs)
                timed = res.seconds / budget if res.steps else 0.0
                progress = timed if planned is None else max(res.steps / planned, timed)
                for g in opt.param_groups:
                    g["lr"] = cfg.lr * lr_factor(progress, cfg.warmup)
                loss, parts = loss_fn(b)
                optimizer_step(loss, params, opt, cfg.max_grad_norm)
                res.steps += 1
                record = {**parts, "total": float(loss.detach())}
                if len(res.first_losses) < FIRST_LOSSES:
                    res.first_losses.append(record)
                res.recent_losses = res.recent_losses[-(RECENT_LOSSES - 1):] + [record]
                bar.set(f"loss {res.mean_loss():.4f}")
                bar.advance()
                if checkpoint is not None and time.perf_counter() - last_save > cfg.checkpoint_minutes * 60:
                    res.seconds = time.perf_counter() - start
                    save(finished=False)
                    last_save = time.perf_counter()
                if planned is not None and res.steps >= planned:
                    break
            if res.stopped_by == "max_minutes":
                break
    res.seconds = time.perf_counter() - start
    if checkpoint is not None:
        save(finished=True)
    return res
