"""Real tiny run folders for the report tests: one recipe (eval, profile, prune, quantize search, profile, validate)
on a tiny BERT with synthetic SST-2, run once per session; a plain copy without validate, and a minimal copy that
stopped after its first step."""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import yaml

from ..conftest import write_sst2

PROFILE = {"hardware": ["raspberry-pi-5"], "seq_len": 16, "measure": True}
STEPS = [
    {"eval": {"batch_size": 16}},
    {"profile": PROFILE},
    {"prune": {"heads": 0.5, "recover_minutes": 0}},
    {"eval": {"batch_size": 16}},
    {"quantize": {"scheme": "auto", "max_drop": 100, "candidates": ["dynamic", "static-minmax"], "mixed_k": [2],
                  "calibration_size": 16, "screen_size": 24, "sensitivity_size": 24, "latency_seq_len": 16}},
    {"eval": {"batch_size": 16}},
    {"profile": {**PROFILE, "hardware": ["raspberry-pi-5", "jetson-orin-nano"]}},
]
# what the validate step is asked for (options its config does not have are dropped)
VALIDATE = {"hardware": ["raspberry-pi-5", "jetson-orin-nano"], "target": "raspberry-pi-5", "deadline_ms": 50,
            "seq_len": 16, "rounds": 3, "budget_s": 1.0, "batch_size": 8, "max_length": 32, "calibrate": True}


@dataclasses.dataclass(frozen=True)
class ReportRuns:
    full: Path          # every step, validate, recipe.yaml and an optimize.json whose goal was missed
    plain: Path         # the same run without validate, recipe.yaml or optimize.json
    minimal: Path       # stopped after its first step (an eval): no target hardware, no candidates beyond the input
    real_validate: bool


def validate_step() -> dict | None:
    """The validate step with the options its config knows, or None while it is not registered."""
    from edgeslim.registry import STEPS as REGISTRY

    if "validate" not in REGISTRY.names():
        return None
    fields = {f.name for f in dataclasses.fields(REGISTRY.get("validate").config_cls)}
    return {"validate": {k: v for k, v in VALIDATE.items() if k in fields}}


def stand_in_validate(run: Path, lineage: list[dict]) -> None:
    """Until the validate step exists: its metrics.json as the schema says, every figure taken from the run."""
    from edgeslim.artifact import folder_bytes

    def metrics(i: int) -> dict:
        return json.loads((run / f"{i:02d}-{lineage[i]['step']}" / "metrics.json").read_text())["metrics"]

    src, final = lineage[0], lineage[5]
    teacher_prof, final_prof = metrics(2)["profile"], metrics(7)["profile"]
    tm, fm = metrics(1)["sst2/dev"]["accuracy"], metrics(6)["sst2/dev"]["accuracy"]
    t_rt, f_rt = teacher_prof["measured"]["runtimes"], final_prof["measured"]["runtimes"]
    ts, fs = folder_bytes(src["path"]), folder_bytes(final["path"])
    tp, fp = teacher_prof["cost"]["params"], final_prof["cost"]["params"]
    pred = {name: {"label": "predicted", "precision": row["precision"], "latency_ms": row["latency_ms"],
                   "energy_mj": row["energy_mj"], "teacher_latency_ms": teacher_prof["hardware"]["raspberry-pi-5"][
                       "latency_ms"] if name == "raspberry-pi-5" else None}
            for name, row in final_prof["hardware"].items()}
    lat = {k: {"p50_ms": v["p50_ms"], "p95_ms": v["p95_ms"], "p99_ms": v["p99_ms"]} for k, v in
           {"final": f_rt["onnxruntime"], "teacher-pytorch": t_rt["pytorch"],
            "teacher-onnxruntime": t_rt["onnxruntime"]}.items()}
    validate = {
        "task": "sst2", "metric_name": "accuracy",
        "selection_note": "model selection used a validation split carved from the training data; dev is for "
                          "reporting only",
        "final": {"path": final["path"], "hash": final["hash"], "format": "onnx", "runtime": "onnxruntime",
                  "precision": "int8-dynamic", "size_bytes": fs, "params": fp, "metric_batch1": fm,
                  "metric_batch": fm, "batch_size": 16},
        "teacher": {"path": src["path"], "hash": src["hash"], "size_bytes": ts, "params": tp, "metric_batch1": tm},
        "latency": {"label": "measured", "batch": 1, "seq_len": 16, "threads": 2, "rounds": 5, "iters": 50,
                    "models": lat, "speedup": {"vs_teacher_pytorch": round(lat["teacher-pytorch"]["p50_ms"] /
                                                                           lat["final"]["p50_ms"], 3),
                                               "vs_teacher_onnxruntime": round(lat["teacher-onnxruntime"]["p50_ms"] /
                                                                               lat["final"]["p50_ms"], 3)},
                    "round_spread": {}},
        "predicted": pred, "predictor_error": None,
        "deadline": {"target": "raspberry-pi-5", "deadline_ms": 50.0, "latency_ms": pred["raspberry-pi-5"]["latency_ms"],
                     "basis": "predicted on raspberry-pi-5",
                     "verdict": "meets" if pred["raspberry-pi-5"]["latency_ms"] <= 50 else "misses"},
        "ratios": {"size": round(ts / fs, 3), "params": round(tp / fp, 3),
                   "latency_vs_pytorch": round(lat["teacher-pytorch"]["p50_ms"] / lat["final"]["p50_ms"], 3),
                   "drop_points": round((tm - fm) * 100, 4)},
        "target": "raspberry-pi-5"}
    i = len(lineage)
    folder = run / f"{i:02d}-validate"
    folder.mkdir()
    last = lineage[-1]
    (folder / "metrics.json").write_text(json.dumps({"run_key": "stand-in", "step": "validate", "options": {},
                                                     "model": last["path"], "model_hash": last["hash"],
                                                     "metrics": {"validate": validate}}))
    lineage.append({"step": "validate", "options": {}, "path": last["path"], "hash": last["hash"],
                    "parent": last["parent"], "metrics": {**last["metrics"], "validate": validate}, "cached": False,
                    "seconds": 0.0})
    (run / "lineage.json").write_text(json.dumps(lineage))


