"""`edgeslim optimize` end to end on a tiny BERT and synthetic SST-2: plan, run, validate, outcome, exit codes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ..conftest import write_sst2


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory):
    from edgeslim.models.tiny import save_tiny_bert

    root = tmp_path_factory.mktemp("optimize")
    write_sst2(root / "data" / "glue" / "SST-2", n_train=96, n_dev=32)
    model = save_tiny_bert(root / "bert", layers=2)
    env = {**os.environ, "EDGESLIM_DATA": str(root / "data"), "EDGESLIM_RUNS": str(root / "runs")}
    return root, model, env


def cli(env, *args, timeout=900):
    return subprocess.run([sys.executable, "-m", "edgeslim", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def goal_args(model, out, deadline="50", drop="100", extra=()):
    return ["optimize", "--model", str(model), "--task", "sst2", "--target", "raspberry-pi-5", "--deadline-ms",
            deadline, "--max-drop", drop, "--budget-minutes", "3", "--quick", "--out", str(out), *extra]


def test_impossible_goal_exits_2_before_training_and_writes_nothing(tiny_world):
    root, model, env = tiny_world
    out = root / "impossible"
    r = cli(env, *goal_args(model, out, deadline="0.0001", drop="0"))
    assert r.returncode == 2, r.stderr
    assert "deadline" in r.stderr and "predicted at" in r.stderr and "over the 0.0001 ms deadline" in r.stderr
    assert not out.exists()


def test_plan_only_writes_a_recipe_that_edgeslim_run_accepts(tiny_world):
    root, model, env = tiny_world
    out = root / "plan"
    r = cli(env, *goal_args(model, out, extra=["--plan-only", "--json"]))
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["outcome"]["status"] == "planned"
    recipe = yaml.safe_load((out / "recipe.yaml").read_text())
    names = [next(iter(s)) for s in recipe["steps"]]
    assert names[0] == "finetune" and names[-1] == "validate" and "distill" in names and "quantize" in names
    chosen = res["plan"]["chosen"]
    assert chosen["fits"] and chosen["predicted_ms"] <= 50
    # every candidate that fits has at most the chosen one's encoder parameters (the rule)
    assert all(c["core_params"] <= chosen["core_params"] for c in res["plan"]["candidates"] if c["fits"])


@pytest.fixture(scope="module")
def tiny_run(tiny_world):
    root, model, env = tiny_world
    out = root / "run"
    r = cli(env, *goal_args(model, out, extra=["--json"]))
    return out, r


def test_optimize_runs_the_six_steps_and_validates(tiny_run):
    out, r = tiny_run
    assert r.returncode in (0, 1), r.stderr[-3000:]
    res = json.loads(r.stdout)
    lineage = json.loads((out / "lineage.json").read_text())
    steps = [rec["step"] for rec in lineage]
    assert steps[:2] == ["source", "finetune"] and steps[-1] == "validate"
    v = lineage[-1]["metrics"]["validate"]
    assert v["final"]["format"] == "onnx" and v["final"]["precision"].startswith("int8")
    assert v["examples"] == 32 and v["split"] == "dev"
    assert set(v["latency"]["models"]) == {"final", "teacher-pytorch", "teacher-onnxruntime"}
    assert v["predictor_error"]["rows"] and "raspberry-pi-5" in v["predicted"]
    # the outcome is computed from the validate numbers, constraint by constraint
    checks = {c["constraint"]: c for c in res["outcome"]["checks"]}
    assert checks["max_drop"]["value"] == v["ratios"]["drop_points"]
    assert checks["deadline_ms"]["value"] == v["deadline"]["latency_ms"]
    assert (r.returncode == 0) == (res["outcome"]["status"] == "met")
    saved = json.loads((out / "optimize.json").read_text())
    assert saved["outcome"] == res["outcome"]


def test_missed_goal_exits_1_and_names_the_constraint(tiny_world, tiny_run):
    root, model, env = tiny_world
    out, _ = tiny_run
    # the same run folder, a size limit the tiny model cannot meet after the fact: every step is reused
    v = json.loads((out / "lineage.json").read_text())[-1]["metrics"]["validate"]
    size_mb = v["final"]["size_bytes"] / 1e6
    r = cli(env, *goal_args(model, out, extra=["--max-size-mb", f"{size_mb * 0.5:.6f}"]))
    # the planner's size estimate may already rule it out (exit 2) or the run misses it (exit 1)
    assert r.returncode in (1, 2), r.stdout + r.stderr
    text = r.stdout + r.stderr
    assert "size" in text
    if r.returncode == 1:
        assert "goal missed: max_size_mb" in r.stdout


def test_recipe_reproduces_the_run_from_cache(tiny_world, tiny_run):
    root, model, env = tiny_world
    out, _ = tiny_run
    r = cli(env, "run", str(out / "recipe.yaml"), "--out", str(out), "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    lineage = json.loads(r.stdout)["lineage"]
    assert all(rec["cached"] for rec in lineage[1:])
