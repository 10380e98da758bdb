"""The report's figures as PNG bytes (matplotlib, Agg backend, imported when a figure is drawn)."""
from __future__ import annotations

import io
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from .._compat import require


@dataclass(frozen=True)
class ParetoPoint:
    """One candidate on the Pareto plot: a metric, a latency and a size (None where the run has none)."""

    label: str           # short: the candidate's number in the report's table
    metric: float | None
    latency_ms: float | None
    size_bytes: int | None
    kind: str            # "artifact" | "quantize candidate"
    chosen: bool = False
    final: bool = False


def _pyplot() -> Any:
    matplotlib = require("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    plt = _pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def _scatter(ax: Any, points: Sequence[ParetoPoint], x_of: Any) -> None:
    """Artifacts as circles, quantize candidates as squares; the chosen candidate a star, the final model ringed."""
    style = {"artifact": ("o", "tab:blue"), "quantize candidate": ("s", "tab:orange")}
    seen: set[str] = set()
    for i, p in enumerate(points):
        x = x_of(p)
        if x is None or p.metric is None:
            continue
        marker, color = style.get(p.kind, ("o", "tab:grey"))
        if p.chosen:
            marker, color = "*", "tab:red"
        label = "chosen by the quantize search" if p.chosen else p.kind + "s"
        ax.scatter([x], [p.metric], marker=marker, c=color, s=160 if p.chosen else 50, zorder=3,
                   label=None if label in seen else label)
        seen.add(label)
        if p.final:
            ax.scatter([x], [p.metric], marker="o", s=380, facecolors="none", edgecolors="black", lw=1.2, zorder=4,
                       label=None if "final" in seen else "final model")
            seen.add("final")
        # short labels (the candidate's number in the report's table), staggered so equal points stay readable
        ax.annotate(p.label, (x, p.metric), textcoords="offset points", xytext=(5, 5 - 11 * (i % 3)), fontsize=8)


def _log_if_wide(ax: Any, values: Sequence[float]) -> None:
    vals = [v for v in values if v and v > 0]
    if vals and max(vals) / min(vals) > 20:
        ax.set_xscale("log")


def pareto_png(points: Sequence[ParetoPoint], *, metric_label: str, latency_label: str | None) -> bytes:
    """Two panels: metric vs latency and metric vs size on disk, every candidate of the run."""
    plt = _pyplot()
    fig, (ax_l, ax_s) = plt.subplots(1, 2, figsize=(11, 4.4))
    if latency_label:
        _scatter(ax_l, points, lambda p: p.latency_ms)
        _log_if_wide(ax_l, [p.latency_ms for p in points if p.latency_ms is not None])
        ax_l.set_xlabel(latency_label)
    else:
        ax_l.text(0.5, 0.5, "no latency measured or predicted in this run", ha="center", va="center",
                  transform=ax_l.transAxes)
        ax_l.set_xlabel("latency (ms)")
    ax_l.set_ylabel(metric_label)
    ax_l.set_title("metric vs latency (faster is left)", fontsize=10)
    _scatter(ax_s, points, lambda p: None if p.size_bytes is None else p.size_bytes / 1e6)
    _log_if_wide(ax_s, [p.size_bytes for p in points if p.size_bytes])
    ax_s.set_xlabel("size on disk (MB), measured")
    ax_s.set_ylabel(metric_label)
    ax_s.set_title("metric vs size (smaller is left)", fontsize=10)
    for ax in (ax_l, ax_s):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return _png(fig)


def sensitivity_png(sensitivity: dict[str, Any]) -> bytes:
    """Output SQNR per MatMul/Gemm group quantized alone (most sensitive at the top), from a quantize report."""
    plt = _pyplot()
    rows = list(sensitivity.get("rows") or [])
    scheme = (sensitivity.get("scheme") or {}).get("name", "?")
    fig, ax = plt.subplots(figsize=(7, max(3.0, 0.22 * len(rows) + 1.2)))
    ax.barh([str(r.get("group")) for r in rows][::-1], [float(r.get("sqnr_db", 0.0)) for r in rows][::-1],
            color="tab:blue")
    ax.set_xlabel("output SQNR vs FP32 (dB), measured; group quantized alone; lower = more sensitive")
    ax.set_title(f"Quantization sensitivity ({scheme}), measured", fontsize=10)
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    return _png(fig)


def roofline_png(art: Any, target: str, seq_len: int) -> tuple[bytes, dict[str, Any]]:
    """The predicted roofline of `art` on hardware profile `target` (the profile step's plot) and its prediction."""
    from ..profile.step import ProfileConfig, profile_artifact

    cfg = ProfileConfig(hardware=(target,), seq_len=seq_len, measure=False, plot=True)
    with tempfile.TemporaryDirectory() as tmp:
        report = profile_artifact(art, cfg, plot_dir=Path(tmp))
        row = report["hardware"][target]
        png = Path(row["plot"]).read_bytes()
    return png, row
