"""`edgeslim distill`: build a student from a fine-tuned teacher and distil it (general, then task stage)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional

import typer
from .common import JsonOpt, STATE, emit, metrics_table

app = typer.Typer()  # commands of this group; cli/__init__.py mounts them on the main app


def _layers(student_layers: Optional[int], layer_map: Optional[str]) -> Any:
    from ..errors import ConfigError

    if layer_map:
        try:
            return tuple(int(x) for x in layer_map.split(",") if x.strip())
        except ValueError:
            raise ConfigError(f"--layer-map must be comma-separated teacher layer numbers such as 0,2,4, "
                              f"got {layer_map!r}") from None
    return student_layers




@app.command("distill")
def distill_cmd(
    teacher: str = typer.Option(..., "--teacher", help="Fine-tuned teacher artifact folder (e.g. runs/teacher-sst2)."),
    task: Optional[str] = typer.Option(None, "--task", "-t", help="Task [the teacher's own task]."),
    student_layers: Optional[int] = typer.Option(3, "--student-layers", help="Student depth (evenly spaced "
                                                 "teacher layers, first and last kept)."),
    layer_map: Optional[str] = typer.Option(None, "--layer-map", help="Explicit teacher layers, e.g. 0,2,4 "
                                            "(overrides --student-layers)."),
    student_hidden: Optional[int] = typer.Option(None, help="Student hidden size [teacher's]."),
    student_heads: Optional[int] = typer.Option(None, help="Student heads [hidden / teacher head size]."),
    student_ffn: Optional[int] = typer.Option(None, help="Student FFN size [teacher's]."),
    init: str = typer.Option("teacher", help="teacher (slice mapped teacher weights) | scratch."),
    vocab: str = typer.Option("task", help="task (keep the task train text's token ids) | full."),
    no_projection: bool = typer.Option(False, "--no-projection", help="No learned width projection."),
    stages: str = typer.Option("general,task", help="Stages to run, in order: general,task | task | general."),
    general_losses: str = typer.Option("hidden_mse=1,attention=1,embedding=1", help="Stage-1 loss=weight list."),
    task_losses: str = typer.Option("kl=1,ce=0.5", help="Stage-2 loss=weight list."),
    temperature: float = typer.Option(2.0, help="Soft-label temperature."),
    general_minutes: float = typer.Option(3.0, help="Stage-1 time budget (minutes)."),
    task_minutes: float = typer.Option(5.0, help="Stage-2 time budget (minutes)."),
    task_epochs: float = typer.Option(3.0, help="Stage-2 epochs (the budget may stop it first)."),
    corpus: str = typer.Option("squad,glue", help="Stage-1 corpus sources (squad, glue); '' for none."),
    corpus_file: List[Path] = typer.Option([], "--corpus-file", help="Extra stage-1 text file (repeatable)."),
    general_teacher: Optional[str] = typer.Option(None, help="Another model for stage 1 [the teacher]."),
    lr: float = typer.Option(1e-4, help="Peak learning rate."),
    batch_size: int = typer.Option(32, help="Batch size."),
    max_length: int = typer.Option(64, help="Training max tokens per example."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output artifact folder [runs/distill/<task>-L<n>]."),
    plan_only: bool = typer.Option(False, "--plan", help="Build the student, print sizes and ratio, no training."),
    seed: int = typer.Option(0, help="Random seed."),
    threads: int = typer.Option(2, help="CPU threads."),
    as_json: bool = JsonOpt,
) -> None:
    """Distil a fine-tuned teacher into a smaller student (resumable: re-run the same command after a crash)."""
    from ..context import RunContext
    from ..pipeline import source_artifact
    from ..distill.step import DistillConfig, distill, prepare
    from ..tasks import get_task

    src = source_artifact(teacher)
    task_name = get_task(task).name if task else src.task
    cfg = DistillConfig(
        student_layers=_layers(student_layers, layer_map), student_hidden=student_hidden,
        student_heads=student_heads, student_ffn=student_ffn, init=init, vocab=vocab,
        projection=not no_projection, stages=tuple(s.strip() for s in stages.split(",") if s.strip()),
        general_losses=general_losses, task_losses=task_losses, temperature=temperature,
        general_minutes=general_minutes, task_minutes=task_minutes, task_epochs=task_epochs,
        corpus=tuple(s.strip() for s in corpus.split(",") if s.strip()),
        corpus_files=tuple(str(f) for f in corpus_file), general_teacher=general_teacher, lr=lr,
        batch_size=batch_size, max_length=max_length)
    n = len(cfg.student_layers) if isinstance(cfg.student_layers, tuple) else cfg.student_layers
    out = out or Path("runs") / "distill" / f"{task_name or 'task'}-L{n}"
    ctx = RunContext(out_dir=out, task=task_name, seed=seed, threads=threads, quiet=STATE["quiet"])
    if plan_only:
        ctx.seed_everything()
        p = prepare(src, cfg, ctx)
        data = {"plan": {"layer_map": list(p.plan.layer_map), "hidden": p.plan.hidden, "heads": p.plan.heads,
                         "ffn": p.plan.ffn, "init": p.plan.init}, **p.sizes()}
        emit(data, as_json, lambda d: metrics_table(f"student plan ({teacher})", d))
        return
    art = distill(src, cfg, ctx)
    emit({"artifact": str(art.path), "hash": art.content_hash, "metrics": art.metrics}, as_json,
         lambda d: metrics_table(f"distilled -> {d['artifact']}", {k: v for k, v in d["metrics"].items()
                                                                   if k != "distill"}
                                 | {k: v for k, v in d["metrics"]["distill"].items() if k != "stages"}))
