import json

import pytest

from edgeslim.errors import RecipeError
from edgeslim.pipeline import run_recipe
from edgeslim.recipe import parse_recipe


def test_recipe_errors_come_first():
    with pytest.raises(RecipeError, match="unknown key 'stesp'.*'steps'"):
        parse_recipe({"model": "x", "stesp": []})
    with pytest.raises(RecipeError, match="unknown step 'finetun'.*'finetune'"):
        parse_recipe({"model": "x", "steps": [{"finetun": {}}]})
    with pytest.raises(RecipeError, match=r"step 1 \(finetune\): unknown option 'max_minute'.*'max_minutes'"):
        parse_recipe({"model": "x", "steps": [{"finetune": {"max_minute": 3}}]})
    with pytest.raises(RecipeError, match="max_minutes must be > 0"):
        parse_recipe({"model": "x", "steps": [{"finetune": {"max_minutes": -1}}]})
    with pytest.raises(RecipeError, match="unknown task"):
        parse_recipe({"model": "x", "task": "sst9", "steps": ["eval"]})
    with pytest.raises(RecipeError, match="missing `model:`"):
        parse_recipe({"steps": ["eval"]})


def test_pipeline_runs_caches_and_records_lineage(tiny_data, tiny_bert_dir, tmp_path):
    r = parse_recipe({"model": str(tiny_bert_dir), "task": "sst2",
                      "steps": [{"finetune": {"epochs": 1, "batch_size": 32, "lr": 1e-3}}, "eval"]})
    lineage = run_recipe(r, tmp_path / "run", quiet=True)
    assert [s["step"] for s in lineage] == ["source", "finetune", "eval"]
    assert lineage[1]["parent"] == lineage[0]["hash"] and not lineage[1]["cached"]
    assert lineage[2]["metrics"]["sst2/dev"]["eval"]["n"] == 32
    again = run_recipe(r, tmp_path / "run", quiet=True)
    assert again[1]["cached"] and again[1]["hash"] == lineage[1]["hash"]
    assert json.loads((tmp_path / "run" / "lineage.json").read_text())[1]["cached"] is True


def test_six_step_recipe_on_a_tiny_model(tiny_data, tmp_path):
    """The survey's recipe in one YAML-shaped recipe: baseline, distill, prune, export (validated), quantize, profile
    of the deployable model; every step's artifact descends from the one before."""
    from edgeslim.models.tiny import save_tiny_bert

    teacher = save_tiny_bert(tmp_path / "teacher", layers=4, hidden=32, heads=4, ffn=64)
    r = parse_recipe({"model": str(teacher), "task": "sst2", "steps": [
        {"finetune": {"epochs": 1, "lr": 1e-3}},
        {"distill": {"student_layers": 2, "student_ffn": 32, "stages": ["general", "task"], "general_limit": 64,
                     "general_epochs": 1, "task_epochs": 1, "general_minutes": 1, "task_minutes": 1}},
        {"prune": {"heads": 0.5, "recover_minutes": 0.05}},
        {"export": {"targets": ["onnx"], "seq_len": 16, "validate_n": 8}},
        {"quantize": {"scheme": "dynamic"}},
        {"profile": {"hardware": ["raspberry-pi-5"], "seq_len": 16, "deadline_ms": 50, "measure": False}},
    ]})
    lineage = run_recipe(r, tmp_path / "run", quiet=True)
    assert [s["step"] for s in lineage] == ["source", "finetune", "distill", "prune", "export", "quantize",
                                            "profile"]
    for parent, child in zip(lineage[:-2], lineage[1:-1]):
        assert child["parent"] == parent["hash"]
    distilled, pruned, final = lineage[2]["metrics"], lineage[3]["metrics"], lineage[6]["metrics"]
    assert distilled["distill"]["layer_map"] == [0, 3] and distilled["distill"]["ratio"] > 1
    assert pruned["prune"]["after"]["params"] < pruned["prune"]["before"]["params"]
    # the quantized ONNX model carries the shape (config.json), so it is profiled like the HF model
    prof = final["profile"]
    assert prof["format"] == "onnx" and prof["precision"] == "int8" and prof["cost"]["params"] > 0
    assert "raspberry-pi-5" in prof["hardware"]


def _folder_digest(folder) -> dict[str, str]:
    import hashlib
    from pathlib import Path

    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def test_analysis_steps_never_write_into_their_input(tiny_data, tiny_bert_dir, tmp_path):
    """eval and profile as the first steps: the source folder (think: an installed package) is byte-identical
    afterwards; their metrics live in the run folder and reach the next step in memory."""
    before = _folder_digest(tiny_bert_dir)
    r = parse_recipe({"model": str(tiny_bert_dir), "task": "sst2", "steps": [
        {"eval": {"batch_size": 8}},
        {"profile": {"hardware": ["raspberry-pi-5"], "seq_len": 16, "measure": False}},
        {"prune": {"heads": 0.5, "recover_minutes": 0}}]})
    lineage = run_recipe(r, tmp_path / "run", quiet=True)
    assert _folder_digest(tiny_bert_dir) == before
    saved = json.loads((tmp_path / "run" / "01-eval" / "metrics.json").read_text())
    assert saved["metrics"]["sst2/dev"]["eval"]["n"] == 32 and saved["model_hash"] == lineage[0]["hash"]
    assert "profile" in json.loads((tmp_path / "run" / "02-profile" / "metrics.json").read_text())["metrics"]
    assert "sst2/dev" in lineage[2]["metrics"] and lineage[3]["parent"] == lineage[0]["hash"]
    again = run_recipe(r, tmp_path / "run", quiet=True)
    assert [s.get("cached") for s in again[1:]] == [True, True, True]
    assert again[1]["metrics"]["sst2/dev"] == lineage[1]["metrics"]["sst2/dev"]
    assert _folder_digest(tiny_bert_dir) == before
