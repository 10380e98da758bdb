"""Structured pruning on tiny BERTs: pruned == masked original, exact parameter drop, reload, targets, bad input."""
from __future__ import annotations

import copy
import json

import pytest

torch = pytest.importorskip("torch")

from edgeslim.artifact import ModelArtifact  # noqa: E402
from edgeslim.context import RunContext  # noqa: E402
from edgeslim.errors import ConfigError, StepError  # noqa: E402
from edgeslim.models.hf import load_model, transformers  # noqa: E402
from edgeslim.models.pruned import count_params, remove_heads, drop_layers  # noqa: E402
from edgeslim.models.tiny import tiny_bert  # noqa: E402
from edgeslim.prune.step import (Plan, PruneConfig, apply_plan, choose_removal, prune,  # noqa: E402
                                  search_scale)
from edgeslim.prune.importance import (StructureMask, gradient_importance,  # noqa: E402
                                             layer_importance, magnitude_importance)

H, D, FFN = 32, 8, 64          # hidden, head size (4 heads), FFN width of the tiny model


def _inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 300, (3, 12), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    return {"input_ids": ids, "attention_mask": mask}


PLAN = Plan(heads=[[0, 2], [1], []], ffn=[list(range(0, 64, 2)), [5, 6], list(range(10))])


def test_pruned_equals_masked_original_and_params_drop_exactly():
    model = tiny_bert("classification", layers=3, vocab=300)
    ref = copy.deepcopy(model)
    apply_plan(model, PLAN)
    mask = StructureMask(ref)
    for i, (h, f) in enumerate(zip(PLAN.heads, PLAN.ffn)):
        mask.heads[i][h] = 0.0
        mask.ffn[i][f] = 0.0
    x = _inputs()
    with torch.no_grad(), mask.applied():
        masked = ref(**x).logits
    with torch.no_grad():
        pruned = model(**x).logits
    assert torch.allclose(masked, pruned, atol=1e-5)
    # a head owns Q, K, V rows (+ biases) and O columns; a neuron one FFN row (+ bias) and one column
    per_head = 3 * (H * D + D) + H * D
    per_neuron = H + 1 + H
    n_heads, n_neurons = sum(map(len, PLAN.heads)), sum(map(len, PLAN.ffn))
    assert count_params(ref) - count_params(model) == n_heads * per_head + n_neurons * per_neuron
    assert model.config.pruned_heads == {"0": [0, 2], "1": [1]}
    assert model.config.edgeslim_intermediate_sizes == [32, 62, 54]


def test_saved_pruned_model_reloads_with_identical_outputs(tmp_path):
    model = tiny_bert("classification", layers=3, vocab=300)
    apply_plan(model, PLAN)
    apply_plan(model, Plan(heads=[[0], [], [3]], ffn=[[], [], []]))   # second round: current indices
    assert model.config.pruned_heads == {"0": [0, 1, 2], "1": [1], "2": [3]}
    model.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["pruned_heads"] == {"0": [0, 1, 2], "1": [1], "2": [3]}
    again = load_model(tmp_path, "classification")
    x = _inputs(1)
    with torch.no_grad():
        assert torch.allclose(again(**x).logits, model(**x).logits, atol=1e-6)
    assert count_params(again) == count_params(model)


def test_uniform_ffn_only_reloads_with_stock_transformers(tmp_path):
    model = tiny_bert("classification", layers=2, vocab=300)
    apply_plan(model, Plan(heads=[[], []], ffn=[list(range(16)), list(range(16, 32))]))
    assert model.config.intermediate_size == 48 and model.config.edgeslim_intermediate_sizes is None
    model.save_pretrained(tmp_path)
    stock = transformers().AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    x = _inputs(2)
    with torch.no_grad():
        assert torch.allclose(stock(**x).logits, model(**x).logits, atol=1e-6)


def test_drop_layer_equals_skipping_it(tmp_path):
    model = tiny_bert("classification", layers=3, vocab=300)
    ref = copy.deepcopy(model)
    apply_plan(model, Plan(heads=[[1], [], [0]], ffn=[[], [], []]))
    apply_plan(ref, Plan(heads=[[1], [], [0]], ffn=[[], [], []]))
    drop_layers(model, [1])
    assert model.config.num_hidden_layers == 2
    assert model.config.pruned_heads == {"0": [1], "1": [0]}      # renumbered after the drop
    handle = ref.base_model.encoder.layer[1].register_forward_hook(lambda m, a, o: a[0])
    x = _inputs(3)
    with torch.no_grad():
        assert torch.allclose(ref(**x).logits, model(**x).logits, atol=1e-5)
    handle.remove()
    model.save_pretrained(tmp_path)
    with torch.no_grad():
        assert torch.allclose(load_model(tmp_path, "classification")(**x).logits, model(**x).logits, atol=1e-6)


