"""The umbrella `export` step: one model to several runtimes and precisions in one go, each file validated.

Writes one sub-artifact per (target, precision) into `<out>/<target>-<precision>/` and returns a bundle
artifact whose primary file is the first export (so later steps such as `eval` run it) and whose
metrics hold every export's validation and dev-set numbers.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..artifact import ModelArtifact
from ..context import RunContext
from ..errors import ConfigError, EdgeslimError
from ..fileio import atomic_dir
from ..registry import register_step, suggest
from .base import TARGETS, ExportJob, TargetConfig, export_target

DEFAULT_TARGETS = ("onnx", "litert", "executorch", "coreml")


def parse_targets(targets: Any) -> tuple[str, ...]:
    """Targets from a list or a comma-separated string; unknown names fail with a close-match hint."""
    if isinstance(targets, str):
        targets = [t for t in targets.split(",") if t.strip()]
    out = []
    for t in targets:
        t = str(t).strip().lower()
        if t not in TARGETS:
            raise ConfigError(f"export: unknown target {t!r}.{suggest(t, TARGETS.names())}")
        if t not in out:
            out.append(t)
    if not out:
        raise ConfigError(f"export: no targets given; choose from {', '.join(TARGETS.names())}")
    return tuple(out)


@dataclass(frozen=True)
class ExportConfig(TargetConfig):
    """Export to several targets; each (target, precision) is validated against PyTorch."""

    targets: tuple[str, ...] | str = DEFAULT_TARGETS   # a list or "onnx,litert"
    precisions: tuple[str, ...] | str = ()   # () = every precision of each target (fp32+int8; fp16+int8 for Core ML)
    opset: int = 17                    # ONNX only
    optimize: str = "none"             # ONNX only: none | basic | extended
    keep_going: bool = False           # record a failed target and export the rest, instead of stopping

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "targets", parse_targets(self.targets))
        precisions = self.precisions.split(",") if isinstance(self.precisions, str) else self.precisions
        object.__setattr__(self, "precisions", tuple(p.strip() for p in precisions if p.strip()))
        for p in self.precisions:
            if p not in ("fp32", "fp16", "int8"):
                raise ConfigError(f"export: unknown precision {p!r}.{suggest(p, ('fp32', 'fp16', 'int8'))}")
        for t in self.targets:
            if self.precisions and not set(self.precisions) & set(TARGETS.get(t).precisions):
                raise ConfigError(f"export: target {t!r} exports {', '.join(TARGETS.get(t).precisions)}; "
                                  f"none of the requested precisions {', '.join(self.precisions)}")
        self.target_config("onnx", "fp32")  # validates the ONNX options (opset, optimize) up front
        if self.dynamic is not None:  # a dimension some target cannot leave dynamic fails now, not after an hour
            from .base import check_target_options

            for t in self.targets:
                check_target_options(TARGETS.get(t), dataclasses.replace(TargetConfig(), dynamic=self.dynamic,
                                                                     seq_len=self.seq_len, batch=self.batch))

    def disk_factor(self) -> float:
        """Disk the bundle needs, in input-model sizes: one per export (an FP32 file is about the model's size)."""
        return 1.0 + len(self.plan())

    def output_format(self) -> str:
        """The bundle takes the format of its first export (the one later steps run)."""
        return TARGETS.get(self.targets[0]).format

    def backends(self) -> tuple[str, ...]:
        """Python modules the requested targets' converters need."""
        return tuple(m for t in self.targets for m in TARGETS.get(t).backends)

    def plan(self) -> list[tuple[str, str]]:
        """(target, precision) pairs to export, in order."""
        return [(t, p) for t in self.targets for p in TARGETS.get(t).precisions
                if not self.precisions or p in self.precisions]

    def target_config(self, target: str, precision: str) -> TargetConfig:
        """The per-target config for one export."""
        base = {f.name: getattr(self, f.name) for f in dataclasses.fields(TargetConfig)}
        base["precision"] = precision
        if target == "onnx":
            from .onnx import ExportOnnxConfig

            return ExportOnnxConfig(**base, opset=self.opset, optimize=self.optimize)
        return TargetConfig(**base)


def export_many(model: ModelArtifact, cfg: ExportConfig, ctx: RunContext,
                on_export: Any = None) -> ModelArtifact:
    """Export `model` to every (target, precision) of `cfg` into ctx.out_dir; returns the bundle artifact."""
    from ..models.hf import copy_sidecar_files

    job = ExportJob.open(model, cfg, ctx)
    rows: list[dict[str, Any]] = []
    metrics: dict[str, Any] = {}
    first: ModelArtifact | None = None
    first_name = ""
    with atomic_dir(ctx.out_dir) as tmp:
        for target, precision in cfg.plan():
            name = f"{target}-{precision}"
            try:
                art = export_target(job, TARGETS.get(target), cfg.target_config(target, precision),
                                    tmp / name)
            except EdgeslimError as exc:
                if not cfg.keep_going:
                    raise
                rows.append({"export": name, "target": target, "precision": precision, "error": str(exc)})
                metrics[name] = {"error": str(exc)}
                if on_export:
                    on_export(name, None, exc)
                continue
            if first is None:
                first, first_name = art, name
            rows.append({"export": name, "target": target, "precision": precision, "format": art.format,
                         "file": f"{name}/{art.extra['file']}", "size_bytes": art.size_bytes,
                         "hash": art.content_hash})
            metrics[name] = art.metrics
            if on_export:
                on_export(name, art, None)
        if first is None:
            raise EdgeslimError(f"export: every target failed: {'; '.join(r['error'] for r in rows)}")
        copy_sidecar_files(model.path, tmp)
        extra = {**first.extra, "file": f"{first_name}/{first.extra['file']}", "exports": rows}
    return ModelArtifact.create(ctx.out_dir, first.format, task=job.task, parent=model, step="export",
                                step_config={"targets": list(cfg.targets), "plan": [list(p) for p in cfg.plan()],
                                             "seq_len": cfg.seq_len, "batch": cfg.batch},
                                metrics={"exports": metrics}, extra=extra)


@register_step("export", ExportConfig, accepts=("hf",), backends=("torch", "transformers"))
def export(model: ModelArtifact, cfg: ExportConfig, ctx: RunContext) -> ModelArtifact:
    """Export to several runtimes (onnx, litert, executorch, coreml) and precisions, each validated."""
    return export_many(model, cfg, ctx)
