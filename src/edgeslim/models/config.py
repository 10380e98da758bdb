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


def normalize_config(cfg: Any) -> NormalizedConfig:
    """Build a NormalizedConfig from an HF config object or a config.json dict."""
    d: Mapping[str, Any] = cfg if isinstance(cfg, Mapping) else cfg.to_dict()
    model_type = d.get("model_type", "")
    family = FAMILIES.get(model_type)
    if family is None:
        raise ModelError(
            f"model type {model_type!r} is not supported yet; supported: {', '.join(sorted(FAMILIES))}"
        )
    keys = _KEYS[family]
    try:
        vals = {k: int(d[v]) for k, v in keys.items()}
    except KeyError as exc:
        raise ModelError(f"config of {model_type!r} model lacks {exc.args[0]!r}") from None
    layers = vals["layers"]
    heads = vals["heads"]
    pruned = d.get("pruned_heads") or {}
    heads_per_layer = None
    if pruned:
        heads_per_layer = tuple(heads - len(pruned.get(str(i), pruned.get(i, []))) for i in range(layers))
    ffn_sizes = d.get("intermediate_sizes") or d.get("edgeslim_intermediate_sizes")
    ffn_per_layer = tuple(int(x) for x in ffn_sizes) if ffn_sizes else None
    extra = {}
    if family == "vit":
        extra_vals = dict(image_size=int(d.get("image_size", 224)), patch_size=int(d.get("patch_size", 16)),
                          num_channels=int(d.get("num_channels", 3)))
    else:
        extra_vals = {}
    return NormalizedConfig(
        model_type=model_type, family=family, layers=layers, hidden=vals["hidden"], heads=heads,
        ffn=vals["ffn"], vocab=vals.get("vocab", 0), max_positions=vals.get("max_positions", 0),
        heads_per_layer=heads_per_layer, ffn_per_layer=ffn_per_layer, extra=extra, **extra_vals,
    )