def test_importance_scores():
    model = tiny_bert("classification", layers=2, vocab=300)
    # silence head 1 of layer 0 and neuron 3 of layer 1: they cannot matter to the loss
    with torch.no_grad():
        model.base_model.encoder.layer[0].attention.output.dense.weight[:, D:2 * D] = 0
        model.base_model.encoder.layer[1].output.dense.weight[:, 3] = 0
    batch = {**_inputs(), "labels": torch.tensor([0, 1, 1])}
    grad = gradient_importance(model, [batch, batch])
    assert grad.heads[0][1] == 0.0 and min(grad.heads[0][0], grad.heads[0][2]) > 0
    assert grad.ffn[1][3] == 0.0 and grad.ffn[1][4] > 0
    mag = magnitude_importance(model)
    assert mag.ffn[1][3] == 0.0
    assert mag.heads[0][1] < mag.heads[0][0]
    assert all(p.requires_grad for p in model.parameters())   # restored after scoring
    assert len(layer_importance(model, [batch])) == 2


def test_choose_removal_layer_and_global():
    scores = [[0.1, 0.9, 0.5, 0.2], [3.0, 1.0, 2.0, 4.0]]
    assert choose_removal(scores, [2, 3], "layer") == [[0, 3], [1]]
    # global: normalised per layer; every layer keeps its best unit
    out = choose_removal(scores, 2, "global")
    assert out == [[0, 2, 3], [0, 1, 2]]


def test_search_scale_is_smallest_fitting():
    assert search_scale(lambda s: s >= 0.37) == 0.4
    assert search_scale(lambda s: False) is None


@pytest.mark.parametrize("kw, match", [
    ({"heads": 1.0}, "heads must be in"), ({"heads": -0.1}, "heads must be in"), ({"ffn": 1.5}, "ffn must be in"),
    ({"vocab": "dev"}, "vocab must be"), ({"score": "random"}, "score must be"),
    ({"target_params": 10}, "needs the largest ratios"), ({"drop_layers": -1}, "drop_layers"),
    ({"heads": 0.5, "target_params": 10, "target_latency_ms": 2.0}, "one target"),
])
def test_bad_config(kw, match):
    with pytest.raises(ConfigError, match=match):
        PruneConfig(**kw)


def test_cannot_remove_every_head_of_a_layer_or_every_layer():
    model = tiny_bert("classification", layers=2, vocab=300)
    with pytest.raises(ConfigError, match="remove the whole layer"):
        remove_heads(model.base_model.encoder.layer[0], [0, 1, 2, 3])
    with pytest.raises(ConfigError, match="keep at least one"):
        drop_layers(model, [0, 1])


def _ctx(tmp_path, name="out"):
    return RunContext(out_dir=tmp_path / name, task="sst2", quiet=True)


def test_prune_step_end_to_end(tiny_data, tiny_bert_dir, tmp_path):
    src = ModelArtifact.load(tiny_bert_dir)
    cfg = PruneConfig(heads=0.5, ffn=0.5, vocab="task", recover_minutes=0.01, iterations=2, calib_samples=32)
    art = prune(src, cfg, _ctx(tmp_path))
    rep = art.metrics["prune"]
    assert rep["after"]["heads_per_layer"] == [2, 2] and rep["after"]["ffn_per_layer"] == [32, 32]
    assert rep["after"]["params"] < rep["before"]["params"] and 0 <= art.metrics["accuracy"] <= 1
    assert [r["heads"] for r in rep["rounds"]] == [0.25, 0.5]
    again = load_model(art.path, "classification")
    assert count_params(again) == rep["after"]["params"]
    tok = transformers().AutoTokenizer.from_pretrained(art.path)
    assert len(tok) == again.config.vocab_size == rep["vocab"]["kept"]
    with pytest.raises(ConfigError, match="would remove all"):
        prune(src, PruneConfig(drop_layers=2, score="magnitude"), _ctx(tmp_path, "bad"))
    assert not (tmp_path / "bad").exists()


