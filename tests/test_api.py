"""The Python API (edgeslim.api): a step chain with lineage, recipe-identical option checks, analysis steps that
never write into their input, and an `import edgeslim` that stays light."""
from __future__ import annotations

import hashlib
import json
import pydoc
import re
import subprocess
import sys
from pathlib import Path

import pytest

import edgeslim as es
from edgeslim.errors import ConfigError, RecipeError
from edgeslim.recipe import parse_recipe


@pytest.fixture
def runs(tmp_path, monkeypatch) -> Path:
    """Default outputs (runs/api/...) go under a temporary runs folder."""
    monkeypatch.setenv("EDGESLIM_RUNS", str(tmp_path / "runs"))
    return tmp_path / "runs"


def folder_digest(folder: Path) -> dict[str, str]:
    """sha256 of every file in `folder`, the manifest included."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def test_chain_records_lineage_and_analysis_writes_nothing(tiny_bert_dir, tiny_data, runs):
    src = es.load(tiny_bert_dir)
    assert src.content_hash and src.format == "hf"

    metrics = es.evaluate(src, task="sst2", limit=16)
    assert 0.0 <= metrics["accuracy"] <= 1.0 and metrics["eval"]["n"] == 16

    pruned = es.prune(src, task="sst2", heads=0.5, recover_minutes=0, eval=False, calib_samples=32)
    assert pruned.parent_hash == src.content_hash and pruned.step == "prune" and pruned.task == "sst2"
    assert Path(pruned.path).parent == runs / "api" and Path(pruned.path).name.startswith(f"prune-{src.short_hash}-")

    before = folder_digest(pruned.path)
    again = es.evaluate(pruned.path, split="dev", limit=8)       # a folder path works too; task from its manifest
    report = es.profile(pruned, hardware=["raspberry-pi-5"], measure=False)
    assert folder_digest(pruned.path) == before
    assert "accuracy" in again and report["hardware"]["raspberry-pi-5"]["latency_ms"] > 0

    bundle = es.export(pruned, targets=["onnx"], precisions=["fp32"], seq_len=16, validate_n=4, eval_split=None)
    assert bundle.parent_hash == pruned.content_hash and bundle.format == "onnx"


def recipe_error(step: str, options: dict) -> str:
    with pytest.raises(RecipeError) as exc:
        parse_recipe({"model": "minilm-l6", "steps": [{step: options}]})
    return str(exc.value)


@pytest.mark.parametrize("call, step, options, hint", [
    (lambda: es.prune("no/such/model", head=0.5), "prune", {"head": 0.5}, "Did you mean 'heads'"),
    (lambda: es.quantize("no/such/model", max_dop=1), "quantize", {"max_dop": 1}, "Did you mean 'max_drop'"),
    (lambda: es.prune("no/such/model", heads=1.5), "prune", {"heads": 1.5}, "heads"),
    (lambda: es.export("no/such/model", targets=["onx"]), "export", {"targets": ["onx"]}, "Did you mean 'onnx'"),
    (lambda: es.profile("no/such/model", batch=0), "profile", {"batch": 0}, "batch must be >= 1"),
])
def test_options_fail_exactly_like_a_recipe_before_the_model_is_read(call, step, options, hint):
    with pytest.raises(ConfigError) as exc:
        call()
    message = str(exc.value)
    assert hint in message
    where, body = message.split(": ", 1)          # "step 'prune': unknown option 'head'. Did you mean ..."
    assert where == f"step {step!r}" and recipe_error(step, options).endswith(": " + body)


def test_run_step_and_steps():
    assert es.steps() == es.STEPS.names() and {"prune", "eval", "export.onnx"} <= set(es.steps())
    with pytest.raises(ConfigError, match="Did you mean 'prune'"):
        es.run_step("prun", "no/such/model")


def test_evaluate_needs_a_task(tiny_bert_dir, tiny_data):
    with pytest.raises(ConfigError, match="records no task"):
        es.evaluate(tiny_bert_dir)


def test_run_recipe_from_a_mapping(tiny_bert_dir, tiny_data, tmp_path):
    lineage = es.run_recipe({"model": str(tiny_bert_dir), "task": "sst2", "steps": [{"eval": {"limit": 8}}]},
                            out=tmp_path / "run")
    assert [r["step"] for r in lineage] == ["source", "eval"]
    assert json.loads((tmp_path / "run" / "lineage.json").read_text())[1]["step"] == "eval"


def test_step_functions_keep_their_subpackages_reachable():
    """es.prune is the function even after edgeslim/prune/ is imported, and still reaches that package."""
    import edgeslim.distill.train as train
    import edgeslim.prune.step
    from edgeslim import api

    assert es.prune is api.prune and es.evaluate is api.evaluate and callable(es.export)
    assert es.prune.step is edgeslim.prune.step and train.__name__ == "edgeslim.distill.train"
    assert set(es._API) == set(api.__all__)
    text = pydoc.render_doc(es.quantize, renderer=pydoc.plaintext)
    assert "quantize(model" in text and "scheme: str = 'auto'" in text
    assert re.search(r"max_drop: .+ = 0\.5  # auto: metric points", text)   # type, default and the source comment


def test_import_edgeslim_stays_light():
    code = "import sys, json, edgeslim; edgeslim.ModelArtifact; print(json.dumps(sorted(sys.modules)))"
    mods = set(json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                         check=True).stdout))
    heavy = {"torch", "onnxruntime", "transformers", "typer"} & mods
    assert not heavy, f"heavy modules imported: {heavy}"
    assert "edgeslim.api" not in mods   # the API loads on first use
