"""Distillation losses: each a small registered function, combined with weights from the recipe or CLI.

Every loss takes the student's and teacher's outputs for the same batch plus a `LossContext` (layer map, head map,
projection, temperature, attention mask, labels) and returns a scalar tensor. `needs` says which teacher outputs a
loss reads, so the trainer asks the teacher for hidden states / attention maps only when some loss uses them, and
can serve logits-only losses from a disk cache.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from ..errors import ConfigError
from ..registry import Registry

# what a loss reads from the teacher: "logits", "hidden", "attentions"; "labels" = reads the gold labels only
NEEDS = ("logits", "hidden", "attentions", "labels")


@dataclass(frozen=True)
class LossSpec:
    """A registered loss: name, function, which teacher outputs it needs, one-line doc."""

    name: str
    fn: Callable[..., Any]
    needs: tuple[str, ...]
    doc: str


LOSSES: Registry[LossSpec] = Registry("distillation loss")


def register_loss(name: str, needs: Sequence[str]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register `fn(student, teacher, ctx) -> scalar tensor` under `name`."""
    bad = [n for n in needs if n not in NEEDS]
    if bad:
        raise ValueError(f"loss {name!r}: unknown needs {bad}; choose from {NEEDS}")

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        doc = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        LOSSES.add(name, LossSpec(name, fn, tuple(needs), doc))
        return fn

    return deco


@dataclass
class Outputs:
    """What a forward pass gave: logits [B, C], hidden states (embeddings first) [B, T, H], attentions [B, h, T, T]."""

    logits: Any = None
    hidden_states: tuple[Any, ...] | None = None
    attentions: tuple[Any, ...] | None = None


@dataclass
class LossContext:
    """Everything besides the two outputs that a loss may need."""

    mask: Any = None                         # [B, T] 1 = real token
    labels: Any = None                       # [B] gold class ids
    layer_map: tuple[int, ...] = ()          # student layer i is matched with teacher layer layer_map[i] (0-based)
    head_map: tuple[tuple[int, ...], ...] | None = None  # per student layer: teacher head of each student head
    projection: Any = None                   # student hidden -> teacher hidden (None when widths are equal)
    temperature: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)


def _project(h: Any, ctx: LossContext) -> Any:
    return ctx.projection(h) if ctx.projection is not None else h


def _check_width(s: Any, t: Any, ctx: LossContext, loss: str) -> None:
    if s.shape[-1] != t.shape[-1]:
        raise ConfigError(
            f"{loss}: student width {s.shape[-1]} differs from teacher width {t.shape[-1]} and no projection is "
            "set; enable the learned projection (projection: true) or drop this loss"
        )


def masked_mse(s: Any, t: Any, mask: Any) -> Any:
    """Mean squared error over real tokens and channels: [B, T, H] x2, mask [B, T]."""
    m = mask.to(s.dtype).unsqueeze(-1)                       # [B, T, 1]
    return ((s - t) ** 2 * m).sum() / (m.sum() * s.shape[-1])


@register_loss("kl", needs=("logits",))
def soft_label_kl(s: Outputs, t: Outputs, ctx: LossContext) -> Any:
    """Soft-label KL(teacher || student) at temperature T, scaled by T^2 (Hinton et al.)."""
    from ..training.kd import soft_label_kl as kl

    return kl(s.logits, t.logits, ctx.temperature)


@register_loss("ce", needs=("labels",))
def hard_label_ce(s: Outputs, t: Outputs, ctx: LossContext) -> Any:
    """Cross-entropy of the student's logits with the gold labels (no teacher)."""
    import torch.nn.functional as F

    if ctx.labels is None:
        raise ConfigError("ce needs gold labels: use it in the task stage, not on unlabelled text")
    return F.cross_entropy(s.logits, ctx.labels)


@register_loss("hidden_mse", needs=("hidden",))
def hidden_mse(s: Outputs, t: Outputs, ctx: LossContext) -> Any:
    """MSE of mapped layers' hidden states (student projected to teacher width), averaged over layers."""
    total = 0.0
    for i, j in enumerate(ctx.layer_map):
        hs, ht = _project(s.hidden_states[i + 1], ctx), t.hidden_states[j + 1]
        _check_width(hs, ht, ctx, "hidden_mse")
        total = total + masked_mse(hs, ht, ctx.mask)
    return total / len(ctx.layer_map)


