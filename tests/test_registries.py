"""Tests driven by the registries (timm style): every registered step, runtime, task and hardware profile is
exercised without a test of its own, so a new module that registers one is tested the moment it exists."""
from __future__ import annotations


import numpy as np
import pytest

from edgeslim.artifact import ModelArtifact
from edgeslim.registry import STEPS

from .conftest import REAL_DATA, TinySteps

# Tiny, fast options per registered step. A step registered without an entry here fails
# test_every_step_has_tiny_options, so no step goes untested.
TINY = {"seq_len": 16, "validate_n": 16}
STEP_OPTIONS: dict[str, dict] = {
    "finetune": {"epochs": 1, "batch_size": 16, "lr": 1e-3, "max_minutes": 1},
    "eval": {"batch_size": 16},
    "profile": {"hardware": ["raspberry-pi-5"], "seq_len": 16, "measure": False},
    "distill": {"student_layers": 1, "stages": ["task"], "task_epochs": 1, "task_minutes": 1, "max_length": 16},
    "prune": {"heads": 0.5, "recover_minutes": 0},
    "quantize": {"scheme": "dynamic"},
    "export": {"targets": ["onnx"], **TINY},
    "export.onnx": TINY,
    "export.litert": TINY,
    "export.executorch": TINY,
    "export.coreml": TINY,
    "validate": {"rounds": 1, "budget_s": 0.3, "batch_size": 8, "seq_len": 16, "calibrate": False,
                 "hardware": ["raspberry-pi-5"], "target": "raspberry-pi-5", "deadline_ms": 50},
}
TinySteps.OPTIONS.update(STEP_OPTIONS)


def test_every_step_has_tiny_options():
    assert sorted(STEP_OPTIONS) == STEPS.names()


@pytest.mark.parametrize("name", STEPS.names())
def test_every_step_returns_an_artifact_descending_from_its_input(name, tiny_steps):
    src = tiny_steps.src
    spec = STEPS.get(name)
    out = tiny_steps.run(name)
    assert isinstance(out, ModelArtifact)
    if spec.analysis:   # measures its input, which it returns unchanged (with metrics added in memory)
        assert out.content_hash == src.content_hash and out.path == src.path and len(out.metrics) > len(src.metrics)
    else:
        assert out.parent_hash == src.content_hash and out.content_hash != src.content_hash
        assert out.format == spec.output_format(spec.make_config(STEP_OPTIONS[name]), src.format)
        assert ModelArtifact.load(out.path).content_hash == out.content_hash   # manifest on disk agrees


def _target_of_format(fmt: str) -> str | None:
    from edgeslim.export.base import TARGETS

    return next((t for t in TARGETS.names() if TARGETS.get(t).format == fmt), None)


def _runtimes() -> list[str]:
    from edgeslim.runtime import RUNTIMES

    return RUNTIMES.names()


@pytest.mark.parametrize("fmt", _runtimes())
def test_every_runtime_runs_a_tiny_export_and_matches_pytorch(fmt, tiny_steps):
    """Each runtime loads the tiny model exported to its format and gives PyTorch's logits within 1e-4."""
    import torch

    from edgeslim.models.hf import load_model
    from edgeslim.runtime import load_forward
    from edgeslim.runtime.torch_rt import torch_forward

    src = tiny_steps.src
    if fmt == "hf":
        art = src
    else:
        target = _target_of_format(fmt)
        assert target is not None, f"runtime for {fmt!r} has no export target producing it"
        if fmt == "mlpackage":
            from edgeslim.runtime.coreml_rt import coreml_can_predict

            ok, why = coreml_can_predict()
            if not ok:
                pytest.skip(f"Core ML prediction cannot run here: {why}")
        art = tiny_steps.run(f"export.{target}")
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(5, 300, (2, 12), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    batch = {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}
    ref = torch_forward(load_model(src.path, "classification"))(batch)
    np.testing.assert_allclose(load_forward(art, 2)(batch), ref, atol=1e-4)


def _tasks() -> list[str]:
    from edgeslim.tasks import TASKS

    return TASKS.names()


@pytest.mark.realdata
@pytest.mark.parametrize("task", _tasks())
def test_every_task_reader_reads_its_real_files(task, monkeypatch):
    """Every split file a task names that exists in the real data directory parses into examples."""
    from edgeslim.settings import get_settings
    from edgeslim.tasks import TASKS

    monkeypatch.setenv("EDGESLIM_DATA", str(REAL_DATA))
    spec, s = TASKS.get(task), get_settings()
    present = [sp for sp, f in spec.files.items() if (s.data_dir / spec.folder / f).exists()]
    if not present:
        pytest.skip(f"{task}: no data files here ({spec.folder}; bring your own, see the README)")
    for split in present:
        examples = spec.load(split, s, limit=50)
        assert examples, f"{task} {split} is empty"


def _profiles() -> list[str]:
    from edgeslim.hardware import list_profiles

    return list_profiles()


@pytest.mark.parametrize("name", _profiles())
def test_every_hardware_profile_validates_and_predicts(name):
    from edgeslim.hardware import load_profile, predict_latency
    from edgeslim.models.tiny import tiny_bert_config

    from edgeslim.errors import HardwareError

    try:
        prof = load_profile(name)
    except HardwareError as exc:
        if name == "host" and "calibrate" in str(exc):
            pytest.skip(f"host is made on each machine by `edgeslim hw calibrate`: {exc}")
        raise
    pred = predict_latency(tiny_bert_config().to_dict(), prof.name, batch=1, seq_len=32, precision=prof.precisions[0])
    assert pred.latency_ms > 0 and np.isfinite(pred.latency_ms)
