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
    with pytest.raises(RecipeError, match="step 1: step 'finetune': unknown option 'max_minute'.*'max_minutes'"):
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
