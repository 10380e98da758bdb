"""Analytic cost: parameter totals against real HF models, MACs against a hand count."""
import pytest

from edgeslim.hardware import model_cost, resolve_config


def _numel(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("kw", [dict(layers=2, hidden=32, heads=4, ffn=64),
                                dict(layers=3, hidden=64, heads=8, ffn=96, num_labels=3)])
def test_params_match_hf_bert(kw):
    from edgeslim.models.tiny import tiny_bert

    model = tiny_bert("classification", **kw)
    cost = model_cost(resolve_config(model.config.to_dict()), precision="fp32")
    assert cost.params == _numel(model)


def test_params_match_pruned_heads_and_ffn():
    """Per-layer heads and FFN widths of a physically pruned model are respected exactly."""
    from edgeslim.models.pruned import encoder_layers, keep_ffn, record_structure, remove_heads
    from edgeslim.models.tiny import tiny_bert

    model = tiny_bert("classification", layers=2, hidden=32, heads=4, ffn=64)
    layers = encoder_layers(model)
    remove_heads(layers[0], [0, 1])
    remove_heads(layers[1], [3])
    keep_ffn(layers[0], list(range(48)))
    keep_ffn(layers[1], list(range(16)))
    record_structure(model, {0: [0, 1], 1: [3]})
    cfg = resolve_config(model.config.to_dict())
    assert cfg.heads_per_layer == (2, 3) and cfg.ffn_per_layer == (48, 16)
    assert model_cost(cfg).params == _numel(model)


def test_params_match_vit():
    from edgeslim.models.tiny import tiny_vit

    model = tiny_vit(num_labels=10, image_size=32)
    cfg = resolve_config({**model.config.to_dict(), "num_labels": 10})
    cost = model_cost(cfg)
    assert cost.params == _numel(model)
    assert cost.seq_len == (32 // 8) ** 2 + 1


def test_macs_hand_count():
    """2 layers, hidden 32, 4 heads, FFN 64, batch 2, seq 8 (T = 16 tokens)."""
    cfg = resolve_config({"model_type": "bert", "num_hidden_layers": 2, "hidden_size": 32, "num_attention_heads": 4,
                          "intermediate_size": 64, "vocab_size": 100, "max_position_embeddings": 64,
                          "num_labels": 2})
    cost = model_cost(cfg, batch=2, seq_len=8)
    T, h, f, S, B = 16, 32, 64, 8, 2
    per_layer = T * h * 3 * h + 2 * B * S * S * h + T * h * h + 2 * T * h * f   # qkv, QK^T + PV, out, FFN
    head = B * h * h + B * h * 2                                                # pooler + classifier
    assert cost.macs == 2 * per_layer + head == 2 * (49152 + 8192 + 16384 + 65536) + 2176
    ops = {(o.layer, o.op): o for o in cost.ops}
    assert ops[("layer.0", "attn.scores")].macs == B * 4 * S * S * 8
    # int8 halves nothing in MACs but quarters the linear weight bytes
    c8 = model_cost(cfg, batch=2, seq_len=8, precision="int8")
    assert c8.macs == cost.macs
    q32, q8 = ops[("layer.0", "ffn.up")], {(o.layer, o.op): o for o in c8.ops}[("layer.0", "ffn.up")]
    assert q32.weight_bytes == 4 * q8.weight_bytes == 4 * (h * f + f)


def test_intensity_grows_with_tokens():
    cfg = resolve_config({"model_type": "bert", "num_hidden_layers": 2, "hidden_size": 256, "num_attention_heads": 4,
                          "intermediate_size": 1024, "vocab_size": 1000, "max_position_embeddings": 512})
    a = model_cost(cfg, batch=1, seq_len=8).intensity
    b = model_cost(cfg, batch=8, seq_len=128).intensity
    assert b > 5 * a


@pytest.mark.realdata
def test_minilm_params_and_macs():
    """The packaged teacher: 22,713,216 backbone params (+770 for a 2-label classifier)."""
    import torch  # noqa: F401

    from edgeslim.models.hf import load_model

    model = load_model("minilm-l6", None)
    cost = model_cost(resolve_config("minilm-l6"), num_labels=0, pooler=True)
    assert cost.params == _numel(model) == 22_713_216
    # 6 layers x 128 tokens x (4 h^2 + 2 h f) + attention 2 x 128^2 x 384 per layer + pooler
    h, f, S = 384, 1536, 128
    assert cost.macs == 6 * (S * (4 * h * h + 2 * h * f) + 2 * S * S * h) + h * h
