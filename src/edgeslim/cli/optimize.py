"""`edgeslim optimize`: the main job as one command (plan from the goal, run the six steps, validate, report)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import STATE, JsonOpt, SeedOpt, ThreadsOpt, emit

app = typer.Typer()


@app.command("optimize")
def optimize_cmd(
    model: str = typer.Option(..., "--model", "-m", help="Teacher: packaged name (e.g. minilm-l6) or model folder."),
    task: str = typer.Option(..., "--task", "-t", help="Task (see `edgeslim tasks`), e.g. sst2."),
    target: str = typer.Option(..., "--target", help="Hardware profile to deploy on (see `edgeslim hw list`)."),
    deadline_ms: float = typer.Option(..., "--deadline-ms", help="Per-request deadline at batch 1, --seq-len tokens."),
    max_drop: float = typer.Option(..., "--max-drop", help="Allowed drop below the teacher, metric points (1.0)."),
    max_size_mb: Optional[float] = typer.Option(None, "--max-size-mb", help="Largest deployable file, MB."),
    budget_minutes: Optional[float] = typer.Option(None, "--budget-minutes", help="Time budget [40; 10 with --quick]."),
    seq_len: int = typer.Option(128, "--seq-len", help="Tokens per request the deadline applies to."),
    runtime: Optional[str] = typer.Option(None, "--runtime", help="Override the runtime the target profile names."),
    quick: bool = typer.Option(False, "--quick", help="A first look in about 10 minutes (shorter training, "
                                                      "fewer quantization candidates); same report."),
    plan_only: bool = typer.Option(False, "--plan-only", help="Write the plan and recipe.yaml, run nothing."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder (resumable: re-run the command to continue)."),
    seed: int = SeedOpt,
    threads: int = ThreadsOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Make MODEL meet a deadline on TARGET within MAX_DROP points: exit 0 met, 1 missed (report marks it),
    2 impossible before training (the predictor rules it out) or bad input."""
    from ..optimize import Goal, optimize

    goal = Goal(model=model, task=task, target=target, deadline_ms=deadline_ms, max_drop=max_drop,
                max_size_mb=max_size_mb, budget_minutes=budget_minutes, seq_len=seq_len, quick=quick,
                runtime=runtime, seed=seed, threads=threads)

    def on_plan(p) -> None:
        if as_json:
            return
        c = p.chosen
        typer.echo(f"plan: {c.layers} layers, FFN {c.ffn}, {c.heads} heads, vocab {p.vocab}; predicted "
                   f"{c.predicted_ms:.2f} ms ({c.precision}; trust: {p.trust.get('label', 'unchecked')}) on "
                   f"{goal.target}, ~{c.size_mb:.2f} MB; runtime "
                   f"{p.runtime}; recipe: {out / 'recipe.yaml'}")

    res = optimize(goal, out, quiet=STATE["quiet"], plan_only=plan_only, on_plan=on_plan)   # --json: progress on stderr
    o = res.outcome
    if as_json:
        emit(res.to_dict(), True)
    else:
        for c in o.get("checks", []):
            mark = "MISS" if not c["met"] else "??  " if c.get("verdict") == "uncertain" else "ok  "
            trust = (f"; uncertain: could be {c['latency_range_ms'][0]:.2f}-{c['latency_range_ms'][1]:.2f} ms, "
                     f"trust: {c['trust_label']}" if c.get("trust_label") and c.get("latency_range_ms") else "")
            typer.echo(f"{mark} {c['constraint']}: {c['value']} {c['unit']} (limit {c['limit']}; {c['label']}: "
                       f"{c['basis']}{trust})")
        for f in o.get("failed", []):
            if "by" in f:
                typer.echo(f"goal missed: {f['constraint']} over by {f['by']} {f['unit']}")
            else:
                typer.echo(f"goal missed: {f.get('detail')}")
        if res.report:
            typer.echo(f"report: {res.report.get('html')}")
        typer.echo(f"status: {o['status']} ({out})")
    if o["status"] == "missed":
        raise typer.Exit(1)
