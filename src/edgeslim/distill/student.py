"""Build a student from a teacher: by depth (layer map), by width (hidden / heads / FFN), or from scratch.

With `init="teacher"` every student tensor is a slice of the mapped teacher tensor (DistilBERT-style for depth;
Minitron/Sheared-LLaMA-style for width: keep the hidden channels, heads and FFN neurons with the largest activations
on a few calibration batches). With equal widths the copied tensors are exact copies of the mapped teacher layers.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from ..errors import ConfigError, ModelError
from ..models.config import NormalizedConfig

INITS = ("teacher", "scratch")


@dataclass(frozen=True)
class StudentPlan:
    """Shape of the student and where its layers come from (checked against the teacher)."""

    layer_map: tuple[int, ...]   # student layer i starts from (and is matched with) teacher layer layer_map[i]
    hidden: int
    heads: int
    ffn: int
    init: str = "teacher"

    @property
    def layers(self) -> int:
        return len(self.layer_map)


def even_layer_map(teacher_layers: int, student_layers: int) -> tuple[int, ...]:
    """Evenly spaced teacher layers, always keeping the first and the last (6 -> 3 gives 0, 3, 5)."""
    if student_layers == 1:
        return (teacher_layers - 1,)
    step = (teacher_layers - 1) / (student_layers - 1)
    return tuple(int(i * step + 0.5) for i in range(student_layers))


def plan_student(teacher: NormalizedConfig, *, layers: int | Sequence[int] | None = None, hidden: int | None = None,
                 heads: int | None = None, ffn: int | None = None, init: str = "teacher") -> StudentPlan:
    """Validate the requested student against the teacher's shape; errors name the option and the valid range."""
    if teacher.family != "bert":
        raise ModelError(f"distillation builds students of BERT-family models, not {teacher.model_type!r}")
    if teacher.heads_per_layer or teacher.ffn_per_layer:
        raise ModelError("the teacher has per-layer head/FFN sizes (it was pruned); distil from an unpruned teacher")
    if init not in INITS:
        raise ConfigError(f"distill: init must be one of {', '.join(INITS)}, got {init!r}")
    L = teacher.layers
    if layers is None:
        layer_map = tuple(range(L))
    elif isinstance(layers, int):
        if layers < 1:
            raise ConfigError(f"distill: student_layers must be >= 1, got {layers}")
        if layers > L:
            raise ConfigError(f"distill: student larger than teacher: {layers} layers > the teacher's {L}; "
                              f"choose 1..{L} layers")
        layer_map = even_layer_map(L, layers)
    else:
        layer_map = tuple(int(x) for x in layers)
        if not layer_map:
            raise ConfigError("distill: the layer map is empty; list teacher layers such as [0, 2, 4]")
        bad = [x for x in layer_map if not 0 <= x < L]
        if bad:
            raise ConfigError(f"distill: layer map {list(layer_map)} is out of range: teacher layer(s) {bad} do not "
                              f"exist; the teacher has layers 0..{L - 1}")
        if len(layer_map) > L:
            raise ConfigError(f"distill: student larger than teacher: {len(layer_map)} layers > the teacher's {L}")
    hidden = teacher.hidden if hidden is None else int(hidden)
    ffn = teacher.ffn if ffn is None else int(ffn)
    for name, val, top in (("student_hidden", hidden, teacher.hidden), ("student_ffn", ffn, teacher.ffn)):
        if val < 1:
            raise ConfigError(f"distill: {name} must be >= 1, got {val}")
        if val > top:
            raise ConfigError(f"distill: student larger than teacher: {name}={val} > the teacher's {top}; "
                              f"choose at most {top}")
    head_dim = teacher.head_dim
    if heads is None:
        if hidden % head_dim:
            raise ConfigError(f"distill: student_hidden={hidden} is not a multiple of the teacher's head size "
                              f"{head_dim}; choose a multiple or pass student_heads")
        heads = hidden // head_dim
    heads = int(heads)
    if not 1 <= heads <= teacher.heads:
        raise ConfigError(f"distill: student_heads must be in 1..{teacher.heads} (the teacher's), got {heads}")
    if hidden % heads:
        raise ConfigError(f"distill: student_hidden={hidden} must be divisible by student_heads={heads}")
    if init == "teacher" and hidden // heads != head_dim:
        raise ConfigError(f"distill: width mismatch: student head size {hidden}/{heads}={hidden // heads} differs "
                          f"from the teacher's {head_dim}, so heads cannot be copied; use "
                          f"student_heads={hidden // head_dim} or init=scratch")
    return StudentPlan(layer_map, hidden, heads, ffn, init)


