"""Per-group sensitivity: quantize one MatMul/Gemm group alone, measure metric and output SQNR vs FP32."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from .onnx_schemes import MatMulGroup, Scheme, quantize_onnx
from .scoring import OnnxScorer


@dataclass(frozen=True)
class GroupSensitivity:
    """Effect of quantizing one group alone (everything else FP32)."""

    group: str
    nodes: int
    params: int
    metric: float
    drop_points: float           # (FP32 metric - metric) x 100
    sqnr_db: float               # output logits vs FP32; lower = more sensitive


@dataclass
class SensitivityReport:
    """Groups ranked most sensitive first (lowest output SQNR, then largest metric drop)."""

    scheme: dict[str, Any]
    metric_name: str
    fp32_metric: float
    evaluated_on: dict[str, Any]
    rows: list[GroupSensitivity] = field(default_factory=list)

    def ranking(self) -> list[str]:
        return [r.group for r in self.rows]

    def to_dict(self) -> dict[str, Any]:
        return {"scheme": self.scheme, "metric": self.metric_name, "fp32_metric": self.fp32_metric,
                "evaluated_on": self.evaluated_on, "rows": [asdict(r) for r in self.rows]}

    def to_markdown(self) -> str:
        e = self.evaluated_on
        lines = [f"Sensitivity: each group quantized alone with {self.scheme['name']}; {self.metric_name} and output "
                 f"SQNR on {e['examples']} {e.get('split', 'dev')} examples, batch {e['batch_size']}, padding "
                 f"{e['padding']}. "
                 f"FP32 {self.metric_name} {self.fp32_metric:.4f}.", "",
                 f"| rank | group | weights | {self.metric_name} | drop (points) | SQNR (dB) |",
                 "|---:|---|---:|---:|---:|---:|"]
        for i, r in enumerate(self.rows, 1):
            lines.append(f"| {i} | {r.group} | {r.params:,} | {r.metric:.4f} | {r.drop_points:+.2f} | "
                         f"{r.sqnr_db:.1f} |")
        return "\n".join(lines) + "\n"

    def plot(self, path: str | Path) -> Path:
        """Horizontal bar chart of output SQNR per group (most sensitive at the top)."""
        from .._compat import require

        mpl = require("matplotlib")
        mpl.use("Agg")
        import matplotlib.pyplot as plt

        rows = self.rows
        fig, ax = plt.subplots(figsize=(7, max(3, 0.22 * len(rows) + 1)))
        ax.barh([r.group for r in rows][::-1], [r.sqnr_db for r in rows][::-1], color="tab:blue")
        ax.set_xlabel("output SQNR vs FP32 (dB), group quantized alone; lower = more sensitive")
        ax.set_title(f"Quantization sensitivity ({self.scheme['name']})")
        ax.tick_params(axis="y", labelsize=7)
        fig.tight_layout()
        fig.savefig(str(path), dpi=110)
        plt.close(fig)
        return Path(path)


def analyse_sensitivity(fp32_model: Path, scheme: Scheme, scorer: OnnxScorer, which: str,
                        groups: Sequence[MatMulGroup], workdir: Path, *, calibration: Sequence[dict[str, Any]] = (),
                        cache_dir: Path | None = None, pad_id: int = 0,
                        on_group: Callable[[str], None] | None = None) -> SensitivityReport:
    """Quantize each group alone with `scheme` and rank groups by output SQNR and metric drop on set `which`."""
    fp32_metric = scorer.metric(fp32_model, which)
    rows = []
    for g in groups:
        if scheme.kind == "dynamic" and not scheme.attention and not g.weighted:
            continue  # this dynamic scheme only quantizes matmuls with a constant weight
        out = Path(workdir) / f"sens-{g.name}.onnx"
        quantize_onnx(fp32_model, out, scheme, calibration=calibration, groups=groups, only=[g.name],
                      cache_dir=cache_dir, pad_id=pad_id)
        m = scorer.metric(out, which)
        rows.append(GroupSensitivity(g.name, len(g.nodes), g.params, m, round((fp32_metric - m) * 100, 4),
                                     round(scorer.sqnr(fp32_model, out, which), 3)))
        scorer.forget(out)
        out.unlink()
        if on_group:
            on_group(g.name)
    rows.sort(key=lambda r: (r.sqnr_db, -r.drop_points))
    return SensitivityReport(scheme.to_dict(), scorer.task.primary, fp32_metric, scorer.describe(which), rows)
