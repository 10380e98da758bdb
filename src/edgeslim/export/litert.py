"""Export to LiteRT (`.tflite`) with litert-torch: FP32, or INT8 through litert-torch's PT2E quantizer."""
from __future__ import annotations

import contextlib
import io
import logging
import os
from pathlib import Path
from typing import Any

from .._compat import require
from ..errors import EdgeslimError, StepError
from .base import ExportJob, TargetConfig, TargetInfo, register_target



@contextlib.contextmanager
def quiet_converter():
    """Silence litert-torch's progress lines and TF/absl logging (they go to stdout/stderr at INFO)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    level = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            yield buf
    finally:
        logging.getLogger().setLevel(level)


def convert_litert(job: ExportJob, precision: str, out_file: Path, cfg: TargetConfig) -> dict[str, Any]:
    """litert_torch.convert the model at its static shape; INT8 is PT2E-quantized first. Returns facts for `extra`."""
    import torch

    litert_torch = require("litert_torch")
    example = job.example()
    facts: dict[str, Any] = {"converter": f"litert-torch {getattr(litert_torch, '__version__', '?')}"}
    try:
        with quiet_converter(), torch.no_grad():
            if precision == "int8":
                from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
                from litert_torch.quantize.quant_config import QuantConfig

                from .pt2e import quantize_pt2e

                quantizer = PT2EQuantizer().set_global(get_symmetric_quantization_config(
                    is_per_channel=True, is_dynamic=cfg.int8_scheme == "dynamic"))
                qmodel = quantize_pt2e(job.module, example, job.calibration(), quantizer, fold_quantize=False)
                edge = litert_torch.convert(qmodel, (), sample_kwargs=example,
                                            quant_config=QuantConfig(pt2e_quantizer=quantizer))
                facts.update(int8_scheme=cfg.int8_scheme, quantizer="litert-torch PT2EQuantizer, per-channel",
                             calibration=job._cache.get("calibration_source"))
            else:
                edge = litert_torch.convert(job.module, (), sample_kwargs=example)
            edge.export(str(out_file))
    except EdgeslimError:
        raise
    except Exception as exc:  # the converter raises many types; name the step and keep the cause
        raise StepError(f"LiteRT conversion failed ({precision}): {type(exc).__name__}: {exc}") from exc
    return facts


TARGET = register_target(TargetInfo("litert", "tflite", "model.tflite", ("fp32", "int8"), (), runs_here=True, extra="litert",
                                    backends=("litert_torch", "ai_edge_litert")), convert_litert)
