"""Importance of attention heads, FFN neurons and encoder layers, measured on a small calibration set.

- gradient (Michel et al., 2019): multiply each head's context output (and each FFN neuron's activation) by a mask
  m = 1 and accumulate |d loss / d m| over calibration batches. For an FFN neuron that is |sum(activation x gradient)|,
  the first-order Taylor estimate of the loss change when the unit is removed. transformers 5 has no `head_mask`
  for BERT, so the mask is applied by a forward pre-hook on the projection that consumes the heads (or neurons).
- magnitude: weight norms of the slices a unit owns (no data needed).
- layers: loss increase when a layer is skipped (its output replaced by its input).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from ..models.pruned import encoder_layers, ffn_size, head_count


@dataclass
class Importance:
    """Per-layer scores (higher = more important), one list per encoder layer."""

    heads: list[list[float]]
    ffn: list[list[float]]
    layers: list[float] | None = None
    method: str = "gradient"
    drop: list[int] = field(default_factory=list)   # layers chosen for removal (least loss increase)


class StructureMask:
    """Multipliers on every head's context output and every FFN activation, applied by forward pre-hooks."""

    def __init__(self, model: Any, requires_grad: bool = False):
        import torch

        layers = encoder_layers(model)
        self.model = model
        self.head_size = [layer.attention.self.attention_head_size for layer in layers]
        self.heads = [torch.ones(head_count(layer), requires_grad=requires_grad) for layer in layers]
        self.ffn = [torch.ones(ffn_size(layer), requires_grad=requires_grad) for layer in layers]
        self._handles: list[Any] = []

    def _head_hook(self, i: int):
        def hook(module: Any, args: tuple) -> tuple:
            x = args[0]                                   # [batch, seq, heads * head_size]
            d = self.head_size[i]
            m = self.heads[i].to(x.dtype).repeat_interleave(d)
            return (x * m,) + tuple(args[1:])
        return hook

    def _ffn_hook(self, i: int):
        def hook(module: Any, args: tuple) -> tuple:
            return (args[0] * self.ffn[i].to(args[0].dtype),) + tuple(args[1:])   # [batch, seq, ffn]
        return hook

    @contextlib.contextmanager
    def applied(self) -> Iterator["StructureMask"]:
        """Hooks active inside the block only."""
        for i, layer in enumerate(encoder_layers(self.model)):
            self._handles.append(layer.attention.output.dense.register_forward_pre_hook(self._head_hook(i)))
            self._handles.append(layer.output.dense.register_forward_pre_hook(self._ffn_hook(i)))
        try:
            yield self
        finally:
            for h in self._handles:
                h.remove()
            self._handles.clear()


@contextlib.contextmanager
def _frozen(model: Any) -> Iterator[None]:
    """No parameter gradients (only the masks need them), eval mode; restored afterwards."""
    flags = [p.requires_grad for p in model.parameters()]
    was_training = model.training
    for p in model.parameters():
        p.requires_grad_(False)
    model.eval()
    try:
        yield
    finally:
        for p, f in zip(model.parameters(), flags):
            p.requires_grad_(f)
        model.train(was_training)


def gradient_importance(model: Any, batches: Iterable[dict[str, Any]]) -> Importance:
    """Accumulated |d loss / d mask| per head and per FFN neuron over labelled batches."""
    import torch

    mask = StructureMask(model, requires_grad=True)
    head_acc = [torch.zeros_like(m) for m in mask.heads]
    ffn_acc = [torch.zeros_like(m) for m in mask.ffn]
    n = 0
    with _frozen(model), mask.applied():
        for batch in batches:
            loss = model(**batch).loss
            grads = torch.autograd.grad(loss, mask.heads + mask.ffn)
            L = len(mask.heads)
            for i in range(L):
                head_acc[i] += grads[i].abs()
                ffn_acc[i] += grads[L + i].abs()
            n += 1
    if n == 0:
        raise ValueError("no calibration batches")
    return Importance([a.tolist() for a in head_acc], [a.tolist() for a in ffn_acc], method="gradient")


def magnitude_importance(model: Any) -> Importance:
    """Weight-norm scores: a head owns Q/K/V rows and O columns; a neuron owns one FFN row and column."""
    import torch

    heads, ffn = [], []
    with torch.no_grad():
        for layer in encoder_layers(model):
            att = layer.attention.self
            d, h = att.attention_head_size, head_count(layer)
            sq = sum(lin.weight.reshape(h, d, -1).pow(2).sum(dim=(1, 2)) for lin in (att.query, att.key, att.value))
            sq = sq + layer.attention.output.dense.weight.reshape(-1, h, d).pow(2).sum(dim=(0, 2))
            heads.append(sq.sqrt().tolist())
            w_in = layer.intermediate.dense.weight.norm(dim=1)     # [ffn]
            w_out = layer.output.dense.weight.norm(dim=0)          # [ffn]
            ffn.append((w_in * w_out).tolist())
    return Importance(heads, ffn, method="magnitude")


def layer_importance(model: Any, batches: list[dict[str, Any]]) -> list[float]:
    """Mean loss increase on `batches` when each encoder layer is skipped (identity)."""
    import torch

    def mean_loss() -> float:
        with torch.no_grad():
            return sum(float(model(**b).loss) for b in batches) / len(batches)

    was_training = model.training
    model.eval()
    base = mean_loss()
    scores = []
    for layer in encoder_layers(model):
        handle = layer.register_forward_hook(lambda mod, args, out: args[0])
        try:
            scores.append(mean_loss() - base)
        finally:
            handle.remove()
    model.train(was_training)
    return scores


def compute_importance(model: Any, method: str, batches: list[dict[str, Any]] | None = None,
                       with_layers: bool = False) -> Importance:
    """Head/FFN (and optionally layer) importance by `method` ("gradient" needs labelled batches)."""
    if method == "gradient":
        if not batches:
            raise ValueError("gradient importance needs calibration batches")
        imp = gradient_importance(model, batches)
    elif method == "magnitude":
        imp = magnitude_importance(model)
    else:
        raise ValueError(f"unknown importance method {method!r}")
    if with_layers:
        if not batches:
            raise ValueError("layer importance needs calibration batches")
        imp.layers = layer_importance(model, batches)
    return imp
