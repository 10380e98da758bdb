"""`optimize`: plan a recipe from the goal, run it (resumable: every step is cached by its inputs), check the goal
against what the validate step measured, and write the report.

Run folder: DIR/recipe.yaml (the recipe it chose: `edgeslim run DIR/recipe.yaml --out DIR` reproduces the run),
DIR/optimize.json (goal, plan, outcome), DIR/NN-<step>/ (each step's output), DIR/lineage.json, DIR/report.html/.md.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import StepError
from ..fileio import write_json, write_text
from .plan import Goal, GoalImpossible, Plan, plan

OPTIMIZE_FILE = "optimize.json"


@dataclass
class OptimizeResult:
    out_dir: Path
    plan: Plan
    outcome: dict[str, Any]
    lineage: list[dict[str, Any]]
    report: dict[str, Any] | None

    @property
    def met(self) -> bool:
        return self.outcome.get("status") == "met"

    def to_dict(self) -> dict[str, Any]:
        return {"out_dir": str(self.out_dir), "outcome": self.outcome, "plan": self.plan.to_dict(),
                "report": self.report}


def check_outcome(goal: Goal, validate: dict[str, Any] | None, error: str | None = None) -> dict[str, Any]:
    """Each constraint of the goal against the validate step's measurements: met, or failed by how much."""
    if validate is None:
        return {"status": "missed", "failed": [{"constraint": "run", "detail": error or "no validate result"}],
                "checks": []}
    checks = []
    drop = validate["ratios"]["drop_points"]
    checks.append({"constraint": "max_drop", "limit": goal.max_drop, "value": drop, "unit": "points",
                   "label": "measured", "basis": f"{validate['task']} {validate['split']}, batch 1, final model in "
                                                 f"{validate['final']['runtime']} vs teacher in PyTorch FP32"})
    dl = validate.get("deadline") or {}
    if dl:
        checks.append({"constraint": "deadline_ms", "limit": goal.deadline_ms, "value": dl["latency_ms"], "unit": "ms",
                       "label": dl.get("label", "predicted"), "basis": dl["basis"], "verdict": dl.get("verdict"),
                       **({"trust_label": dl["trust_label"], "latency_range_ms": dl.get("latency_range_ms")}
                          if dl.get("trust_label") else {})})
    if goal.max_size_mb is not None:
        checks.append({"constraint": "max_size_mb", "limit": goal.max_size_mb,
                       "value": round(validate["final"]["size_bytes"] / 1e6, 4), "unit": "MB", "label": "measured",
                       "basis": "size on disk of the deployable model file"})
    failed = []
    for c in checks:
        c["met"] = c["value"] <= c["limit"] + 1e-12
        if not c["met"]:
            failed.append({**c, "by": round(c["value"] - c["limit"], 4)})
    return {"status": "met" if not failed else "missed", "failed": failed, "checks": checks,
            **({"error": error} if error else {})}


def _validate_metrics(lineage: list[dict[str, Any]]) -> dict[str, Any] | None:
    for rec in reversed(lineage):
        if rec.get("step") == "validate" and "validate" in (rec.get("metrics") or {}):
            return rec["metrics"]["validate"]
    return None


def write_recipe(out: Path, p: Plan) -> None:
    import yaml

    write_text(out / "recipe.yaml", "# Written by `edgeslim optimize`; `edgeslim run recipe.yaml --out <this folder>` "
                                   "reproduces the run (finished steps are reused).\n"
               + yaml.safe_dump(p.recipe, sort_keys=False, width=110))


def write_optimize_json(out: Path, p: Plan, outcome: dict[str, Any] | None = None,
                        started: float | None = None, seconds: float | None = None) -> None:
    from ..measure import host_facts

    write_json(out / OPTIMIZE_FILE, {"goal": p.goal.to_dict(), "plan": p.to_dict(),
                                     "outcome": outcome or {"status": "running"}, "host": host_facts(),
                                     "started": started, "seconds": seconds})


def optimize(goal: Goal, out_dir: str | Path, *, quiet: bool = False, plan_only: bool = False,
             on_plan: Callable[[Plan], None] | None = None) -> OptimizeResult:
    """Plan, run, check and report. Raises GoalImpossible (before training) when the predictor rules the goal out;
    returns the result otherwise (`result.met` says whether every constraint held; the CLI exits 1 when not)."""
    from ..pipeline import run_recipe
    from ..recipe import parse_recipe

    out = Path(out_dir)
    p = plan(goal)            # GoalImpossible / ConfigError here: nothing written yet
    recipe = parse_recipe(p.recipe, where=str(out / "recipe.yaml"))   # the whole-recipe checks, before any work
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    write_recipe(out, p)
    write_optimize_json(out, p, started=started)
    if on_plan:
        on_plan(p)
    if plan_only:
        return OptimizeResult(out, p, {"status": "planned"}, [], None)
    error = None
    try:
        lineage = run_recipe(recipe, out, quiet=quiet)
    except StepError as exc:   # a step could not reach its own target: keep what the run made, report the miss
        error = str(exc)
        lineage = _read_lineage(out)
    outcome = check_outcome(goal, _validate_metrics(lineage), error)
    write_optimize_json(out, p, outcome, started, round(time.time() - started, 1))
    report = None
    try:
        from ..report import build_report

        report = build_report(out)
    except Exception as exc:  # noqa: BLE001 - the run and its outcome stand; `edgeslim report DIR` retries
        import sys

        print(f"optimize: the report could not be built ({type(exc).__name__}: {exc}); the run is complete, "
              f"rebuild it with `edgeslim report {out}`", file=sys.stderr)
    return OptimizeResult(out, p, outcome, lineage, report)


def _read_lineage(out: Path) -> list[dict[str, Any]]:
    import json

    f = out / "lineage.json"
    return json.loads(f.read_text()) if f.is_file() else []


__all__ = ["Goal", "GoalImpossible", "OptimizeResult", "optimize", "check_outcome"]
