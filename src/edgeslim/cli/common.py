"""What every command shares: printing (tables or --json), the quiet flag, and the common options."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import typer

STATE: dict[str, Any] = {"quiet": False}

# One declaration of each option every command group uses.
JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON instead of tables.")
ThreadsOpt = typer.Option(2, "--threads", help="CPU threads.")
SeedOpt = typer.Option(0, "--seed", help="Random seed.")
TaskOpt = typer.Option(None, "--task", "-t", help="Task [the artifact's own task].")


def emit(data: Any, as_json: bool, render: Callable[[Any], None] | None = None) -> None:
    """Print `data` as JSON, or through `render` (rich tables) for people."""
    if as_json or render is None:
        typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
    else:
        render(data)


def console():
    from rich.console import Console

    return Console()


def metrics_table(title: str, metrics: dict[str, Any]) -> None:
    """Print flat metrics (numbers first, then nested facts) as a two-column table."""
    from rich.table import Table

    t = Table(title=title)
    t.add_column("metric")
    t.add_column("value", justify="right")
    for k, v in metrics.items():
        if isinstance(v, float):
            t.add_row(k, f"{v:.4f}")
        elif isinstance(v, dict):
            t.add_row(k, ", ".join(f"{a}={b}" for a, b in v.items()))
        else:
            t.add_row(k, str(v))
    console().print(t)


def context(out: Path, task: str | None, seed: int, threads: int):
    from ..context import RunContext

    return RunContext(out_dir=out, task=task, seed=seed, threads=threads, quiet=STATE["quiet"])
