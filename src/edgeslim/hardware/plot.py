"""Roofline plot: the device's roofline and each op of the model as a point (matplotlib, imported lazily)."""
from __future__ import annotations

from pathlib import Path

from .._compat import require
from ..errors import ConfigError
from .predict import Prediction
from .schema import HardwareProfile

COLORS = {"linear": "tab:blue", "attention": "tab:orange", "elementwise": "tab:green", "gather": "tab:red"}


def roofline_plot(pred: Prediction, profile: HardwareProfile, out: str | Path, title: str = "") -> Path:
    """Write a log-log roofline (PNG or SVG by suffix) with each op at (intensity, predicted achieved GOP/s)."""
    out = Path(out)
    if out.suffix.lower() not in (".png", ".svg"):
        raise ConfigError(f"roofline plot must end in .png or .svg, got {out.name!r}")
    matplotlib = require("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..fileio import atomic_path

    peak = profile.peak(pred.precision)
    bw = profile.memory_bandwidth_gbs.value
    pts = [(r.cost.intensity, r.cost.flops / (r.time_ms / 1e3) / 1e9, r.cost.kind) for r in pred.rows
           if r.cost.flops and r.cost.bytes]
    xs = [p[0] for p in pts] or [1.0]
    lo, hi = min(min(xs), peak / bw) / 4, max(max(xs), peak / bw) * 4
    fig, ax = plt.subplots(figsize=(7, 4.5))
    grid = [lo * (hi / lo) ** (i / 200) for i in range(201)]
    ax.plot(grid, [min(peak, x * bw) for x in grid], "k-", lw=1.5,
            label=f"roofline: {peak:.0f} GOP/s {pred.precision}, {bw:.0f} GB/s")
    for kind, color in COLORS.items():
        sel = [p for p in pts if p[2] == kind]
        if sel:
            ax.scatter([p[0] for p in sel], [p[1] for p in sel], s=18, c=color, label=f"{kind} ops (predicted)",
                       alpha=0.8)
    ax.axvline(peak / bw, color="grey", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (ops / byte of DRAM traffic)")
    ax.set_ylabel("GOP/s")
    ax.set_title(title or f"{profile.name}: batch {pred.batch}, seq {pred.seq_len}, {pred.precision} (predicted)")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format=out.suffix[1:].lower(), dpi=120)
    plt.close(fig)
    return out
