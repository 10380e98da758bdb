"""`edgeslim report DIR`: build a run folder's report (report.html, report.md and report-files/)."""
from __future__ import annotations

from pathlib import Path

import typer

from .common import JsonOpt, emit

app = typer.Typer()  # commands of this group; cli/__init__.py mounts them on the main app


@app.command("report")
def report_cmd(run_dir: Path = typer.Argument(..., help="Run folder (the --out of `edgeslim run`)."),
               as_json: bool = JsonOpt) -> None:
    """Write DIR/report.html (self-contained: opens offline) and DIR/report.md (PNGs in DIR/report-files/)."""
    from ..report import build_report

    result = build_report(run_dir)

    def render(r: dict) -> None:
        typer.echo(f"html: {r['html']}\nmarkdown: {r['md']}")
        for note in r["notes"]:
            typer.echo(f"note: {note}")

    emit(result, as_json, render)
