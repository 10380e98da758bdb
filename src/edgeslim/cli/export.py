"""`edgeslim export`: one model to ONNX Runtime, LiteRT, ExecuTorch and Core ML, each file validated."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

app = typer.Typer()  # commands of this group; cli/__init__.py mounts them on the main app


def export_rows(art: Any) -> list[dict[str, Any]]:
    """One flat row per export of a bundle artifact: size, validation numbers, dev metric and its delta."""
    rows = []
    for r in art.extra.get("exports", []):
        m = art.metrics.get("exports", {}).get(r["export"], {})
        v = m.get("validation", {})
        row: dict[str, Any] = {"export": r["export"], "file": r.get("file", ""),
                               "size_mb": round(r["size_bytes"] / 1e6, 2) if "size_bytes" in r else None,
                               "max_abs_diff": v.get("max_abs_diff"), "cosine": v.get("cosine"),
                               "label_agreement": v.get("label_agreement"),
                               "validation": "skipped" if "skipped" in v else ("passed" if v.get("passed") else
                                                                                r.get("error", "failed"))}
        for key, val in m.items():
            if isinstance(val, dict) and "eval" in val:  # e.g. "sst2/dev"
                primary = next(k for k in val["reference"] if k != "runtime")
                row.update(metric=key + " " + primary, value=val[primary], reference=val["reference"][primary],
                           delta_points=val["delta_points"])
        if "skipped" in v:
            row["note"] = v["skipped"]
        rows.append(row)
    return rows




@app.command("export")
def export_cmd(
    model: str = typer.Option(..., "--model", "-m", help="HF model artifact/folder (e.g. runs/teacher-sst2)."),
    targets: str = typer.Option("onnx,litert,executorch,coreml", "--targets",
                                help="Comma-separated: onnx, litert, executorch, coreml."),
    precisions: str = typer.Option("", "--precisions",
                                   help="Comma-separated fp32, fp16, int8 [each target's own: fp32+int8, "
                                        "Core ML fp16+int8]."),
    task: Optional[str] = typer.Option(None, "--task", "-t", help="Task for validation inputs and the dev "
                                                                  "metric [the artifact's task]."),
    seq_len: int = typer.Option(128, help="Static sequence length (LiteRT, ExecuTorch, Core ML); "
                                          "inputs are padded to it."),
    batch: int = typer.Option(1, help="Static batch size of the exported files."),
    dynamic: Optional[str] = typer.Option(None, help="Dimensions to keep dynamic (batch,sequence) "
                                                     "[ONNX: both; others: none]."),
    int8_scheme: str = typer.Option("static", help="static (PT2E calibrated) | dynamic activation scales."),
    eval_split: Optional[str] = typer.Option("dev", help="Score each export on this split "
                                                         "where its runtime runs; 'none' to skip."),
    validate_n: int = typer.Option(64, help="Task inputs compared with PyTorch per export."),
    calibration_n: int = typer.Option(128, help="Train examples used to calibrate static INT8."),
    optimize: str = typer.Option("none", help="ONNX Runtime graph optimisation: none | basic | extended."),
    keep_going: bool = typer.Option(False, help="Export the other targets when one fails."),
    out: Path = typer.Option(None, "--out", "-o", help="Output folder [runs/<model>-export]."),
    threads: int = typer.Option(2, help="CPU threads."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON instead of tables."),
) -> None:
    """Export a model to several runtimes; every file is checked against PyTorch (ExportMismatchError if off)."""
    from .common import STATE, console, emit
    from ..context import RunContext
    from ..pipeline import source_artifact
    from ..export.bundle import ExportConfig, export_many

    cfg = ExportConfig(targets=targets, precisions=precisions, seq_len=seq_len, batch=batch,
                       dynamic=tuple(d for d in dynamic.split(",") if d) if dynamic is not None else None,
                       int8_scheme=int8_scheme, validate_n=validate_n, calibration_n=calibration_n,
                       eval_split=None if (eval_split or "none").lower() == "none" else eval_split,
                       optimize=optimize, keep_going=keep_going)
    src = source_artifact(model)
    out = out or Path("runs") / f"{Path(str(src.path)).name}-export"
    ctx = RunContext(out_dir=out, task=task or src.task, threads=threads, quiet=STATE["quiet"])

    def progress(name: str, art: Any, err: Any) -> None:
        if not (as_json or STATE["quiet"]):
            typer.echo(f"  {name}: {'FAILED ' + str(err) if err else 'ok'}", err=True)

    bundle = export_many(src, cfg, ctx, on_export=progress)
    data = {"artifact": str(bundle.path), "hash": bundle.content_hash, "exports": export_rows(bundle)}

    def render(d: dict[str, Any]) -> None:
        from rich.table import Table

        t = Table(title=f"exports of {model} -> {d['artifact']}")
        cols = ("export", "size_mb", "max_abs_diff", "cosine", "label_agreement", "validation", "metric",
                "value", "reference", "delta_points")
        for c in cols:
            t.add_column(c)
        for r in d["exports"]:
            t.add_row(*[f"{r[c]:.4g}" if isinstance(r.get(c), float) else str(r.get(c, "-")) for c in cols])
        console().print(t)
        for r in d["exports"]:
            if r.get("note"):
                typer.echo(f"{r['export']}: {r['note']}")

    emit(data, as_json, render)
