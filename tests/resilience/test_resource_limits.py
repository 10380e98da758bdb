"""Resource limits (issue #19, part 4): not enough disk or memory is a ResourceError before work where it can be
predicted, and a write that fails mid-way (disk full) leaves no partial artifact and no temp files."""
from __future__ import annotations

import errno
import os
import resource
import shutil
import subprocess
import sys
from collections import namedtuple

import pytest

from edgeslim.artifact import ModelArtifact
from edgeslim.errors import ResourceError
from edgeslim.fileio import atomic_dir, atomic_path

Usage = namedtuple("Usage", "total used free")
PRUNE = {"heads": 0.5, "recover_minutes": 0, "eval": False}


def _run_step(name, art, out, options):
    from edgeslim.context import RunContext
    from edgeslim.registry import STEPS

    spec = STEPS.get(name)
    return spec.fn(art, spec.make_config(options), RunContext(out_dir=out, task="sst2", quiet=True))


@pytest.mark.parametrize("name,options", [("finetune", {"epochs": 1}), ("prune", PRUNE),
                                          ("export", {"targets": ["onnx"]}), ("quantize", {"scheme": "dynamic"})])
def test_too_little_disk_fails_before_any_work(name, options, tmp_path, tiny_bert_dir, tiny_data, monkeypatch):
    """shutil.disk_usage is patched (a size-limited folder needs root to mount); the step must not start."""
    art = ModelArtifact.load(tiny_bert_dir)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: Usage(10**9, 10**9 - 1000, 1000))
    from edgeslim.models import hf

    monkeypatch.setattr(hf, "load_model", lambda *a, **k: pytest.fail("the step started work"))
    with pytest.raises(ResourceError, match=rf"step '{name}': not enough disk space .* needs about .* MB, 0.0 MB free"):
        _run_step(name, art, tmp_path / "out", options)
    assert not (tmp_path / "out").exists()


def test_disk_estimate_scales_with_the_export_plan(tiny_bert_dir):
    from edgeslim.registry import STEPS

    art = ModelArtifact.load(tiny_bert_dir)
    spec = STEPS.get("export")
    one = spec.disk_need(art, spec.make_config({"targets": ["onnx"], "precisions": ["fp32"]}))
    two = spec.disk_need(art, spec.make_config({"targets": ["onnx"]}))    # fp32 + int8
    assert one == 2 * art.size_bytes and two == 3 * art.size_bytes
    assert STEPS.get("finetune").disk_need(art, STEPS.get("finetune").make_config({})) == 7 * art.size_bytes


def test_disk_full_mid_write_leaves_no_partial_artifact_and_keeps_the_old_one(tmp_path, tiny_bert_dir, tiny_data,
                                                                             monkeypatch):
    from edgeslim.models import hf

    art = ModelArtifact.load(tiny_bert_dir)
    out = tmp_path / "out"
    old = _run_step("prune", art, out, PRUNE)
    real_save = hf.save_model

    def save_then_disk_full(model, folder, tok=None):
        real_save(model, folder, tok)                       # the weights are written, then the disk fills
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(hf, "save_model", save_then_disk_full)
    with pytest.raises(ResourceError, match=rf"out of disk space while writing {out}"):
        _run_step("prune", art, out, {**PRUNE, "heads": 0.25})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "out"]      # no temp folder left
    assert ModelArtifact.load(out, verify=True).content_hash == old.content_hash  # the old artifact is intact


def test_real_file_size_limit_fails_cleanly_through_the_cli(tmp_path, tiny_bert_dir, tiny_data):
    """RLIMIT_FSIZE (no root needed) makes every write past 64 KB fail with EFBIG, as a full disk would."""
    out = tmp_path / "pruned"
    env = {**os.environ, "EDGESLIM_DATA": str(tiny_data)}

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, resource.RLIM_INFINITY))

    p = subprocess.run([sys.executable, "-m", "edgeslim", "-q", "prune", "--model", str(tiny_bert_dir), "--task",
                        "sst2", "--heads", "0.5", "--out", str(out)], env=env, preexec_fn=limit,
                       capture_output=True, text=True, timeout=120, check=False)
    assert p.returncode == 2, p.stderr[-2000:]
    assert "out of disk space while writing" in p.stderr and "Traceback" not in p.stderr
    assert list(tmp_path.glob("*pruned*")) == []                             # nothing half-written


def test_stale_temps_of_a_killed_writer_are_removed_live_ones_kept(tmp_path):
    target = tmp_path / "out"
    dead = tmp_path / ".out.999999999.abc.tmp"       # pid beyond pid_max: certainly not running
    dead.mkdir()
    (tmp_path / ".out.old").mkdir()
    live = tmp_path / f".out.{os.getpid()}.xyz.tmp"
    live.mkdir()
    with atomic_dir(target) as tmp:
        (tmp / "a").write_text("1")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out", live.name])
    (tmp_path / ".f.txt.999999999.q.tmp").write_text("half")
    with atomic_path(tmp_path / "f.txt") as tmp:
        tmp.write_text("whole")
    assert not (tmp_path / ".f.txt.999999999.q.tmp").exists() and (tmp_path / "f.txt").read_text() == "whole"


def test_training_that_cannot_fit_fails_before_the_first_step(monkeypatch):
    import torch

    from edgeslim.training import memory
    from edgeslim.training.loop import LoopConfig, train_loop

    net = torch.nn.Linear(100, 10)
    monkeypatch.setattr(memory, "available_memory", lambda: 1000)
    with pytest.raises(ResourceError, match=r"will not fit in memory: .*1,010 trainable parameters.* batch of 4 x 7"):
        train_loop(net.named_parameters(), [7] * 8, lambda b: pytest.fail("a step ran"), LoopConfig(lr=1e-3,
                   batch_size=4), modules={"net": net})


def test_memory_estimate_matches_the_formula():
    from types import SimpleNamespace

    from edgeslim.training.memory import estimate_training_memory

    cfg = SimpleNamespace(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536)
    est = estimate_training_memory(22_000_000, 32, 128, cfg)
    assert est.optimizer_bytes == 3 * 4 * 22_000_000
    assert est.activation_bytes == 4 * 32 * 128 * 6 * (16 * 384 + 2 * 1536 + 3 * 12 * 128)   # 1.36 GB
