"""benchmarks/run_all.py and benchmarks/_common.py: teacher resolution, reuse of prerequisites, the job plan, and the
runner's keep-going behaviour (tiny commands only; no model is loaded)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import _common  # noqa: E402
import run_all  # noqa: E402


def artifact(folder: Path, content_hash: str, parent_hash: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "edgeslim.json").write_text(json.dumps({"content_hash": content_hash, "parent_hash": parent_hash}))
    return folder


def setup(root: Path, teacher: Path, **kw) -> run_all.Setup:
    opt = kw.pop("optimum_python", root / ".venv-optimum" / "bin" / "python")
    return run_all.Setup(root=root, teacher=teacher, python="py", edgeslim="es", optimum_python=opt,
                         optimum_given=kw.pop("optimum_given", False), **kw)


def test_default_teacher_order(tmp_path):
    assert _common.default_teacher(tmp_path, {}) == tmp_path / "runs/demo/01-finetune"
    artifact(tmp_path / "runs/teacher-sst2", "t")
    assert _common.default_teacher(tmp_path, {}) == tmp_path / "runs/teacher-sst2"
    env = {"EDGESLIM_BENCH_TEACHER": str(tmp_path / "mine")}
    assert _common.default_teacher(tmp_path, env) == tmp_path / "mine"


def test_missing_teacher_names_both_and_make_demo(tmp_path):
    with pytest.raises(SystemExit) as exc:
        _common.resolve_teacher(None, tmp_path, {})
    msg = str(exc.value)
    assert "runs/teacher-sst2" in msg and "runs/demo/01-finetune" in msg and "make demo" in msg
    artifact(tmp_path / "runs/demo/01-finetune", "t")
    assert _common.resolve_teacher(None, tmp_path, {}) == tmp_path / "runs/demo/01-finetune"


def test_slug_only_and_seconds(tmp_path):
    assert run_all.teacher_slug(tmp_path / "runs/teacher-sst2", tmp_path) == "teacher-sst2"
    assert run_all.teacher_slug(tmp_path / "runs/demo/01-finetune", tmp_path) == "demo-01-finetune"
    assert run_all.teacher_slug(Path("/elsewhere/t1"), tmp_path) == "t1"
    assert run_all.parse_only(None) == list(run_all.BENCHES)
    assert run_all.parse_only("quantize, prune") == ["prune", "quantize"]
    with pytest.raises(ValueError, match="choose from profile"):
        run_all.parse_only("prune,bogus")
    assert [run_all.fmt_seconds(s) for s in (42, 125, 3725)] == ["42s", "2m 05s", "1h 02m"]


def test_plan_reuses_prerequisites_of_this_teacher_only(tmp_path):
    teacher = artifact(tmp_path / "runs/teacher-sst2", "T1")
    work = tmp_path / "runs/bench/teacher-sst2"
    artifact(work / "prune-h50-f50", "p", parent_hash="T1")            # built from this teacher: reused
    artifact(work / "export", "e", parent_hash="OTHER")                  # another teacher's: rebuilt
    artifact(tmp_path / "runs/distill/A-2stage", "d", parent_hash="T1")
    artifact(tmp_path / "runs/distill/B-2stage", "d", parent_hash="OTHER")  # never overwritten
    plans = {p.name: p for p in run_all.plan_all(setup(tmp_path, teacher), list(run_all.BENCHES))}

    assert [j.kind for j in plans["profile"].jobs] == ["bench"]
    prune = plans["prune"]
    assert prune.reused == ["runs/bench/teacher-sst2/prune-h50-f50"] and [j.kind for j in prune.jobs] == ["bench"]
    assert prune.jobs[0].cmd[-2:] == ["--pruned", "runs/bench/teacher-sst2/prune-h50-f50"]
    export = plans["export"]
    assert [j.kind for j in export.jobs] == ["build", "bench"]
    assert export.jobs[0].cmd[:5] == ["es", "export", "--model", "runs/teacher-sst2", "--targets"]
    assert "--keep-going" in export.jobs[0].cmd and export.jobs[0].makes == "runs/bench/teacher-sst2/export"
    quant = plans["quantize"]
    assert [j.cmd[1] for j in quant.jobs[:1]] == ["-m"] and quant.jobs[0].cmd[2] == "venv"
    assert quant.jobs[-2].cmd[:3] == ["es", "quantize", "--model"] and "--dev-all" in quant.jobs[-2].cmd
    distill = plans["distill"]
    runs = [j.cmd[-1] for j in distill.jobs if j.cmd[-2] == "run"]
    assert "A-2stage" not in runs and "B-2stage" not in runs and len(runs) == len(run_all.DISTILL_RUNS) - 2
    assert "another teacher" in distill.reused[1]
    assert distill.jobs[-1].cmd[-1] == "table" and distill.jobs[-1].lock is False


def test_optimum_venv_plan(tmp_path):
    teacher = artifact(tmp_path / "t", "T1")
    given = run_all.plan_quantize(setup(tmp_path, teacher, optimum_python=tmp_path / "nope/python",
                                        optimum_given=True))
    assert given.error and "nope/python" in given.error
    venv = tmp_path / ".venv-optimum"
    fresh = run_all.plan_quantize(setup(tmp_path, teacher))
    pip = [j for j in fresh.jobs if "pip" in j.cmd]
    assert pip[0].cmd[-1] == "torch==2.13.0"                             # torch alone first: keeps the CPU build
    assert "optimum[onnxruntime]==2.1.0" in pip[1].cmd and pip[1].stamp[0] == venv / ".edgeslim-optimum-installed"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin/python").write_text("")
    (venv / ".edgeslim-optimum-installed").write_text(run_all.optimum_pins())
    ready = run_all.plan_quantize(setup(tmp_path, teacher))
    assert not [j for j in ready.jobs if "pip" in j.cmd or "venv" in j.cmd]
    assert ready.reused[0] == ".venv-optimum (Optimum venv)"


def test_runner_keeps_going_and_dry_run_runs_nothing(tmp_path, capsys):
    py = sys.executable
    mark = tmp_path / "ran"
    stamp = tmp_path / "stamp"
    plans = [run_all.BenchPlan("a", [run_all.Job("build", [py, "-c", "raise SystemExit(3)"], makes="x"),
                                     run_all.Job("bench", [py, "-c", f"open({str(mark)!r}, 'w')"])]),
             run_all.BenchPlan("b", [run_all.Job("build", [py, "-c", "pass"], makes="y", stamp=(stamp, "pins")),
                                     run_all.Job("bench", [py, "-c", "pass"])]),
             run_all.BenchPlan("c", error="no Optimum Python")]
    dry = run_all.run_plans(plans, tmp_path, [], {}, dry_run=True)
    assert [r["status"] for r in dry] == ["planned", "planned", "failed"] and not stamp.exists()
    res = run_all.run_plans(plans, tmp_path, [], {}, dry_run=False)
    assert [r["status"] for r in res] == ["failed", "ok", "failed"]
    assert not mark.exists()                       # the failed build stopped bench a
    assert res[0]["failed"][0].startswith("exit 3") and stamp.read_text() == "pins"
    assert res[1]["built"][0].startswith("y (")
    text = run_all.summary(res, dry_run=False)
    assert "a: exit 3" in text and "c: no Optimum Python" in text
