"""Structurally pruned BERT-family models: shrink modules in place, record the shapes, reload them (imports torch).

transformers 5.x dropped `prune_heads`/`head_mask` for BERT, and BertConfig cannot express per-layer head counts or
per-layer FFN sizes. The forward pass itself copes with fewer heads (it reshapes with -1 heads of fixed head size),
so edgeslim slices the weights and records the surviving structure in config.json:

- `pruned_heads`: {layer: [original head indices removed]} (the key transformers 4.x understood),
- `edgeslim_intermediate_sizes`: FFN width of every layer when they differ (one width for all layers is written
  to the standard `intermediate_size`, which stock transformers reloads),
- `edgeslim_dropped_layers`: original indices of removed encoder layers (for the record; `num_hidden_layers` is
  updated and the `pruned_heads` keys refer to the new layer numbering).

Reloading needs edgeslim (`edgeslim.models.hf.load_model` detects these keys): it builds the full-size model from
the config, shrinks it to the recorded shapes and then loads the weights strictly.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..errors import ConfigError, ModelError

PRUNE_KEYS = ("pruned_heads", "edgeslim_intermediate_sizes")


def is_pruned_config(cfg: Mapping[str, Any]) -> bool:
    """True if a config.json dict records structural pruning that stock transformers cannot rebuild."""
    return bool(cfg.get("pruned_heads")) or bool(cfg.get("edgeslim_intermediate_sizes"))


def encoder_layers(model: Any) -> Any:
    """The nn.ModuleList of encoder layers of a BERT-family model."""
    base = getattr(model, "base_model", model)
    enc = getattr(base, "encoder", None)
    if enc is None or not hasattr(enc, "layer"):
        raise ModelError(f"{type(model).__name__} has no BERT-style encoder.layer list; structured pruning "
                         "supports BERT-family models")
    return enc.layer


def _slice_linear(lin: Any, idx: Any, dim: int) -> Any:
    """A new nn.Linear keeping output rows (dim=0) or input columns (dim=1) `idx`."""
    import torch

    w = lin.weight.detach().index_select(dim, idx).clone()
    out_f, in_f = w.shape
    new = torch.nn.Linear(in_f, out_f, bias=lin.bias is not None, device=w.device, dtype=w.dtype)
    with torch.no_grad():
        new.weight.copy_(w)
        if lin.bias is not None:
            new.bias.copy_(lin.bias.detach() if dim == 1 else lin.bias.detach()[idx])
    new.train(lin.training)
    return new


def head_count(layer: Any) -> int:
    """Number of attention heads a layer has now."""
    att = layer.attention.self
    return att.query.out_features // att.attention_head_size


def ffn_size(layer: Any) -> int:
    """Number of FFN neurons a layer has now."""
    return layer.intermediate.dense.out_features


def remove_heads(layer: Any, heads: Sequence[int]) -> None:
    """Remove attention heads (indices into the layer's current heads) from one encoder layer."""
    import torch

    att = layer.attention.self
    d = att.attention_head_size
    n = head_count(layer)
    drop = sorted(set(int(h) for h in heads))
    if not drop:
        return
    if any(not 0 <= h < n for h in drop):
        raise ConfigError(f"head indices {drop} out of range for a layer with {n} heads")
    if len(drop) >= n:
        raise ConfigError(f"cannot remove all {n} heads of a layer; remove the whole layer instead (drop_layers)")
    keep_heads = [h for h in range(n) if h not in drop]
    idx = torch.tensor([h * d + j for h in keep_heads for j in range(d)], dtype=torch.long)
    att.query = _slice_linear(att.query, idx, 0)
    att.key = _slice_linear(att.key, idx, 0)
    att.value = _slice_linear(att.value, idx, 0)
    layer.attention.output.dense = _slice_linear(layer.attention.output.dense, idx, 1)
    att.num_attention_heads = len(keep_heads)
    att.all_head_size = len(keep_heads) * d


def keep_ffn(layer: Any, neurons: Sequence[int]) -> None:
    """Keep only FFN neurons `neurons` (indices into the layer's current intermediate units)."""
    import torch

    keep = sorted(set(int(i) for i in neurons))
    n = ffn_size(layer)
    if not keep:
        raise ConfigError("cannot remove every FFN neuron of a layer; keep at least one or drop the layer")
    if any(not 0 <= i < n for i in keep):
        raise ConfigError(f"FFN neuron indices out of range for a layer with {n} neurons")
    idx = torch.tensor(keep, dtype=torch.long)
    layer.intermediate.dense = _slice_linear(layer.intermediate.dense, idx, 0)
    layer.output.dense = _slice_linear(layer.output.dense, idx, 1)


def drop_layers(model: Any, layers: Sequence[int]) -> None:
    """Remove whole encoder layers (current indices) and update the config."""
    import torch

    mods = encoder_layers(model)
    drop = sorted(set(int(i) for i in layers))
    if any(not 0 <= i < len(mods) for i in drop):
        raise ConfigError(f"layer indices {drop} out of range for a model with {len(mods)} layers")
    if len(drop) >= len(mods):
        raise ConfigError(f"cannot drop all {len(mods)} encoder layers; keep at least one")
    kept = [m for i, m in enumerate(mods) if i not in drop]
    base = getattr(model, "base_model", model)
    base.encoder.layer = torch.nn.ModuleList(kept)
    cfg = model.config
    orig = list(getattr(cfg, "edgeslim_layer_map", None) or range(len(mods)))
    cfg.edgeslim_dropped_layers = sorted(set(getattr(cfg, "edgeslim_dropped_layers", None) or [])
                                         | {orig[i] for i in drop})
    cfg.edgeslim_layer_map = [orig[i] for i in range(len(mods)) if i not in drop]
    old_pruned = {int(k): v for k, v in (getattr(cfg, "pruned_heads", None) or {}).items()}
    new_index = {old: new for new, old in enumerate(i for i in range(len(mods)) if i not in drop)}
    cfg.pruned_heads = {str(new_index[k]): v for k, v in old_pruned.items() if k in new_index}
    cfg.num_hidden_layers = len(kept)
    for i, m in enumerate(kept):  # keep cache/layer indices consistent
        if hasattr(m.attention.self, "layer_idx"):
            m.attention.self.layer_idx = i
    record_structure(model)


def record_structure(model: Any, removed_heads: Mapping[int, Sequence[int]] | None = None) -> None:
    """Write the current per-layer structure into model.config (pruned_heads, edgeslim_intermediate_sizes).

    `removed_heads` maps layer -> ORIGINAL head indices removed in this call (added to what the config records).
    """
    cfg = model.config
    pruned = {int(k): sorted(set(v)) for k, v in (getattr(cfg, "pruned_heads", None) or {}).items()}
    for layer, heads in (removed_heads or {}).items():
        pruned[int(layer)] = sorted(set(pruned.get(int(layer), [])) | set(int(h) for h in heads))
    cfg.pruned_heads = {str(k): v for k, v in sorted(pruned.items()) if v}
    sizes = [ffn_size(m) for m in encoder_layers(model)]
    if len(set(sizes)) == 1:  # one FFN width for all layers: stock BertConfig can say it
        cfg.intermediate_size = sizes[0]
        cfg.edgeslim_intermediate_sizes = None
    else:
        cfg.edgeslim_intermediate_sizes = sizes
    if not cfg.pruned_heads:
        cfg.pruned_heads = {}


def original_heads(cfg: Any, layer: int) -> list[int]:
    """Original indices of the heads layer `layer` still has, in the order its weights hold them."""
    pruned = {int(k): v for k, v in (getattr(cfg, "pruned_heads", None) or {}).items()}
    gone = set(pruned.get(layer, []))
    return [h for h in range(cfg.num_attention_heads) if h not in gone]


def shrink_to_config(model: Any) -> Any:
    """Shrink a freshly built full-size model to the structure recorded in its config (weights are placeholders)."""
    cfg = model.config
    pruned = {int(k): v for k, v in (getattr(cfg, "pruned_heads", None) or {}).items()}
    sizes = getattr(cfg, "edgeslim_intermediate_sizes", None)
    layers = encoder_layers(model)
    if sizes is not None and len(sizes) != len(layers):
        raise ModelError(f"config records {len(sizes)} FFN sizes for {len(layers)} layers; the folder is corrupt")
    for i, layer in enumerate(layers):
        heads = pruned.get(i, [])
        if heads:
            remove_heads(layer, heads)  # a fresh layer has all heads: original indices == current indices
        if sizes is not None and sizes[i] != ffn_size(layer):
            keep_ffn(layer, range(int(sizes[i])))
    return model






def count_params(model: Any) -> int:
    """Number of parameters (tied weights counted once)."""
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    return total
