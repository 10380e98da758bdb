"""Student construction: layer maps, exact copies of mapped teacher layers, width slicing, and bad requests."""
import pytest
import torch

from edgeslim.distill.student import (activation_importance, build_student, count_params, even_layer_map,
                                      plan_student, selection_projection)
from edgeslim.errors import ConfigError
from edgeslim.models.config import normalize_config
from edgeslim.models.tiny import tiny_bert


@pytest.fixture(scope="module")
def teacher():
    return tiny_bert("classification", layers=4, hidden=32, heads=4, ffn=64, vocab=100, seed=3)


def shape(m):
    return normalize_config(m.config)


def batch(seed=0, n=6, t=9):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 100, (n, t), generator=g)
    mask = torch.ones_like(ids)
    mask[0, 6:] = 0
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}


def test_even_layer_map():
    assert even_layer_map(6, 3) == (0, 3, 5)
    assert even_layer_map(6, 1) == (5,)
    assert even_layer_map(6, 6) == (0, 1, 2, 3, 4, 5)
    assert even_layer_map(4, 2) == (0, 3)


def test_depth_student_copies_mapped_layers_exactly(teacher):
    plan = plan_student(shape(teacher), layers=[0, 2])
    student, sel = build_student(teacher, plan)
    assert student.config.num_hidden_layers == 2 and sel.channels is None
    t_sd, s_sd = teacher.state_dict(), student.state_dict()
    for name, val in s_sd.items():
        t_name = name.replace("encoder.layer.1.", "encoder.layer.2.")
        assert torch.equal(val, t_sd[t_name]), name
    # all layers kept = the teacher itself, bit for bit
    full, _ = build_student(teacher, plan_student(shape(teacher), layers=4))
    b = batch()
    with torch.no_grad():
        assert torch.equal(full(**b).logits, teacher(**b).logits)
    n_layer = sum(p.numel() for n, p in teacher.named_parameters() if "encoder.layer.0." in n)
    assert count_params(teacher) - count_params(student) == 2 * n_layer


def test_width_student_slices_most_important_units(teacher):
    imp = activation_importance(teacher, [batch(1), batch(2)])
    assert imp.channels.shape == (32,) and len(imp.heads) == 4 and imp.neurons[0].shape == (64,)
    plan = plan_student(shape(teacher), layers=[1, 3], hidden=16, ffn=24)
    assert plan.heads == 2      # 16 / teacher head size 8
    student, sel = build_student(teacher, plan, imp)
    ch = torch.tensor(sel.channels)
    assert list(sel.channels) == sorted(imp.channels.topk(16).indices.tolist())
    assert list(sel.heads[1]) == sorted(imp.heads[3].topk(2).indices.tolist())
    heads = sel.heads[1]
    dims = torch.tensor([h * 8 + d for h in heads for d in range(8)])
    nr = torch.tensor(sel.neurons[1])
    t, s = teacher.bert.encoder.layer[3], student.bert.encoder.layer[1]
    assert torch.equal(s.attention.self.query.weight, t.attention.self.query.weight[dims][:, ch])
    assert torch.equal(s.attention.output.dense.weight, t.attention.output.dense.weight[ch][:, dims])
    assert torch.equal(s.intermediate.dense.weight, t.intermediate.dense.weight[nr][:, ch])
    assert torch.equal(s.output.dense.weight, t.output.dense.weight[ch][:, nr])
    assert torch.equal(student.bert.embeddings.word_embeddings.weight,
                       teacher.bert.embeddings.word_embeddings.weight[:, ch])
    assert torch.equal(student.classifier.weight, teacher.classifier.weight[:, ch])
    # the projection starts as the inverse of the channel selection
    proj = selection_projection(16, 32, sel.channels)
    x = torch.randn(3, 16)
    y = proj(x)
    assert torch.equal(y[:, ch], x) and y.abs().sum() == x.abs().sum()


def test_bad_student_requests(teacher):
    sh = shape(teacher)
    with pytest.raises(ConfigError, match="larger than teacher.*5 layers"):
        plan_student(sh, layers=5)
    with pytest.raises(ConfigError, match="larger than teacher.*student_hidden=64"):
        plan_student(sh, hidden=64)
    with pytest.raises(ConfigError, match="larger than teacher.*student_ffn"):
        plan_student(sh, ffn=128)
    with pytest.raises(ConfigError, match=r"out of range.*\[4\].*0\.\.3"):
        plan_student(sh, layers=[0, 4])
    with pytest.raises(ConfigError, match="out of range"):
        plan_student(sh, layers=[-1])
    with pytest.raises(ConfigError, match="width mismatch"):
        plan_student(sh, hidden=16, heads=4)          # head size 4 != teacher's 8
    assert plan_student(sh, hidden=16, heads=4, init="scratch").heads == 4
    with pytest.raises(ConfigError, match="multiple of the teacher's head size"):
        plan_student(sh, hidden=20)