@register_loss("embedding", needs=("hidden",))
def embedding_mse(s: Outputs, t: Outputs, ctx: LossContext) -> Any:
    """MSE of the embedding-layer outputs (student projected to teacher width)."""
    hs, ht = _project(s.hidden_states[0], ctx), t.hidden_states[0]
    _check_width(hs, ht, ctx, "embedding")
    return masked_mse(hs, ht, ctx.mask)


@register_loss("cosine", needs=("hidden",))
def cosine(s: Outputs, t: Outputs, ctx: LossContext) -> Any:
    """1 - cosine similarity of the last mapped layer's hidden states, averaged over real tokens (DistilBERT)."""
    import torch.nn.functional as F

    i = len(ctx.layer_map) - 1
    hs, ht = _project(s.hidden_states[i + 1], ctx), t.hidden_states[ctx.layer_map[i] + 1]
    _check_width(hs, ht, ctx, "cosine")
    m = ctx.mask.to(hs.dtype)
    return ((1 - F.cosine_similarity(hs, ht, dim=-1)) * m).sum() / m.sum()


@register_loss("attention", needs=("attentions",))
def attention_kl(s: Outputs, t: Outputs, ctx: LossContext) -> Any:
    """KL(teacher || student) of mapped layers' attention distributions per head, over real query rows (MiniLM)."""
    import torch

    total = 0.0
    m = ctx.mask.to(s.attentions[0].dtype)                   # [B, T]
    for i, j in enumerate(ctx.layer_map):
        a_s, a_t = s.attentions[i], t.attentions[j]          # [B, h, T, T]
        if ctx.head_map is not None:
            a_t = a_t[:, list(ctx.head_map[i])]
        elif a_s.shape[1] != a_t.shape[1]:                   # no head map: compare the head-averaged maps
            a_s, a_t = a_s.mean(1, keepdim=True), a_t.mean(1, keepdim=True)
        eps = 1e-12
        kl = (a_t * (torch.log(a_t + eps) - torch.log(a_s + eps))).sum(-1)   # [B, h, T]
        rows = m.unsqueeze(1).expand_as(kl)
        total = total + (kl * rows).sum() / rows.sum()
    return total / len(ctx.layer_map)


def parse_weights(spec: str | Mapping[str, float] | None, where: str) -> dict[str, float]:
    """`"kl=1,ce=0.5"` or a mapping -> {loss: weight}; unknown names and negative weights fail."""
    if spec is None:
        return {}
    if isinstance(spec, str):
        out: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            name, _, w = part.partition("=")
            try:
                out[name.strip()] = float(w) if w else 1.0
            except ValueError:
                raise ConfigError(f"{where}: weight of {name!r} must be a number, got {w!r}") from None
        spec = out
    weights = {str(k): float(v) for k, v in dict(spec).items()}
    for name, w in weights.items():
        if name not in LOSSES:
            raise ConfigError(f"{where}: unknown loss {name!r}.{_hint(name)}")
        if w < 0:
            raise ConfigError(f"{where}: weight of {name!r} must be >= 0, got {w}")
    if not any(w > 0 for w in weights.values()):
        raise ConfigError(f"{where}: give at least one loss a positive weight, e.g. kl=1")
    return weights


def _hint(name: str) -> str:
    from ..registry import suggest

    return suggest(name, LOSSES.names())


def needs_of(weights: Mapping[str, float]) -> set[str]:
    """Union of what the weighted losses read."""
    return {n for name, w in weights.items() if w > 0 for n in LOSSES.get(name).needs}


def combined_loss(weights: Mapping[str, float], s: Outputs, t: Outputs, ctx: LossContext) -> tuple[Any, dict[str, float]]:
    """Weighted sum of the losses and each term's value (for logging)."""
    total, parts = 0.0, {}
    for name, w in weights.items():
        if w <= 0:
            continue
        value = LOSSES.get(name).fn(s, t, ctx)
        parts[name] = float(value.detach())
        total = total + w * value
    return total, parts
