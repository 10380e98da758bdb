"""Export an HF PyTorch artifact to ONNX (dynamic batch and sequence axes), checked by onnx.checker,
optionally graph-optimised by ONNX Runtime, INT8 by ONNX Runtime's dynamic quantization, and
validated against the PyTorch reference like every export."""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._compat import require
from ..artifact import ModelArtifact
from ..context import RunContext
from ..errors import ConfigError
from ..registry import register_step
from .export_base import DIMENSIONS, TARGETS, ExportJob, TargetConfig, export_target

# tokenizer files, plus config.json: the model's shape, so profile / quantize predictions work on the export too
SIDECAR_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json", "config.json")
TEXT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OPTIMIZE_LEVELS = ("none", "basic", "extended")
TARGET = TARGETS["onnx"]


@dataclass(frozen=True)
class ExportOnnxConfig(TargetConfig):
    """Export to ONNX with the TorchScript-based exporter (one self-contained .onnx file)."""

    opset: int = 17
    optimize: str = "none"     # ONNX Runtime offline graph optimisation: none | basic (portable) | extended (ORT-only)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 13 <= self.opset <= 21:
            raise ConfigError(f"export.onnx: opset must be in 13..21, got {self.opset}")
        if self.optimize not in OPTIMIZE_LEVELS:
            raise ConfigError(f"export.onnx: optimize must be one of {', '.join(OPTIMIZE_LEVELS)}, got {self.optimize!r}")


def copy_sidecar_files(src: Path, dst: Path) -> None:
    """Copy a model folder's tokenizer files and config.json so the exported artifact is self-contained."""
    for name in SIDECAR_FILES:
        if (Path(src) / name).is_file():
            shutil.copy2(Path(src) / name, Path(dst) / name)


def export_text_model_to_onnx(model: Any, out_file: Path, opset: int = 17, seq_len: int = 16,
                              dynamic: tuple[str, ...] = DIMENSIONS, batch: int = 2) -> Path:
    """torch.onnx.export a text model taking (input_ids, attention_mask, token_type_ids) -> logits."""
    import warnings

    import torch

    from .export_base import text_module

    require("onnx")
    model = model.eval()
    ids = torch.ones((batch, seq_len), dtype=torch.long)
    mask = torch.ones((batch, seq_len), dtype=torch.long)
    tti = torch.zeros((batch, seq_len), dtype=torch.long)
    dims = {0: "batch", 1: "sequence"}
    axes = {name: {i: d for i, d in dims.items() if d in dynamic} for name in TEXT_INPUTS}
    axes["logits"] = {0: "batch"} if "batch" in dynamic else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(text_module(model), (ids, mask, tti), str(out_file), input_names=list(TEXT_INPUTS),
                          output_names=["logits"], dynamic_axes={k: v for k, v in axes.items() if v},
                          opset_version=opset, dynamo=False)
    import onnx

    onnx.checker.check_model(str(out_file))
    return out_file


def optimize_onnx(path: Path, level: str) -> None:
    """Rewrite `path` with ONNX Runtime's offline graph optimisations at `level` (basic or extended)."""
    ort = require("onnxruntime")
    so = ort.SessionOptions()
    so.graph_optimization_level = {"basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                                   "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED}[level]
    tmp = path.with_suffix(".opt.onnx")
    so.optimized_model_filepath = str(tmp)
    ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    tmp.replace(path)


def convert_onnx(job: ExportJob, precision: str, out_file: Path, cfg: TargetConfig) -> dict[str, Any]:
    """Write model.onnx (FP32, or INT8 by ONNX Runtime dynamic quantization, per-channel weights)."""
    opset = getattr(cfg, "opset", 17)
    level = getattr(cfg, "optimize", "none")
    dynamic = DIMENSIONS if cfg.dynamic is None else cfg.dynamic
    facts: dict[str, Any] = {"opset": opset, "optimize": level}
    if precision == "int8":
        fp32 = out_file.with_name("fp32.onnx")
        export_text_model_to_onnx(job.net, fp32, opset, job.seq_len, dynamic, job.batch)
        quant = require("onnxruntime.quantization")
        quant.quantize_dynamic(str(fp32), str(out_file), per_channel=True, weight_type=quant.QuantType.QInt8)
        fp32.unlink()
        facts["int8_scheme"] = "dynamic (onnxruntime quantize_dynamic, per-channel QInt8 weights)"
    else:
        export_text_model_to_onnx(job.net, out_file, opset, job.seq_len, dynamic, job.batch)
    if level != "none":
        optimize_onnx(out_file, level)
    return facts


@register_step("export.onnx", ExportOnnxConfig)
def export_onnx(model: ModelArtifact, cfg: ExportOnnxConfig, ctx: RunContext) -> ModelArtifact:
    """Export an HF text model to `model.onnx` beside its tokenizer, validated in ONNX Runtime."""
    job = ExportJob.open(model, cfg, ctx)
    return export_target(job, TARGET, convert_onnx, cfg, ctx.out_dir)
