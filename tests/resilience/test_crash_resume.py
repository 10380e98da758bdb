"""Crash safety (issue #19, part 2): the real CLI (`edgeslim run`) killed with SIGKILL at points of its long
steps and re-run resumes without redoing finished work, leaves nothing corrupt or temporary behind, and ends with
the same artifact hashes as an uninterrupted run. The full matrix (every kill point, one fresh run each) is
`python -m tests.resilience.crash_harness`; this test kills one shorter run (fine-tune, export) once, as the table's row 4."""
from __future__ import annotations

import pytest

from .crash_harness import KillPoint, Workspace, appeared, check_artifacts, recipe, run_with_kills

# fine-tune (10 steps, a checkpoint after each) -> export onnx fp32 + int8, killed while the fine-tuned model is being
# written: the re-run must take the finished training from its checkpoint, not train again, and still end with the
# same bytes (this kill point once gave another config.json). Training resumed mid-way is tests/training/test_loop.py.
KILL = KillPoint("finetune: mid artifact write", "finetune", appeared(".01-finetune.*.tmp"), True)


@pytest.mark.slow
def test_killed_run_resumes_to_identical_artifacts(tmp_path):
    steps = recipe(tmp_path, distill=False)["steps"]
    ws = Workspace(tmp_path, steps=[steps[0], steps[2]])
    reference = ws.start(tmp_path / "reference", tmp_path / "reference.log")   # in parallel with the killed run
    res = run_with_kills(ws, tmp_path / "killed", [KILL])
    assert reference.wait(300) == 0, (tmp_path / "reference.log").read_text()[-3000:]
    assert res.exit_code == 0, res.log[-3000:]
    assert all(res.killed.values()), res.killed
    assert res.leftovers == []
    check_artifacts(tmp_path / "killed", tmp_path / "reference", res)
    assert res.verified
    assert res.same_hash == {"finetune": True, "export": True}
    assert res.resumed_steps == ["finetune"]                         # training taken from its checkpoint
    assert "finetune sst2: finished" not in res.log.split("=== killed at")[1]   # no training step ran again


def test_step_killed_before_its_key_stamp_is_adopted_not_redone(tmp_path):
    """A step whose artifact was complete when the process died (before the pipeline stamped its key) is reused;
    an artifact older than the pending note (or made from another source) is not."""
    import json
    import time

    from edgeslim.artifact import ModelArtifact
    from edgeslim.fileio import write_json
    from edgeslim.pipeline import cached_output, pending_file

    def model(folder, payload):
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")
        (folder / "w.bin").write_bytes(payload)
        return folder

    src = ModelArtifact.create(model(tmp_path / "src", b"a"), "hf")
    other = ModelArtifact.create(model(tmp_path / "other", b"b"), "hf")
    folder = tmp_path / "run" / "01-finetune"
    write_json(pending_file(folder), {"run_key": "k1", "step": "finetune", "started": time.time()})
    ModelArtifact.create(model(folder, b"out"), "hf", parent=src, step="finetune")
    assert cached_output(folder, "k1", other) is None          # made from another source
    assert cached_output(folder, "k2", src) is None            # another key
    art = cached_output(folder, "k1", src)
    assert art is not None and art.extra["run_key"] == "k1" and not pending_file(folder).exists()
    assert json.loads((folder / "edgeslim.json").read_text())["extra"]["run_key"] == "k1"

    stale = tmp_path / "run" / "02-prune"
    ModelArtifact.create(model(stale, b"old"), "hf", parent=src, step="prune")
    write_json(pending_file(stale), {"run_key": "k3", "step": "prune", "started": time.time() + 1})
    assert cached_output(stale, "k3", src) is None             # older than the note: not this run's output