@dataclass
class Importance:
    """Mean activation size per hidden channel [H], per head of each layer [L][h], per FFN neuron [L][F]."""

    channels: Any
    heads: list[Any]
    neurons: list[Any]


def _encoder_layers(model: Any) -> Any:
    base = getattr(model, model.base_model_prefix, model)
    return base.embeddings, base.encoder.layer


def activation_importance(model: Any, batches: Iterable[dict[str, Any]]) -> Importance:
    """Score channels, heads and neurons by their mean absolute activation over real tokens (Minitron-style)."""
    import torch

    emb, layers = _encoder_layers(model)
    cfg = model.config
    H, nh = cfg.hidden_size, cfg.num_attention_heads
    chan = torch.zeros(H, dtype=torch.float64)
    head = [torch.zeros(nh, dtype=torch.float64) for _ in layers]
    neur = [torch.zeros(cfg.intermediate_size, dtype=torch.float64) for _ in layers]
    state: dict[str, Any] = {}

    def real(x: Any) -> Any:           # [B, T, ...] -> [N_real, ...]
        return x[state["mask"].bool()]

    def on_norm(_m, _i, out):
        chan.add_(real(out).abs().mean(0).double())

    def on_heads(i):
        def hook(_m, _i, out):
            ctx = out[0] if isinstance(out, tuple) else out          # [B, T, nh * d]
            B, T, _ = ctx.shape
            head[i].add_(real(ctx.reshape(B, T, nh, -1)).norm(dim=-1).mean(0).double())
        return hook

    def on_ffn(i):
        def hook(_m, _i, out):
            neur[i].add_(real(out).abs().mean(0).double())
        return hook

    hooks = [emb.LayerNorm.register_forward_hook(on_norm)]
    for i, layer in enumerate(layers):
        hooks += [layer.attention.self.register_forward_hook(on_heads(i)),
                  layer.attention.output.LayerNorm.register_forward_hook(on_norm),
                  layer.intermediate.register_forward_hook(on_ffn(i)),
                  layer.output.LayerNorm.register_forward_hook(on_norm)]
    try:
        with torch.no_grad():
            for batch in batches:
                state["mask"] = batch["attention_mask"]
                model(**{k: v for k, v in batch.items() if k != "labels"})
    finally:
        for h in hooks:
            h.remove()
    return Importance(chan, head, neur)


@dataclass(frozen=True)
class Selection:
    """Which teacher channels / heads / neurons the student kept (None = all, in order)."""

    channels: tuple[int, ...] | None
    heads: tuple[tuple[int, ...], ...]           # per student layer, teacher head ids
    neurons: tuple[tuple[int, ...] | None, ...]  # per student layer, teacher FFN neuron ids


def _top(scores: Any, k: int, n: int) -> tuple[int, ...] | None:
    if k == n:
        return None
    if scores is None:   # no calibration: keep the first k (arbitrary but deterministic)
        return tuple(range(k))
    return tuple(sorted(int(i) for i in scores.topk(k).indices))


def select(teacher_cfg: Any, plan: StudentPlan, imp: Importance | None) -> Selection:
    """The teacher units the student keeps: the most important ones of each mapped layer."""
    H, nh, F = teacher_cfg.hidden_size, teacher_cfg.num_attention_heads, teacher_cfg.intermediate_size
    channels = _top(imp.channels if imp else None, plan.hidden, H)
    heads, neurons = [], []
    for j in plan.layer_map:
        kept = _top(imp.heads[j] if imp else None, plan.heads, nh)
        heads.append(kept if kept is not None else tuple(range(nh)))
        neurons.append(_top(imp.neurons[j] if imp else None, plan.ffn, F))
    return Selection(channels, tuple(heads), tuple(neurons))