def test_prune_to_parameter_target(tiny_data, tiny_bert_dir, tmp_path):
    src = ModelArtifact.load(tiny_bert_dir)
    full = count_params(load_model(tiny_bert_dir, "classification"))
    target = full - 4000
    art = prune(src, PruneConfig(heads=0.75, ffn=0.75, score="magnitude", target_params=target, eval=False),
                _ctx(tmp_path))
    rep = art.metrics["prune"]
    assert rep["after"]["params"] <= target
    probes = rep["target"]["probes"]
    smaller = [p for p in probes if p["scale"] < rep["target"]["scale"]]
    assert smaller and not any(p["fits"] for p in smaller)       # the chosen scale is the smallest that fits
    with pytest.raises(StepError, match="not reachable"):
        prune(src, PruneConfig(heads=0.25, ffn=0.25, score="magnitude", target_params=100), _ctx(tmp_path, "x"))


def test_prune_to_predicted_latency(tiny_data, tiny_bert_dir, tmp_path):
    from edgeslim.hardware import predict_latency

    full = predict_latency(str(tiny_bert_dir), "raspberry-pi-5", batch=1, seq_len=128).latency_ms
    cfg = PruneConfig(heads=0.5, ffn=0.75, score="magnitude", target_latency_ms=full * 0.8,
                      latency_source="raspberry-pi-5", eval=False)
    art = prune(ModelArtifact.load(tiny_bert_dir), cfg, _ctx(tmp_path))
    after = predict_latency(art.path, "raspberry-pi-5", batch=1, seq_len=128).latency_ms
    assert after <= full * 0.8


def test_pruned_model_exports_to_onnx(tmp_path):
    np = pytest.importorskip("numpy")
    pytest.importorskip("onnxruntime")
    from edgeslim.runtime.onnx_rt import make_session
    from edgeslim.export.onnx import export_text_model_to_onnx

    model = tiny_bert("classification", layers=3, vocab=300)
    apply_plan(model, PLAN)
    f = export_text_model_to_onnx(model, tmp_path / "m.onnx")
    x = _inputs(4)
    feed = {k: v.numpy() for k, v in x.items()}
    feed["token_type_ids"] = np.zeros_like(feed["input_ids"])
    sess = make_session(f, 1)
    feed = {i.name: feed[i.name] for i in sess.get_inputs()}
    with torch.no_grad():
        want = model(**x).logits.numpy()
    assert np.abs(sess.run(None, feed)[0] - want).max() < 1e-4


def test_cli_rejects_bad_ratio_with_clear_error(tiny_bert_dir, tmp_path, capsys):
    from edgeslim.cli import main

    code = main(["prune", "--model", str(tiny_bert_dir), "--task", "sst2", "--heads", "1.0",
                 "--out", str(tmp_path / "o")])
    assert code == 2
    assert "heads must be in [0, 1)" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_prune_as_recipe_step_then_onnx_export(tiny_data, tiny_bert_dir, tmp_path):
    pytest.importorskip("onnxruntime")
    from edgeslim.errors import RecipeError
    from edgeslim.pipeline import run_recipe
    from edgeslim.recipe import parse_recipe

    with pytest.raises((RecipeError, ConfigError), match="heads must be in"):
        parse_recipe({"model": str(tiny_bert_dir), "task": "sst2", "steps": [{"prune": {"heads": 1.5}}]})
    r = parse_recipe({"model": str(tiny_bert_dir), "task": "sst2",
                      "steps": [{"prune": {"heads": 0.5, "ffn": 0.25, "score": "magnitude", "vocab": "train"}},
                                "export.onnx", "eval"]})
    lineage = run_recipe(r, tmp_path / "run", quiet=True)
    assert [s["step"] for s in lineage][1:] == ["prune", "export.onnx", "eval"]
    pruned = ModelArtifact.load(lineage[1]["path"])
    assert pruned.metrics["prune"]["after"]["heads_per_layer"] == [2, 2]
    onnx_eval = lineage[-1]["metrics"]["sst2/dev"]       # the exported pruned model, scored in ONNX Runtime
    assert onnx_eval["eval"]["n"] == 32
    assert abs(onnx_eval["accuracy"] - pruned.metrics["accuracy"]) < 1e-9


def test_measured_latency_target_unreachable_fails_before_training(tiny_data, tiny_bert_dir, tmp_path):
    pytest.importorskip("onnxruntime")
    cfg = PruneConfig(heads=0.5, ffn=0.5, score="magnitude", target_latency_ms=1e-4, recover_minutes=5)
    with pytest.raises(StepError, match=r"onnxruntime.*not reachable"):
        prune(ModelArtifact.load(tiny_bert_dir), cfg, _ctx(tmp_path))
    assert not (tmp_path / "out").exists()
