"""The one training loop: parameter groups, warm-up/decay schedule, time budget, atomic checkpoints, resume."""
from __future__ import annotations

from typing import Any


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
