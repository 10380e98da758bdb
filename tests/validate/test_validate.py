"""The validate step: baseline resolution, what it measures and how the verdict is decided."""
from __future__ import annotations

import pytest

from edgeslim.context import RunContext
from edgeslim.errors import ConfigError
from edgeslim.registry import STEPS
from edgeslim.tasks import get_task
from edgeslim.validate.step import ValidateConfig, resolve_baseline, weights_file_bytes

FAST = {"rounds": 1, "budget_s": 0.3, "batch_size": 8, "seq_len": 16, "calibrate": False,
        "hardware": ["raspberry-pi-5", "jetson-orin-nano"]}


def ctx_for(tiny_steps, name, lineage):
    return RunContext(out_dir=tiny_steps.root / "validate" / name, task="sst2", quiet=True,
                      settings=tiny_steps.settings, lineage=lineage)


def test_baseline_auto_is_the_last_model_before_distill_or_prune(tiny_steps, tmp_path):
    src = tiny_steps.src
    pruned = tiny_steps.run("prune", {"heads": 0.5, "recover_minutes": 0})
    lineage = [{"step": "source", "path": str(src.path)}, {"step": "eval", "path": str(src.path)},
               {"step": "prune", "path": str(pruned.path)}]
    assert resolve_baseline(ValidateConfig(), ctx_for(tiny_steps, "a", lineage)).content_hash == src.content_hash


def test_baseline_auto_outside_a_run_names_the_fix(tiny_steps):
    with pytest.raises(ConfigError, match="--baseline"):
        resolve_baseline(ValidateConfig(), ctx_for(tiny_steps, "b", []))
    with pytest.raises(ConfigError, match="not a model folder"):
        resolve_baseline(ValidateConfig(baseline="/nonexistent/teacher"), ctx_for(tiny_steps, "b", []))


@pytest.mark.parametrize("bad", [{"rounds": 0}, {"budget_s": 0}, {"target": "raspbery-pi-5"}, {"deadline_ms": -1}])
def test_bad_options_fail_before_work(bad):
    with pytest.raises(ConfigError, match="validate"):
        STEPS.get("validate").make_config(bad)


def test_validate_measures_final_against_teacher(tiny_steps):
    src = tiny_steps.src
    q = tiny_steps.run("quantize", {"scheme": "dynamic"})
    spec = STEPS.get("validate")
    cfg = spec.make_config({**FAST, "target": "host", "deadline_ms": 1000})
    ctx = ctx_for(tiny_steps, "c", [{"step": "source", "path": str(src.path)}])
    v = spec.fn(q, cfg, ctx).metrics["validate"]
    n_dev = len(get_task("sst2").load("dev", tiny_steps.settings))
    assert v["examples"] == n_dev and v["final"]["eval_batch1"]["batch_size"] == 1
    assert v["final"]["eval_batch"]["batch_size"] == 8 and v["final"]["runtime"] == "onnxruntime"
    assert v["final"]["size_bytes"] == weights_file_bytes(q) and v["teacher"]["size_bytes"] == weights_file_bytes(src)
    assert v["ratios"]["size"] == pytest.approx(v["teacher"]["size_bytes"] / v["final"]["size_bytes"], rel=1e-3)
    assert v["ratios"]["drop_points"] == pytest.approx(
        (v["teacher"]["metric_batch1"] - v["final"]["metric_batch1"]) * 100, abs=1e-3)
    lat = v["latency"]
    assert lat["label"] == "measured" and set(lat["models"]) == {"final", "teacher-pytorch", "teacher-onnxruntime"}
    lo, hi = lat["round_spread"]["vs_teacher_pytorch"]
    assert lo <= lat["speedup"]["vs_teacher_pytorch"] <= hi
    assert set(v["predicted"]) == {"raspberry-pi-5", "jetson-orin-nano"}
    assert all(p["label"] == "predicted" and p["latency_ms"] > 0 for p in v["predicted"].values())
    # target host: the verdict is the measured p99, not a prediction
    assert v["deadline"]["basis"].startswith("measured p99") and v["deadline"]["latency_ms"] == \
        lat["models"]["final"]["p99_ms"] and v["deadline"]["verdict"] == "meets"


def test_predicted_deadline_inside_the_band_is_uncertain():
    """Issue #20: a verdict predicted on a device reads "uncertain" when the trust band straddles the deadline."""
    from edgeslim.hardware.predict import resolve_config
    from edgeslim.validate.step import deadline_report, predictions

    shape = resolve_config({"model_type": "bert", "num_hidden_layers": 2, "hidden_size": 128,
                            "num_attention_heads": 2, "intermediate_size": 256, "vocab_size": 1000,
                            "max_position_embeddings": 128, "num_labels": 2})
    pred = predictions(shape, shape, "int8", ["raspberry-pi-5"], 32)
    row = pred["raspberry-pi-5"]
    assert row["trust_label"].startswith("unchecked") and row["latency_range_ms"][1] > row["latency_ms"]

    def verdict(deadline: float) -> dict:
        cfg = ValidateConfig(target="raspberry-pi-5", deadline_ms=deadline, seq_len=32, calibrate=False)
        return deadline_report(cfg, {}, pred, shape, shape, "int8")

    inside = verdict(row["latency_ms"] * 1.5)
    assert inside["verdict"] == "uncertain" and inside["trust_label"] == row["trust_label"]
    assert verdict(row["latency_range_ms"][1] * 1.01)["verdict"] == "meets"
    assert verdict(row["latency_range_ms"][0] * 0.99)["verdict"] == "misses"
