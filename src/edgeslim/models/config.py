"""A normalised view of a model config that hides each family's naming differences (as Optimum does)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ..errors import ModelError

# family -> HF config key for each normalised field
_KEYS: dict[str, dict[str, str]] = {
    "bert": dict(layers="num_hidden_layers", hidden="hidden_size", heads="num_attention_heads",
                 ffn="intermediate_size", vocab="vocab_size", max_positions="max_position_embeddings"),
    "distilbert": dict(layers="n_layers", hidden="dim", heads="n_heads", ffn="hidden_dim",
                       vocab="vocab_size", max_positions="max_position_embeddings"),
    "vit": dict(layers="num_hidden_layers", hidden="hidden_size", heads="num_attention_heads",
                ffn="intermediate_size"),
}
# model_type -> family (families share the key layout above)
FAMILIES: dict[str, str] = {
    "bert": "bert", "roberta": "bert", "electra": "bert", "xlm-roberta": "bert", "camembert": "bert",
    "mobilebert": "bert", "distilbert": "distilbert", "vit": "vit", "deit": "vit",
}


@dataclass(frozen=True)
class NormalizedConfig:
    """Shape facts every step needs, whatever the model family calls them."""

    model_type: str
    family: str
    layers: int
    hidden: int
    heads: int
    ffn: int
    vocab: int = 0                      # 0 for vision models
    max_positions: int = 0
    image_size: int = 0                 # vision only
    patch_size: int = 0                 # vision only
    num_channels: int = 0               # vision only
    # per-layer sizes after structured pruning (None = uniform)
    heads_per_layer: tuple[int, ...] | None = None
    ffn_per_layer: tuple[int, ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def is_vision(self) -> bool:
        return self.family == "vit"

    def layer_heads(self, i: int) -> int:
        return self.heads_per_layer[i] if self.heads_per_layer else self.heads

    def layer_ffn(self, i: int) -> int:
        return self.ffn_per_layer[i] if self.ffn_per_layer else self.ffn


def normalize_config(cfg: Any, where: str = "model config") -> NormalizedConfig:
    """Build a NormalizedConfig from an HF config object or a config.json dict; a missing or bad size raises
    ModelError naming `where` (the config file), the key and the fix."""
    d: Mapping[str, Any] = cfg if isinstance(cfg, Mapping) else cfg.to_dict()
    model_type = d.get("model_type", "")
    family = FAMILIES.get(model_type) if isinstance(model_type, str) else None
    if family is None:
        raise ModelError(f"{where}: model type {model_type!r} is not supported yet; supported: "
                         f"{', '.join(sorted(FAMILIES))}")
    keys = _KEYS[family]
    vals = {}
    for k, v in keys.items():
        if v not in d:
            raise ModelError(f"{where}: config of {model_type!r} model lacks {v!r}; fix: restore the config.json "
                             "the model was saved with")
        vals[k] = size(d[v], v, where)
    layers = vals["layers"]
    heads = vals["heads"]
    if vals["hidden"] % heads:
        raise ModelError(f"{where}: hidden size {vals['hidden']} is not a multiple of {heads} attention heads; "
                         "fix: restore the config.json the model was saved with")
    pruned = d.get("pruned_heads") or {}
    if not isinstance(pruned, Mapping):
        raise ModelError(f"{where}: 'pruned_heads' must be a mapping of layer -> list of head indices, got "
                         f"{type(pruned).__name__}; fix: restore the config.json the model was saved with")
    heads_per_layer = None
    if pruned:
        gone = [pruned.get(str(i), pruned.get(i, [])) for i in range(layers)]
        if not all(isinstance(g, list) and len(g) < heads for g in gone):
            raise ModelError(f"{where}: 'pruned_heads' must map each layer to a list of fewer than {heads} head "
                             "indices; fix: restore the config.json the model was saved with")
        heads_per_layer = tuple(heads - len(g) for g in gone)
    ffn_key = "intermediate_sizes" if d.get("intermediate_sizes") else "edgeslim_intermediate_sizes"
    ffn_sizes = d.get(ffn_key)
    if ffn_sizes and (not isinstance(ffn_sizes, list) or len(ffn_sizes) != layers):
        raise ModelError(f"{where}: {ffn_key!r} must be a list of {layers} FFN sizes (one per layer); fix: restore "
                         "the config.json the model was saved with")
    ffn_per_layer = tuple(size(x, ffn_key, where) for x in ffn_sizes) if ffn_sizes else None
    extra = {}
    if family == "vit":
        extra_vals = {k: size(d.get(k, default), k, where)
                      for k, default in (("image_size", 224), ("patch_size", 16), ("num_channels", 3))}
    else:
        extra_vals = {}
    return NormalizedConfig(
        model_type=model_type, family=family, layers=layers, hidden=vals["hidden"], heads=heads,
        ffn=vals["ffn"], vocab=vals.get("vocab", 0), max_positions=vals.get("max_positions", 0),
        heads_per_layer=heads_per_layer, ffn_per_layer=ffn_per_layer, extra=extra, **extra_vals,
    )


MAX_SIZE = 1 << 24   # no real layer count, width or vocabulary comes near this


def size(value: Any, key: str, where: str) -> int:
    """A config size (layers, width, heads, ...): a positive whole number, else ModelError naming the key."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_SIZE:
        raise ModelError(f"{where}: {key!r} must be a whole number in 1..{MAX_SIZE}, got {value!r}; fix: restore "
                         "the config.json the model was saved with")
    return value
