"""`edgeslim finetune`."""
from __future__ import annotations

from pathlib import Path

import typer

from .common import JsonOpt, context, emit, metrics_table

app = typer.Typer()  # commands of this group; cli/__init__.py mounts them on the main app


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
    from ..pipeline import source_artifact
    from ..tasks import get_task
    from ..finetune.step import FinetuneConfig, finetune

    spec = get_task(task)
    cfg = FinetuneConfig(epochs=epochs, max_minutes=max_minutes, lr=lr, batch_size=batch_size)
    src = source_artifact(model)
    out = out or Path("runs") / f"{spec.name}-finetune"
    art = finetune(src, cfg, context(out, spec.name, seed, threads))
    emit({"artifact": str(art.path), "hash": art.content_hash, "metrics": art.metrics}, as_json,
         lambda d: metrics_table(f"{spec.name} fine-tuned -> {d['artifact']}", d["metrics"]))
