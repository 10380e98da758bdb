"""Export to ExecuTorch (`.pte`): torch.export -> to_edge_transform_and_lower with the XNNPACK partitioner.

FP32, or INT8 through PT2E with the XNNPACK quantizer calibrated on real train batches.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .._compat import require
from ..errors import EdgeslimError, StepError
from .base import ExportJob, TargetConfig, TargetInfo, register_target



def lower_to_executorch(module: Any, example: dict[str, Any], out_file: Path) -> dict[str, Any]:
    """torch.export `module` at the example's shapes, delegate what XNNPACK takes, write the .pte."""
    import torch

    require("executorch")
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    exported = torch.export.export(module, (), kwargs=example)
    program = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()]).to_executorch()
    out_file.write_bytes(program.buffer)
    delegated = sum(1 for n in program.exported_program().graph.nodes
                    if n.op == "call_function" and "executorch_call_delegate" in str(n.target))
    return {"xnnpack_delegates": delegated}


def convert_executorch(job: ExportJob, precision: str, out_file: Path, cfg: TargetConfig) -> dict[str, Any]:
    """Write the .pte for `precision`; INT8 is PT2E-quantized with the XNNPACK quantizer. Returns facts for `extra`."""
    import torch

    example = job.example()
    facts: dict[str, Any] = {}
    try:
        with torch.no_grad():
            module = job.module
            if precision == "int8":
                from .pt2e import quantize_pt2e, xnnpack_quantizer

                module = quantize_pt2e(module, example, job.calibration(),
                                       xnnpack_quantizer(dynamic=cfg.int8_scheme == "dynamic"))
                facts.update(int8_scheme=cfg.int8_scheme, quantizer="XNNPACKQuantizer, symmetric per-channel, nn.Linear layers",
                             calibration=job._cache.get("calibration_source"))
            facts.update(lower_to_executorch(module, example, out_file))
    except EdgeslimError:
        raise
    except Exception as exc:
        raise StepError(f"ExecuTorch export failed ({precision}): {type(exc).__name__}: {exc}") from exc
    return facts


TARGET = register_target(TargetInfo("executorch", "pte", "model.pte", ("fp32", "int8"), (), runs_here=True, extra="executorch",
                                    backends=("executorch",)), convert_executorch)
