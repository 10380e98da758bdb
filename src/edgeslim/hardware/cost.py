"""Analytic cost of a transformer, op by op: parameters, MACs, weight and activation bytes.

Works from a NormalizedConfig alone (no torch). Covers BERT-family encoders (BERT, RoBERTa, DistilBERT, ...)
and ViT, respecting per-layer head and FFN sizes of pruned models. Shapes per encoder layer, with
T = batch * seq tokens, a = heads_l * head_dim (attention width), f = ffn_l:

    attn.qkv     [T, h] x [h, 3a]                 linear
    attn.scores  [B, heads_l, S, d] x [.., d, S]  attention (QK^T)
    attn.softmax [B, heads_l, S, S]               elementwise (scale, mask add, softmax)
    attn.context [B, heads_l, S, S] x [.., S, d]  attention (PV)
    attn.out     [T, a] x [a, h]                  linear
    attn.add_ln  residual add + LayerNorm         elementwise
    ffn.up       [T, h] x [h, f]                  linear
    ffn.gelu     [T, f]                           elementwise
    ffn.down     [T, f] x [f, h]                  linear
    ffn.add_ln   residual add + LayerNorm         elementwise

Traffic counts every input read and output written once at the op's precision (no cache reuse across
ops): an upper bound on DRAM traffic, which is what a roofline assumes.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..errors import ModelError
from .schema import check_precision

BYTES = {"fp32": 4, "fp16": 2, "int8": 1}
# Vector operations per element of the elementwise ops (an estimate of the arithmetic, for their compute time).
ELEMENTWISE_OPS = {"softmax": 5.0, "gelu": 8.0, "relu": 1.0, "add_ln": 9.0, "embed": 11.0, "tanh": 4.0}


@dataclass(frozen=True)
class OpCost:
    """Cost of one op at one shape and precision."""

    layer: str           # "embeddings", "layer.3", "head"
    op: str              # "attn.qkv", "ffn.up", ...
    kind: str            # "linear" | "attention" | "elementwise" | "gather"
    params: int
    macs: int            # multiply-accumulates (matmul ops only)
    vector_ops: int      # other arithmetic (elementwise ops)
    weight_bytes: int    # parameter bytes read by this op
    act_bytes: int       # activation bytes read + written

    @property
    def flops(self) -> int:
        return 2 * self.macs + self.vector_ops

    @property
    def bytes(self) -> int:
        return self.weight_bytes + self.act_bytes

    @property
    def intensity(self) -> float:
        """Arithmetic intensity in ops per byte of traffic."""
        return self.flops / self.bytes if self.bytes else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "flops": self.flops, "bytes": self.bytes, "intensity": round(self.intensity, 3)}


@dataclass(frozen=True)
class ModelCost:
    """All ops of one model at one shape, with totals."""

    ops: tuple[OpCost, ...]
    batch: int
    seq_len: int         # tokens per sequence (for ViT: patches + 1)
    precision: str
    params: int          # all parameters (embedding tables included)
    model_bytes: int     # stored size of the parameters at `precision` (embeddings/LN kept at fp32 for int8)

    @property
    def macs(self) -> int:
        return sum(o.macs for o in self.ops)

    @property
    def flops(self) -> int:
        return sum(o.flops for o in self.ops)

    @property
    def bytes(self) -> int:
        return sum(o.bytes for o in self.ops)

    @property
    def intensity(self) -> float:
        return self.flops / self.bytes if self.bytes else 0.0

    def by_layer(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for o in self.ops:
            d = out.setdefault(o.layer, {"params": 0, "macs": 0, "flops": 0, "bytes": 0})
            d["params"] += o.params
            d["macs"] += o.macs
            d["flops"] += o.flops
            d["bytes"] += o.bytes
        return out


def _linear(layer: str, op: str, m: int, k: int, n: int, wb: int, ab: int, bias: bool = True) -> OpCost:
    params = k * n + (n if bias else 0)
    return OpCost(layer, op, "linear", params, m * k * n, m * n if bias else 0, params * wb, (m * k + m * n) * ab)


def _elementwise(layer: str, op: str, elements: int, reads: int, ab: int, per_elem: float, params: int = 0,
                 wb: int = 4) -> OpCost:
    """An op over `elements` outputs reading `reads` same-size tensors and writing one."""
    return OpCost(layer, op, "elementwise", params, 0, int(elements * per_elem), params * wb,
                  elements * (reads + 1) * ab)


def encoder_layer_ops(layer: str, batch: int, seq: int, hidden: int, heads: int, head_dim: int, ffn: int,
                      wb: int, ab: int) -> list[OpCost]:
    """Ops of one post- or pre-LN encoder layer (BERT and ViT have the same costs)."""
    t = batch * seq
    a = heads * head_dim
    ops: list[OpCost] = []
    if heads > 0:
        scores = batch * heads * seq * seq
        ops += [
            _linear(layer, "attn.qkv", t, hidden, 3 * a, wb, ab),
            OpCost(layer, "attn.scores", "attention", 0, scores * head_dim, 0, 0, (2 * t * a + scores) * ab),
            _elementwise(layer, "attn.softmax", scores, 1, ab, ELEMENTWISE_OPS["softmax"]),
            OpCost(layer, "attn.context", "attention", 0, scores * head_dim, 0, 0, (scores + 2 * t * a) * ab),
            _linear(layer, "attn.out", t, a, hidden, wb, ab),
        ]
    else:  # every head pruned: only the output bias remains
        ops.append(OpCost(layer, "attn.out", "elementwise", hidden, 0, t * hidden, hidden * wb, 2 * t * hidden * ab))
    ops.append(_elementwise(layer, "attn.add_ln", t * hidden, 2, ab, ELEMENTWISE_OPS["add_ln"], params=2 * hidden))
    if ffn > 0:
        ops += [
            _linear(layer, "ffn.up", t, hidden, ffn, wb, ab),
            _elementwise(layer, "ffn.gelu", t * ffn, 1, ab, ELEMENTWISE_OPS["gelu"]),
            _linear(layer, "ffn.down", t, ffn, hidden, wb, ab),
        ]
    ops.append(_elementwise(layer, "ffn.add_ln", t * hidden, 2, ab, ELEMENTWISE_OPS["add_ln"], params=2 * hidden))
    return ops


def lm_head_ops(batch: int, seq: int, hidden: int, vocab: int, wb: int, ab: int, act: str = "gelu") -> list[OpCost]:
    """Masked-LM head over every token: transform (dense h -> h, activation, LayerNorm), then decoder h -> vocab."""
    t = batch * seq
    side_wb = 4 if wb == 1 else wb
    return [_linear("head", "mlm.transform", t, hidden, hidden, wb, ab),
            _elementwise("head", "mlm.act", t * hidden, 1, ab, ELEMENTWISE_OPS[act]),
            _elementwise("head", "mlm.ln", t * hidden, 1, ab, ELEMENTWISE_OPS["add_ln"], params=2 * hidden,
                         wb=side_wb),
            _linear("head", "mlm.decoder", t, hidden, vocab, wb, ab)]


def _model_cost(ops: list[OpCost], batch: int, seq: int, precision: str) -> ModelCost:
    wb = BYTES[precision]
    side_wb = 4 if precision == "int8" else wb   # embeddings, LayerNorm and biases stay float under int8
    params = sum(o.params for o in ops)
    linear_params = sum(o.params for o in ops if o.kind == "linear")
    model_bytes = linear_params * wb + (params - linear_params) * side_wb
    return ModelCost(tuple(ops), batch, seq, precision, params, model_bytes)


def model_cost(cfg: Any, *, batch: int = 1, seq_len: int = 128, precision: str = "fp32",
               num_labels: int | None = None, pooler: bool | None = None, lm_head: bool = False) -> ModelCost:
    """Per-op cost of a model (NormalizedConfig or config dict) at batch x seq_len and `precision`.

    The head is a sequence classifier (BERT: pooler + classifier; ViT: final LayerNorm + classifier)
    with `num_labels` outputs (default: the config's, else 2); num_labels=0 costs the bare backbone;
    lm_head=True costs a masked-LM head over every token instead of the classifier (text models).
    """
    from ..models.config import NormalizedConfig, normalize_config

    if not isinstance(cfg, NormalizedConfig):
        cfg = normalize_config(cfg)
    check_precision(precision)
    if batch < 1:
        raise ModelError(f"batch must be >= 1, got {batch}")
    wb = BYTES[precision]
    ab = BYTES[precision]
    side_wb = 4 if precision == "int8" else wb   # embeddings, LayerNorm and biases stay float under int8
    h = cfg.hidden
    if cfg.heads <= 0 or h % cfg.heads:
        raise ModelError(f"hidden size {h} is not divisible by {cfg.heads} heads")
    d = cfg.head_dim
    labels = 0 if lm_head else num_labels if num_labels is not None else int(cfg.extra.get("num_labels", 2))
    ops: list[OpCost] = []
    if cfg.is_vision:
        if cfg.image_size <= 0 or cfg.patch_size <= 0:
            raise ModelError("a vision config needs image_size and patch_size")
        patches = (cfg.image_size // cfg.patch_size) ** 2
        seq = patches + 1
        t = batch * seq
        k = cfg.num_channels * cfg.patch_size ** 2
        conv = _linear("embeddings", "embed.patch", batch * patches, k, h, wb, ab)
        ops.append(conv)
        ops.append(OpCost("embeddings", "embed.pos", "elementwise", seq * h + h, 0, t * h, (seq * h + h) * side_wb,
                          2 * t * h * ab))
    else:
        if seq_len < 1:
            raise ModelError(f"seq_len must be >= 1, got {seq_len}")
        if cfg.max_positions and seq_len > cfg.max_positions:
            raise ModelError(f"seq_len {seq_len} exceeds the model's {cfg.max_positions} positions")
        seq = seq_len
        t = batch * seq
        type_vocab = int(cfg.extra.get("type_vocab_size", 0 if cfg.family == "distilbert" else 2))
        table = (cfg.vocab + cfg.max_positions + type_vocab) * h
        tables_read = (3 if type_vocab else 2) * t * h   # one row per token from each table
        ops.append(OpCost("embeddings", "embed.gather", "gather", table, 0, 0, tables_read * side_wb, t * h * ab))
        ops.append(_elementwise("embeddings", "embed.add_ln", t * h, 2, ab, ELEMENTWISE_OPS["embed"], params=2 * h))
    for i in range(cfg.layers):
        ops += encoder_layer_ops(f"layer.{i}", batch, seq, h, cfg.layer_heads(i), d, cfg.layer_ffn(i), wb, ab)
    if labels:
        if cfg.is_vision:
            ops.append(_elementwise("head", "head.ln", t * h, 1, ab, ELEMENTWISE_OPS["add_ln"], params=2 * h))
        elif pooler is not False and cfg.family != "distilbert":
            ops.append(_linear("head", "head.pooler", batch, h, h, wb, ab))
        elif cfg.family == "distilbert":
            ops.append(_linear("head", "head.pre_classifier", batch, h, h, wb, ab))
        ops.append(_linear("head", "head.classifier", batch, h, labels, wb, ab))
    elif pooler and not cfg.is_vision:
        ops.append(_linear("head", "head.pooler", batch, h, h, wb, ab))
    if lm_head:
        if cfg.is_vision:
            raise ModelError("a masked-LM head needs a text model")
        ops += lm_head_ops(batch, seq, h, cfg.vocab, wb, ab)
    return _model_cost(ops, batch, seq, precision)


@dataclass(frozen=True)
class BottleneckShape:
    """MobileBERT's shape (Sun et al. 2020, Table 1): a wide inter-block width around a narrow bottleneck.

    Each of `layers` blocks maps the `hidden` (inter-block) width down to `bottleneck`, runs attention with
    `heads` heads at the bottleneck width and `ffn_stacks` stacked FFNs (bottleneck -> ffn -> bottleneck), then
    maps back up. `qkv_from_bottleneck`: Q, K and V all read the bottleneck (MobileBERT-tiny); otherwise Q and K
    read a shared bottleneck and V reads the wide input (MobileBERT). `norm`/`act`: "nonorm"/"relu" are the
    paper's operational optimisations, "layernorm"/"gelu" the model without them.
    """

    layers: int = 24
    hidden: int = 512
    bottleneck: int = 128
    heads: int = 4
    ffn: int = 512
    ffn_stacks: int = 4
    embedding: int = 128
    vocab: int = 30522
    max_positions: int = 512
    type_vocab: int = 2
    qkv_from_bottleneck: bool = False
    norm: str = "nonorm"
    act: str = "relu"

    def __post_init__(self) -> None:
        if self.norm not in ("nonorm", "layernorm") or self.act not in ("relu", "gelu"):
            raise ModelError(f"bottleneck shape: norm must be nonorm|layernorm and act relu|gelu, got "
                             f"{self.norm!r}, {self.act!r}")
        if self.bottleneck % self.heads or min(self.layers, self.ffn_stacks) < 1:
            raise ModelError("bottleneck shape: bottleneck must divide by heads; layers and ffn_stacks >= 1")


def bottleneck_model_cost(shape: BottleneckShape, *, batch: int = 1, seq_len: int = 128, precision: str = "fp32",
                          num_labels: int = 2, lm_head: bool = False) -> ModelCost:
    """Per-op cost of a MobileBERT-shaped model (bottleneck blocks, stacked FFNs, trigram embedding)."""
    check_precision(precision)
    if batch < 1 or not 1 <= seq_len <= shape.max_positions:
        raise ModelError(f"batch must be >= 1 and seq_len in [1, {shape.max_positions}], got {batch}, {seq_len}")
    wb = ab = BYTES[precision]
    side_wb = 4 if precision == "int8" else wb
    t, h, b, e = batch * seq_len, shape.hidden, shape.bottleneck, shape.embedding
    norm_ops = ELEMENTWISE_OPS["add_ln"] if shape.norm == "layernorm" else 3.0   # NoNorm: add, scale, shift
    act_ops = ELEMENTWISE_OPS[shape.act]

    def norm(layer: str, op: str, width: int) -> OpCost:
        return _elementwise(layer, op, t * width, 2, ab, norm_ops, params=2 * width, wb=side_wb)

    table = (shape.vocab * e + shape.max_positions * h + shape.type_vocab * h)
    ops: list[OpCost] = [
        OpCost("embeddings", "embed.gather", "gather", table, 0, 0, (t * e + 2 * t * h) * side_wb, t * e * ab),
        _linear("embeddings", "embed.trigram", t, 3 * e, h, wb, ab),     # [T, 3e] x [3e, h]: the 3-token window
        _elementwise("embeddings", "embed.add_norm", t * h, 3, ab, norm_ops, params=2 * h, wb=side_wb),
    ]
    d = b // shape.heads
    scores = batch * shape.heads * seq_len * seq_len
    for i in range(shape.layers):
        L = f"layer.{i}"
        ops += [_linear(L, "bottleneck.in", t, h, b, wb, ab), norm(L, "bottleneck.in_norm", b)]
        if shape.qkv_from_bottleneck:
            ops += [_linear(L, "attn.qkv", t, b, 3 * b, wb, ab)]
        else:
            ops += [_linear(L, "bottleneck.attn", t, h, b, wb, ab), norm(L, "bottleneck.attn_norm", b),
                    _linear(L, "attn.qk", t, b, 2 * b, wb, ab), _linear(L, "attn.v", t, h, b, wb, ab)]
        ops += [
            OpCost(L, "attn.scores", "attention", 0, scores * d, 0, 0, (2 * t * b + scores) * ab),
            _elementwise(L, "attn.softmax", scores, 1, ab, ELEMENTWISE_OPS["softmax"]),
            OpCost(L, "attn.context", "attention", 0, scores * d, 0, 0, (scores + 2 * t * b) * ab),
            _linear(L, "attn.out", t, b, b, wb, ab), norm(L, "attn.add_norm", b),
        ]
        for k in range(shape.ffn_stacks):
            ops += [_linear(L, f"ffn{k}.up", t, b, shape.ffn, wb, ab),
                    _elementwise(L, f"ffn{k}.act", t * shape.ffn, 1, ab, act_ops),
                    _linear(L, f"ffn{k}.down", t, shape.ffn, b, wb, ab), norm(L, f"ffn{k}.add_norm", b)]
        ops += [_linear(L, "bottleneck.out", t, b, h, wb, ab), norm(L, "bottleneck.out_norm", h)]
    if lm_head:
        ops += lm_head_ops(batch, seq_len, h, shape.vocab, wb, ab, act=shape.act)
    elif num_labels:
        ops += [_linear("head", "head.pooler", batch, h, h, wb, ab),
                _linear("head", "head.classifier", batch, h, num_labels, wb, ab)]
    return _model_cost(ops, batch, seq_len, precision)
