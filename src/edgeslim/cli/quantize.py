"""`edgeslim quantize` (and `edgeslim quantize-predict`): thin wrappers over the quantize step and predictor."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

app = typer.Typer()  # commands of this group; cli/__init__.py mounts them on the main app



"""Add the `quantize` and `quantize-predict` commands to the CLI app."""

@app.command("quantize")
def quantize_cmd(
    model: str = typer.Option(..., "--model", "-m", help="FP32 ONNX artifact, or HF artifact (exported first)."),
    scheme: str = typer.Option("auto", help="auto | dynamic[-attn][-pertensor] | static[-minmax|-percentile|-entropy] | fp16 | mixed."),
    max_drop: str = typer.Option("0.5", help="auto: allowed metric drop in points (0.5) or relative ('1%')."),
    task: Optional[str] = typer.Option(None, "--task", "-t", help="Task for calibration/scoring [artifact's]."),
    candidates: str = typer.Option("dynamic,dynamic-attn,dynamic-pertensor,dynamic-attn-pertensor,"
                                   "static-minmax,static-percentile,static-entropy",
                                   help="auto: schemes to try (comma-separated; add fp16 to try it)."),
    mixed_k: str = typer.Option("2,4,8", help="auto: mixed candidates keep k most sensitive groups FP32."),
    keep_fp32: int = typer.Option(4, help="mixed: number of most sensitive groups kept FP32."),
    exclude: str = typer.Option("", help="Single scheme: groups kept FP32, comma-separated (layer.5.ffn_out)."),
    calibration_size: int = typer.Option(128, help="Train examples for static calibration."),
    select_split: str = typer.Option("val", help="Split the search and the mixed groups are chosen on (val is "
                                     "carved from train; dev is used only for a task without val). Dev only "
                                     "reports."),
    screen_size: int = typer.Option(300, help="Select-split examples used to screen candidates and for "
                                    "sensitivity."),
    sensitivity_size: int = typer.Option(150, help="Screening examples used for the sensitivity analysis."),
    select_all: bool = typer.Option(False, "--select-all", "--dev-all",
                                    help="auto: score every candidate on the whole select split, not only the "
                                    "finalists (--dev-all: its old name)."),
    speed_tie: float = typer.Option(0.03, help="auto: speed-ups within this fraction of the fastest are a tie; "
                                    "the most accurate of them wins."),
    eval_batch_size: int = typer.Option(1, help="Batch size of every accuracy figure (1 = no padding)."),
    latency_seq_len: int = typer.Option(128, help="Sequence length of the batch-1 latency input."),
    target: str = typer.Option("host", help="Hardware profile for the speed-up prediction."),
    out: Path = typer.Option(None, "--out", "-o", help="Output artifact folder [runs/<task>-quantize]."),
    seed: int = typer.Option(0, help="Random seed (calibration sample, screening subset)."),
    threads: int = typer.Option(2, help="CPU threads."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON instead of tables."),
) -> None:
    """Quantize with ONNX Runtime; --scheme auto returns the fastest model within --max-drop of FP32 on val
    (chosen on val, carved from train; dev is scored for reporting only)."""
    from .common import STATE, console, emit
    from ..context import RunContext
    from ..pipeline import source_artifact
    from ..quantize.step import QuantizeConfig, quantize

    split = lambda s: tuple(x.strip() for x in s.split(",") if x.strip())  # noqa: E731
    cfg = QuantizeConfig(scheme=scheme, max_drop=max_drop, candidates=split(candidates),
                         mixed_k=tuple(int(k) for k in split(mixed_k)), keep_fp32=keep_fp32,
                         exclude=split(exclude), calibration_size=calibration_size, select_split=select_split,
                         screen_size=screen_size,
                         sensitivity_size=sensitivity_size, select_all=select_all, speed_tie=speed_tie,
                         eval_batch_size=eval_batch_size, latency_seq_len=latency_seq_len, target=target)
    src = source_artifact(model)
    task_name = task or src.task
    out = out or Path("runs") / f"{task_name or 'model'}-quantize"
    ctx = RunContext(out_dir=out, task=task_name, seed=seed, threads=threads, quiet=STATE["quiet"])
    art = quantize(src, cfg, ctx)
    report_md = Path(art.path) / "quantize_report.md"
    data: dict[str, Any] = {"artifact": str(art.path), "hash": art.content_hash, "precision":
                            art.extra["precision"], "scheme": art.step_config["scheme"], "metrics": art.metrics,
                            "size_bytes": art.size_bytes}

    def render(d: dict[str, Any]) -> None:
        c = console()
        if report_md.is_file():
            from rich.markdown import Markdown

            c.print(Markdown(report_md.read_text()))
        c.print(f"[bold]{d['scheme']['name']}[/bold] ({d['precision']}) -> {d['artifact']}, "
                f"{d['size_bytes'] / 1e6:.1f} MB")
        for k, v in d["metrics"].items():
            c.print(f"  {k}: {v}")

    emit(data, as_json, render)

@app.command("quantize-predict")
def predict_cmd(
    model: str = typer.Option(..., "--model", "-m", help="Model folder with config.json (HF or artifact)."),
    target: str = typer.Option("host", help="Hardware profile name (see `edgeslim hw list`), or host."),
    scheme: str = typer.Option("dynamic", help="dynamic | static: which ops run in INT8."),
    seq_len: int = typer.Option(128, help="Sequence length (batch 1)."),
    threads: int = typer.Option(2, help="CPU threads (host measurement)."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON instead of tables."),
) -> None:
    """Predict, before quantizing, whether INT8 will be faster than FP32 on a target."""
    from .common import emit
    from ..pipeline import source_artifact
    from ..quantize.predict import predict_int8_speedup

    src = source_artifact(model)
    p = predict_int8_speedup(src.path, target, scheme_kind=scheme, seq_len=seq_len, threads=threads)
    emit(p.to_dict(), as_json, lambda d: typer.echo(p.verdict()))
