"""Recipes are checked as a whole before any work: option types and ranges, step order (artifact formats), installed
extras, unknown keys and steps, top-level keys. Each failure exits 2 within 2 s with a message naming the step number
and name, the key, what it takes, the value given and the fix. Nothing here loads a model or trains."""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest

from edgeslim.cli import main
from edgeslim.recipe import load_recipe, parse_recipe
from edgeslim.registry import STEPS, field_default, matches, type_hints

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def fake_model(tmp_path) -> Path:
    """An HF-looking folder (config.json only): the checks read no weights, and a run that got past them would
    fail at once on loading instead of training."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    return folder


def run_fails(tmp_path: Path, capsys, text: str) -> str:
    """Write `text` as recipe.yaml, run it through the CLI and return the error line; exit 2 within 2 s, no work."""
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(text)
    out = tmp_path / "out"
    t0 = time.perf_counter()
    code = main(["run", str(recipe), "--out", str(out)])
    seconds = time.perf_counter() - t0
    err = capsys.readouterr().err
    assert code == 2, err
    assert seconds < 2, f"took {seconds:.2f} s"
    assert not out.exists(), "the run started before the recipe was checked"
    assert err.startswith(f"edgeslim: error: {recipe}: ") and len(err.strip().splitlines()) == 1
    return err


def test_wrong_type_is_reported_before_the_config_runs(tmp_path, capsys, fake_model):
    err = run_fails(tmp_path, capsys, f"model: {fake_model}\nsteps:\n  - eval: {{}}\n"
                                      "  - finetune: {epochs: 1, batch_size: 3.5}\n")
    assert "step 2 (finetune): option 'batch_size' must be an integer, got 3.5 (float); fix: e.g. batch_size: 32" \
        in err


def test_out_of_range_names_the_step_and_a_valid_value(tmp_path, capsys, fake_model):
    err = run_fails(tmp_path, capsys, f"model: {fake_model}\nsteps:\n  - eval: {{}}\n  - finetune: {{batch_size: 0}}\n")
    assert "step 2 (finetune): batch_size must be >= 1, got 0; fix: e.g. batch_size: 32" in err


def test_impossible_step_order_names_both_steps(tmp_path, capsys, fake_model):
    err = run_fails(tmp_path, capsys, f"model: {fake_model}\nsteps:\n  - finetune: {{epochs: 1}}\n"
                                      "  - export.onnx: {}\n  - eval: {}\n  - prune: {heads: 0.5}\n")
    assert ("step 4 (prune) takes an hf (PyTorch) model, but step 2 (export.onnx) produces onnx; "
            "fix: move prune before export.onnx") in err


def test_source_artifact_format_comes_from_its_manifest(tmp_path, capsys):
    exported = tmp_path / "exported"
    exported.mkdir()
    (exported / "edgeslim.json").write_text(json.dumps({"format": "onnx", "task": "sst2"}))
    err = run_fails(tmp_path, capsys, f"model: {exported}\nsteps:\n  - quantize: {{scheme: dynamic}}\n"
                                      "  - distill: {}\n")
    assert "step 2 (distill) takes an hf (PyTorch) model, but the source model" in err and "is onnx; fix:" in err


def test_unknown_option_suggests_the_close_match(tmp_path, capsys, fake_model):
    err = run_fails(tmp_path, capsys, f"model: {fake_model}\nsteps:\n  - finetune: {{max_minute: 3}}\n")
    assert "step 1 (finetune): unknown option 'max_minute'. Did you mean 'max_minutes'" in err


def test_unknown_step_suggests_the_close_match(tmp_path, capsys, fake_model):
    err = run_fails(tmp_path, capsys, f"model: {fake_model}\nsteps:\n  - eval: {{}}\n  - finetun: {{epochs: 1}}\n")
    assert "step 2: unknown step 'finetun'. Did you mean 'finetune'?" in err


def test_missing_extra_names_the_pip_extra(tmp_path, capsys, fake_model, monkeypatch):
    monkeypatch.setattr("edgeslim.registry.backend_installed", lambda module: module != "coremltools")
    err = run_fails(tmp_path, capsys, f"model: {fake_model}\nsteps:\n  - eval: {{}}\n"
                                      "  - export: {targets: [onnx, coreml]}\n")
    assert "step 2 (export) needs coremltools, which is not installed; fix: pip install 'edgeslim[coreml]'" in err


@pytest.mark.parametrize("line, expected", [
    ('seed: "x"', "key 'seed' must be an integer, got 'x' (str); fix: e.g. seed: 0"),
    ("threads: 0", "threads must be >= 1 (CPU threads each step uses), got 0; fix: e.g. threads: 2"),
    ("stesp: []", "unknown key 'stesp'. Did you mean 'steps'"),
])
def test_bad_top_level_key_or_value(tmp_path, capsys, fake_model, line, expected):
    err = run_fails(tmp_path, capsys, f"model: {fake_model}\n{line}\nsteps:\n  - eval: {{}}\n")
    assert expected in err


def test_demo_recipe_parses():
    r = load_recipe(REPO / "recipes" / "six-steps.yaml")
    assert [s.name for s in r.steps] == ["finetune", "eval", "profile", "distill", "prune", "export", "quantize",
                                         "profile"]
    assert r.steps[5].config.targets == ("onnx", "litert", "executorch", "coreml") and r.steps[6].config.max_drop == 0.5
    assert r.steps[2].config.hardware == ("jetson-orin-nano", "raspberry-pi-5", "snapdragon-8gen3-cpu")


def test_string_forms_a_field_parses_are_accepted(fake_model):
    r = parse_recipe({"model": str(fake_model), "steps": [
        {"distill": {"stages": "task", "task_losses": "kl=1,ce=0.5", "student_layers": [0, 1]}},
        {"profile": {"hardware": "raspberry-pi-5", "deadline_ms": 50}},
        {"export": {"targets": "onnx,litert", "precisions": "fp32"}},
        {"quantize": {"max_drop": "1%", "mixed_k": [2, 4]}}]})
    distill, profile, export, quantize = (s.config for s in r.steps)
    assert distill.stages == ("task",) and distill.task_losses == {"kl": 1.0, "ce": 0.5}
    assert distill.student_layers == (0, 1) and profile.hardware == ("raspberry-pi-5",)
    assert export.targets == ("onnx", "litert") and quantize.max_drop == "1%" and quantize.mixed_k == (2, 4)


@pytest.mark.parametrize("value, hint, ok", [
    (3, float, True), (True, float, False), (True, int, False), (1, bool, False), (3.0, int, False),
    (None, int | None, True), ([1, 2], tuple[int, ...], True), ([1, "a"], tuple[int, ...], False),
    ([1, 2], int | tuple[int, ...] | None, True), ({"kl": 1}, dict[str, float], True),
    ({"kl": "x"}, dict[str, float], False), ("x", dict[str, float] | str, True),
])
def test_type_rules(value, hint, ok):
    assert matches(value, hint) is ok


@pytest.mark.parametrize("name", STEPS.names())
def test_every_step_default_fits_its_annotation(name):
    """The annotations are what recipes are checked against: each default must pass them (catches drift)."""
    cls = STEPS.get(name).config_cls
    hints = type_hints(cls)
    for f in dataclasses.fields(cls):
        default = field_default(f)
        if default is not dataclasses.MISSING:
            assert matches(default, hints[f.name]), f"{name}.{f.name}: default {default!r} vs {hints[f.name]}"


@pytest.mark.parametrize("path", sorted((REPO / "recipes").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_recipe_passes_the_whole_recipe_checks(path):
    """recipes/*.yaml (the hand-written one and the ones `edgeslim optimize` wrote) stay runnable as the code moves."""
    r = load_recipe(path)
    assert r.steps and r.task
    if path.stem in ("sst2", "mrpc", "cola"):   # written by optimize: the six steps end in validate
        assert r.task == path.stem and r.steps[-1].name == "validate" and "distill" in [s.name for s in r.steps]
