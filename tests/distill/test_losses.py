"""Each distillation loss equals a value computed by hand on small tensors."""
import math

import pytest
import torch

from edgeslim.distill.losses import LOSSES, LossContext, Outputs, combined_loss, needs_of, parse_weights
from edgeslim.errors import ConfigError


def test_soft_label_kl_with_temperature():
    s, t = Outputs(logits=torch.tensor([[0.0, 0.0]])), Outputs(logits=torch.tensor([[math.log(3.0), 0.0]]))
    # T = 1: p_t = (3/4, 1/4), p_s = (1/2, 1/2)
    want1 = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert LOSSES.get("kl").fn(s, t, LossContext(temperature=1.0)).item() == pytest.approx(want1, abs=1e-6)
    # T = 2: p_t = (sqrt3, 1) / (sqrt3 + 1), scaled by T^2
    a = math.sqrt(3) / (math.sqrt(3) + 1)
    want2 = 4 * (a * math.log(a / 0.5) + (1 - a) * math.log((1 - a) / 0.5))
    assert LOSSES.get("kl").fn(s, t, LossContext(temperature=2.0)).item() == pytest.approx(want2, abs=1e-6)
    assert want2 == pytest.approx(0.14536, abs=1e-4)


def test_hard_label_ce():
    s = Outputs(logits=torch.tensor([[2.0, 0.0]]))
    got = LOSSES.get("ce").fn(s, Outputs(), LossContext(labels=torch.tensor([1])))
    assert got.item() == pytest.approx(math.log(1 + math.e ** 2), abs=1e-6)
    with pytest.raises(ConfigError, match="needs gold labels"):
        LOSSES.get("ce").fn(s, Outputs(), LossContext())


def _hidden(*layers):
    return tuple(torch.tensor(x, dtype=torch.float32) for x in layers)


def test_hidden_mse_uses_layer_map_and_mask():
    # student layer 0 <-> teacher layer 1; the second token is padding
    s = Outputs(hidden_states=_hidden([[[9, 9], [9, 9]]], [[[1, 2], [3, 4]]]))
    t = Outputs(hidden_states=_hidden([[[0, 0], [0, 0]]], [[[5, 5], [5, 5]]], [[[1, 0], [0, 0]]]))
    ctx = LossContext(mask=torch.tensor([[1, 0]]), layer_map=(1,))
    # only token 0: (1-1)^2 + (2-0)^2 over 2 channels = 2
    assert LOSSES.get("hidden_mse").fn(s, t, ctx).item() == pytest.approx(2.0)
    # embeddings (hidden_states[0]): (9-0)^2 * 2 / 2 = 81
    assert LOSSES.get("embedding").fn(s, t, ctx).item() == pytest.approx(81.0)


def test_projection_and_width_mismatch():
    s = Outputs(hidden_states=_hidden([[[1.0]]], [[[1.0]]]))
    t = Outputs(hidden_states=_hidden([[[1.0, 1.0]]], [[[1.0, 1.0]]]))
    proj = torch.nn.Linear(1, 2, bias=False)
    with torch.no_grad():
        proj.weight.copy_(torch.tensor([[1.0], [2.0]]))
    ctx = LossContext(mask=torch.tensor([[1]]), layer_map=(0,), projection=proj)
    assert LOSSES.get("hidden_mse").fn(s, t, ctx).item() == pytest.approx(0.5)   # (0^2 + 1^2) / 2
    with pytest.raises(ConfigError, match="width mismatch|no projection"):
        LOSSES.get("hidden_mse").fn(s, t, LossContext(mask=torch.tensor([[1]]), layer_map=(0,)))


def test_cosine_loss():
    s = Outputs(hidden_states=_hidden([[[0, 0], [0, 0]]], [[[1, 0], [1, 1]]]))
    t = Outputs(hidden_states=_hidden([[[0, 0], [0, 0]]], [[[0, 1], [2, 2]]]))
    ctx = LossContext(mask=torch.tensor([[1, 1]]), layer_map=(0,))
    assert LOSSES.get("cosine").fn(s, t, ctx).item() == pytest.approx(0.5)      # (1 - 0 + 1 - 1) / 2


def test_attention_kl_over_real_rows_and_head_map():
    a_t = torch.tensor([[[[0.5, 0.5], [1.0, 0.0]], [[0.9, 0.1], [0.9, 0.1]]]])    # [1, 2 heads, 2, 2]
    a_s = torch.tensor([[[[0.25, 0.75], [1.0, 0.0]]]])                            # [1, 1 head, 2, 2]
    ctx = LossContext(mask=torch.tensor([[1, 1]]), layer_map=(0,), head_map=((0,),))
    want = (0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75) + 0.0) / 2
    got = LOSSES.get("attention").fn(Outputs(attentions=(a_s,)), Outputs(attentions=(a_t,)), ctx)
    assert got.item() == pytest.approx(want, abs=1e-6)


def test_weights_parse_and_combine():
    assert parse_weights("kl=1, ce=0.5", "x") == {"kl": 1.0, "ce": 0.5}
    assert needs_of({"kl": 1, "hidden_mse": 1, "ce": 0}) == {"logits", "hidden"}
    with pytest.raises(ConfigError, match="unknown loss 'hiden_mse'.*hidden_mse"):
        parse_weights("hiden_mse=1", "x")
    with pytest.raises(ConfigError, match=">= 0"):
        parse_weights({"kl": -1}, "x")
    with pytest.raises(ConfigError, match="positive weight"):
        parse_weights({"kl": 0}, "x")
    s, t = Outputs(logits=torch.tensor([[2.0, 0.0]])), Outputs(logits=torch.tensor([[2.0, 0.0]]))
    total, parts = combined_loss({"kl": 1.0, "ce": 0.5}, s, t, LossContext(labels=torch.tensor([1])))
    assert parts["kl"] == pytest.approx(0.0, abs=1e-7)
    assert total.item() == pytest.approx(0.5 * math.log(1 + math.e ** 2), abs=1e-6)
