"""Export an HF PyTorch artifact to ONNX (dynamic batch and sequence axes), checked by onnx.checker,
optionally graph-optimised by ONNX Runtime, INT8 by ONNX Runtime's dynamic quantization, and
validated against the PyTorch reference like every export."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._compat import require
from ..errors import ConfigError
from ..runtime.onnx_export import export_text_model_to_onnx
from .base import DIMENSIONS, ExportJob, TargetConfig, TargetInfo, register_target

# tokenizer files, plus config.json: the model's shape, so profile / quantize predictions work on the export too
TEXT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OPTIMIZE_LEVELS = ("none", "basic", "extended")


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






def optimize_onnx(path: Path, level: str) -> None:
    """Rewrite `path` with ONNX Runtime's offline graph optimisations at `level` (basic or extended)."""
    from ..runtime.onnx_rt import make_session

    tmp = path.with_suffix(".opt.onnx")
    make_session(path, optimization=level, optimized_path=tmp)
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


TARGET = register_target(TargetInfo("onnx", "onnx", "model.onnx", ("fp32", "int8"), DIMENSIONS, runs_here=True, extra="onnx",
                                    backends=("onnx", "onnxruntime")), convert_onnx, ExportOnnxConfig)
export_onnx = TARGET.step
