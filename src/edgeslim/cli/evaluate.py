"""`edgeslim eval`."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import ConfigError
from .common import JsonOpt, context, emit, metrics_table

app = typer.Typer()  # commands of this group; cli/__init__.py mounts them on the main app


@app.command("eval")
def eval_cmd(
    model: str = typer.Option(..., "--model", "-m", help="Artifact folder (or packaged model name)."),
    task: Optional[str] = typer.Option(None, "--task", "-t", help="Task [the artifact's own task]."),
    split: str = typer.Option("dev", help="Split to score: dev, val (carved from train), train, train-full."),
    batch_size: int = typer.Option(32, help="Evaluation batch size (INT8 accuracy depends on it)."),
    limit: Optional[int] = typer.Option(None, help="Score only the first N examples."),
    threads: int = typer.Option(2, help="CPU threads."),
    as_json: bool = JsonOpt,
) -> None:
    """Score a model on a task split and print its metrics."""
    from ..pipeline import source_artifact
    from ..evaluate.step import EvaluateConfig, evaluate_artifact

    art = source_artifact(model)
    task = task or art.task
    if not task:
        raise ConfigError(f"{model} records no task; pass --task (e.g. --task sst2)")
    cfg = EvaluateConfig(split=split, batch_size=batch_size, limit=limit)
    metrics = evaluate_artifact(art, task, cfg, context(Path(art.path), task, 0, threads))
    emit({"artifact": str(art.path), "task": task, "metrics": metrics}, as_json,
         lambda d: metrics_table(f"{task} {split}: {d['artifact']}", d["metrics"]))