def missed_goal(validate: dict) -> dict:
    """The optimize.json `edgeslim optimize` would write for this run under a size limit the final model misses:
    the real goal checks, planner candidates and outcome (edgeslim.optimize), on the run's own teacher and numbers."""
    import dataclasses

    from edgeslim.hardware import load_profile, resolve_config
    from edgeslim.optimize.plan import Goal, candidates_for, choose
    from edgeslim.optimize.run import check_outcome

    size_mb = round(validate["final"]["size_bytes"] / 1e6, 4)
    limit = round(size_mb / 2, 4)
    goal = Goal(model=validate["teacher"]["path"], task="sst2", target="raspberry-pi-5", deadline_ms=50,
                max_drop=100, max_size_mb=limit)
    teacher = resolve_config(validate["teacher"]["path"])
    cands = candidates_for(teacher, teacher.vocab, load_profile("raspberry-pi-5"), dataclasses.replace(
        goal, max_size_mb=None))
    chosen = choose(cands)
    outcome = check_outcome(goal, validate)
    assert outcome["status"] == "missed"
    return {"goal": goal.to_dict(),
            "plan": {"chosen": chosen.to_dict(), "candidates": [c.to_dict() for c in cands], "runtime": "onnxruntime",
                     "student_vocab": teacher.vocab, "minutes": {"task": 1.0}, "rule": "most encoder parameters"},
            "outcome": outcome}


def truncated_copy(src: Path, dst: Path, records: int) -> Path:
    """A copy of run `src` whose lineage stops after `records` records (steps after them removed)."""
    shutil.copytree(src, dst)
    lineage = json.loads((dst / "lineage.json").read_text())[:records]
    for p in list(dst.iterdir()):
        if p.is_dir() and p.name[:2].isdigit() and int(p.name[:2]) >= records:
            shutil.rmtree(p)
    for name in ("recipe.yaml", "optimize.json", "report.html", "report.md"):
        (dst / name).unlink(missing_ok=True)
    shutil.rmtree(dst / "report-files", ignore_errors=True)
    (dst / "lineage.json").write_text(json.dumps(lineage))
    return dst


@pytest.fixture(scope="session")
def report_runs(tmp_path_factory) -> ReportRuns:
    from edgeslim.models.tiny import save_tiny_bert
    from edgeslim.pipeline import run_recipe
    from edgeslim.recipe import parse_recipe

    root = tmp_path_factory.mktemp("report")
    write_sst2(root / "data" / "glue" / "SST-2", n_train=48, n_dev=24)
    model = save_tiny_bert(root / "bert")
    validate = validate_step()
    recipe = {"model": str(model), "task": "sst2", "seed": 0, "threads": 2,
              "steps": STEPS + ([validate] if validate else [])}
    full = root / "full"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDGESLIM_DATA", str(root / "data"))
        mp.setenv("EDGESLIM_RUNS", str(root / "runs"))
        lineage = run_recipe(parse_recipe(recipe), full, quiet=True)
    plain = truncated_copy(full, root / "plain", len(STEPS) + 1)
    if not validate:
        stand_in_validate(full, lineage)
    (full / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    v = json.loads((full / f"{len(STEPS) + 1:02d}-validate" / "metrics.json").read_text())["metrics"]["validate"]
    (full / "optimize.json").write_text(json.dumps(missed_goal(v)))
    minimal = truncated_copy(plain, root / "minimal", 2)
    return ReportRuns(full, plain, minimal, real_validate=validate is not None)
