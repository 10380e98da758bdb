"""`edgeslim prune`: structured + vocabulary pruning from the command line (thin wrapper over the prune step)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

app = typer.Typer()  # commands of this group; cli/__init__.py mounts them on the main app




@app.command("prune")
def prune_cmd(
    model: str = typer.Option(..., "--model", "-m", help="HF model artifact/folder (e.g. runs/teacher-sst2)."),
    task: Optional[str] = typer.Option(None, "--task", "-t", help="Task [the artifact's task]."),
    heads: float = typer.Option(0.0, help="Share of attention heads to remove, in [0, 1)."),
    ffn: float = typer.Option(0.0, help="Share of FFN neurons to remove, in [0, 1)."),
    drop_layers: int = typer.Option(0, help="Number of least important encoder layers to remove."),
    vocab: Optional[str] = typer.Option(None, help="Keep only tokens of the task text: task (train+dev) | train."),
    score: str = typer.Option("gradient", help="Importance score: gradient | magnitude."),
    scope: str = typer.Option("layer", help="layer (same share per layer) | global (ranked across layers)."),
    recover_minutes: float = typer.Option(0.0, help="Recovery fine-tuning budget in minutes."),
    iterations: int = typer.Option(1, help="Prune in this many rounds, recovering after each."),
    distill: bool = typer.Option(True, help="Recovery also matches the unpruned model's soft labels."),
    lr: float = typer.Option(1e-4, help="Recovery peak learning rate."),
    calib_samples: int = typer.Option(512, help="Training examples used to score importance."),
    target_params: Optional[int] = typer.Option(None, help="Prune (up to --heads/--ffn) to <= this many params."),
    target_latency_ms: Optional[float] = typer.Option(None, help="... or to <= this batch-1 latency."),
    latency_source: str = typer.Option("onnxruntime", help="onnxruntime (measured) or a hardware profile name."),
    out: Path = typer.Option(None, "--out", "-o", help="Output artifact folder [runs/<task>-prune]."),
    seed: int = typer.Option(0, help="Random seed."),
    threads: int = typer.Option(2, help="CPU threads."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON instead of tables."),
) -> None:
    """Physically remove attention heads, FFN neurons, layers and unused vocabulary; recover; score on dev."""
    from .common import STATE, emit, metrics_table
    from ..context import RunContext
    from ..pipeline import source_artifact
    from ..prune.step import PruneConfig, prune

    cfg = PruneConfig(heads=heads, ffn=ffn, drop_layers=drop_layers, vocab=vocab, score=score, scope=scope,
                      recover_minutes=recover_minutes, iterations=iterations, distill=distill, lr=lr,
                      calib_samples=calib_samples,
                      target_params=target_params, target_latency_ms=target_latency_ms,
                      latency_source=latency_source)
    src = source_artifact(model)
    task_name = task or src.task
    out = out or Path("runs") / f"{task_name or 'model'}-prune"
    ctx = RunContext(out_dir=out, task=task_name, seed=seed, threads=threads, quiet=STATE["quiet"])
    art = prune(src, cfg, ctx)
    rep = art.metrics["prune"]
    data: dict[str, Any] = {"artifact": str(art.path), "hash": art.content_hash, "metrics": art.metrics,
                            "size_bytes": art.size_bytes}

    def render(d: dict[str, Any]) -> None:
        flat = {k: v for k, v in d["metrics"].items() if isinstance(v, (int, float))}
        flat.update({"params before": rep["before"]["params"], "params after": rep["after"]["params"],
                     "heads per layer": str(rep["after"]["heads_per_layer"]),
                     "ffn per layer": str(rep["after"]["ffn_per_layer"]), "size bytes": d["size_bytes"]})
        metrics_table(f"pruned -> {d['artifact']}", flat)

    emit(data, as_json, render)