def _slice_tensor(name: str, t: Any, ch: Any, hd: Any, nr: Any) -> Any:
    """Slice teacher tensor `name` to the student's kept channels (ch), head dims (hd) and FFN neurons (nr)."""
    def rows(x, idx):
        return x if idx is None else x.index_select(0, idx)

    def cols(x, idx):
        return x if idx is None else x.index_select(1, idx)

    if name.endswith(("word_embeddings.weight", "position_embeddings.weight", "token_type_embeddings.weight")):
        return cols(t, ch)
    if "LayerNorm." in name:
        return rows(t, ch)
    if re.search(r"attention\.self\.(query|key|value)\.weight$", name):
        return cols(rows(t, hd), ch)
    if re.search(r"attention\.self\.(query|key|value)\.bias$", name):
        return rows(t, hd)
    if name.endswith("attention.output.dense.weight"):
        return cols(rows(t, ch), hd)
    if name.endswith("intermediate.dense.weight"):
        return cols(rows(t, nr), ch)
    if name.endswith("intermediate.dense.bias"):
        return rows(t, nr)
    if name.endswith("output.dense.weight"):          # layer output (attention.output handled above)
        return cols(rows(t, ch), nr)
    if name.endswith(("output.dense.bias", "pooler.dense.bias")):
        return rows(t, ch)
    if name.endswith("pooler.dense.weight"):
        return cols(rows(t, ch), ch)
    if name.endswith("classifier.weight"):
        return cols(t, ch)
    return t


def build_student(teacher: Any, plan: StudentPlan, importance: Importance | None = None) -> tuple[Any, Selection]:
    """A new model of the teacher's class with the plan's shape; weights sliced from the mapped teacher layers."""
    import torch

    cfg = copy.deepcopy(teacher.config)
    cfg.num_hidden_layers = plan.layers
    cfg.hidden_size, cfg.num_attention_heads, cfg.intermediate_size = plan.hidden, plan.heads, plan.ffn
    cfg._attn_implementation = "eager"      # attention maps for the attention loss; plain math for export
    student = type(teacher)(cfg)
    sel = select(teacher.config, plan, importance)
    if plan.init == "scratch":
        return student.eval(), sel
    head_dim = teacher.config.hidden_size // teacher.config.num_attention_heads

    def idx(x):
        return None if x is None else torch.tensor(x, dtype=torch.long)

    ch = idx(sel.channels)
    t_sd = teacher.state_dict()
    new_sd = {}
    for name, param in student.state_dict().items():
        m = re.search(r"encoder\.layer\.(\d+)\.", name)
        hd = nr = None
        if m:
            i = int(m.group(1))
            j = plan.layer_map[i]
            t_name = name.replace(f"encoder.layer.{i}.", f"encoder.layer.{j}.", 1)
            if len(sel.heads[i]) != teacher.config.num_attention_heads:
                hd = idx([h * head_dim + d for h in sel.heads[i] for d in range(head_dim)])
            nr = idx(sel.neurons[i])
        else:
            t_name = name
        if t_name not in t_sd:
            raise ModelError(f"cannot initialise student tensor {name}: the teacher has no {t_name}")
        value = _slice_tensor(name, t_sd[t_name], ch, hd, nr)
        if value.shape != param.shape:
            raise ModelError(f"cannot initialise student tensor {name}: sliced teacher shape {tuple(value.shape)} "
                             f"!= student shape {tuple(param.shape)}")
        new_sd[name] = value.clone()
    student.load_state_dict(new_sd)
    return student.eval(), sel


def selection_projection(student_hidden: int, teacher_hidden: int, channels: Sequence[int] | None) -> Any:
    """Learned map student hidden -> teacher hidden (TinyBERT's W_h), started as the channel selection it undoes."""
    import torch

    proj = torch.nn.Linear(student_hidden, teacher_hidden, bias=False)
    with torch.no_grad():
        proj.weight.zero_()
        for i, c in enumerate(channels if channels is not None else range(student_hidden)):
            proj.weight[c, i] = 1.0
    return proj


def count_params(model: Any) -> int:
    """All parameters, embeddings included (shared tensors counted once)."""
    seen, n = set(), 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            n += p.numel()
    return n
