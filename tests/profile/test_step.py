"""The `profile` analysis step in a recipe: config validation and the recorded metric."""
import pytest

from edgeslim.errors import ConfigError, RecipeError


def test_config_validation():
    from edgeslim.profile.step import ProfileConfig

    assert ProfileConfig(hardware="raspberry-pi-5").hardware == ("raspberry-pi-5",)
    with pytest.raises(ConfigError, match="unknown hardware 'jetson'.*jetson-orin-nano"):
        ProfileConfig(hardware=("jetson",))
    with pytest.raises(ConfigError, match="deadline must be a positive"):
        ProfileConfig(deadline_ms=0)
    with pytest.raises(ConfigError, match="unknown precision 'int4'"):
        ProfileConfig(precision="int4")


def test_recipe_profile_step(tmp_path, tiny_bert_dir):
    import shutil

    from edgeslim.pipeline import run_recipe
    from edgeslim.recipe import parse_recipe

    tiny_bert_dir = shutil.copytree(tiny_bert_dir, tmp_path / "model")   # the step writes metrics into the manifest

    with pytest.raises(RecipeError, match="unknown option 'deadline'"):
        parse_recipe({"model": str(tiny_bert_dir), "steps": [{"profile": {"deadline": 5}}]})
    r = parse_recipe({"model": str(tiny_bert_dir), "steps": [
        {"profile": {"hardware": ["raspberry-pi-5", "snapdragon-8gen3-npu"], "seq_len": 16, "deadline_ms": 5,
                     "measure": False}}]})
    lineage = run_recipe(r, tmp_path / "run", quiet=True)
    prof = lineage[-1]["metrics"]["profile"]
    assert prof["measured"] is None and prof["seq_len"] == 16
    npu = prof["hardware"]["snapdragon-8gen3-npu"]
    assert npu["precision"] == "fp16" and "has no fp32" in npu["note"]     # no fp32 on the NPU
    assert prof["hardware"]["raspberry-pi-5"]["deadline"]["verdict"] in ("meets", "misses")
