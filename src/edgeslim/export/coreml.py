"""Export to Core ML (`.mlpackage`, ML program): FP16, or INT8 weight compression of the FP16 program.

The torch.export route is used (coremltools' jit.trace route breaks on transformers' mask code).
Prediction needs macOS: elsewhere the written package's spec is checked instead (inputs, outputs,
shapes, weight precision) and the artifact says plainly that prediction was skipped.
"""
from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

from .._compat import require
from ..errors import EdgeslimError, ExportMismatchError, StepError
from ..runtime.coreml_rt import coreml_can_predict
from ..runtime.static import TEXT_INPUTS
from .base import ExportJob, TargetConfig, TargetInfo, register_target

OUTPUT = "logits"


@contextlib.contextmanager
def quiet_coremltools():
    """coremltools prints progress bars and version warnings; keep them out of edgeslim's output."""
    logging.getLogger("coremltools").setLevel(logging.ERROR)
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def spec_facts(package: Path) -> dict[str, Any]:
    """Inputs, outputs and weight dtypes read back from a written .mlpackage (no prediction needed)."""
    ct = require("coremltools")
    from coremltools.proto import FeatureTypes_pb2, MIL_pb2

    with quiet_coremltools():
        spec = ct.models.MLModel(str(package), skip_model_load=True).get_spec()
    array_type = FeatureTypes_pb2.ArrayFeatureType.ArrayDataType.Name

    def feature(f: Any) -> dict[str, Any]:
        return {"name": f.name, "shape": [int(d) for d in f.type.multiArrayType.shape],
                "dtype": array_type(f.type.multiArrayType.dataType)}

    consts: Counter[str] = Counter()
    ops: Counter[str] = Counter()
    if spec.WhichOneof("Type") != "mlProgram":
        raise ExportMismatchError(f"{package}: expected an ML program, found {spec.WhichOneof('Type')}")
    for fn in spec.mlProgram.functions.values():
        for block in fn.block_specializations.values():
            for op in block.operations:
                ops[op.type] += 1
                if op.type == "const":
                    t = op.attributes["val"].type.tensorType
                    n = 1
                    for d in t.dimensions:
                        n *= int(d.constant.size) if d.WhichOneof("dimension") == "constant" else 1
                    if n >= 256:  # weights, not shape constants
                        consts[MIL_pb2.DataType.Name(t.dataType)] += 1
    return {"inputs": [feature(f) for f in spec.description.input],
            "outputs": [feature(f) for f in spec.description.output],
            "weight_consts": dict(consts), "int8_weights": ops.get("constexpr_affine_dequantize", 0)
            + ops.get("constexpr_blockwise_shift_scale", 0), "spec_version": int(spec.specificationVersion)}


def check_spec(facts: dict[str, Any], precision: str, batch: int, seq_len: int, num_labels: int,
               n_linear: int) -> list[str]:
    """What is wrong with a package's spec for this export (empty when it is right)."""
    problems = []
    got_inputs = {f["name"]: f for f in facts["inputs"]}
    for name in TEXT_INPUTS:
        f = got_inputs.get(name)
        if f is None:
            problems.append(f"input {name!r} missing (has {sorted(got_inputs)})")
        elif f["shape"] != [batch, seq_len] or f["dtype"] != "INT32":
            problems.append(f"input {name!r} is {f['dtype']}{f['shape']}, expected INT32[{batch}, {seq_len}]")
    outs = {f["name"]: f for f in facts["outputs"]}
    out = outs.get(OUTPUT)
    if out is None:
        problems.append(f"output {OUTPUT!r} missing (has {sorted(outs)})")
    elif out["shape"] != [batch, num_labels]:
        problems.append(f"output {OUTPUT!r} has shape {out['shape']}, expected [{batch}, {num_labels}]")
    if facts["weight_consts"].get("FLOAT32", 0):
        problems.append(f"{facts['weight_consts']['FLOAT32']} weight tensors are still FP32")
    if precision == "int8" and facts["int8_weights"] < n_linear:
        problems.append(f"only {facts['int8_weights']} INT8-compressed weights for {n_linear} linear layers")
    if precision == "fp16" and facts["int8_weights"]:
        problems.append(f"{facts['int8_weights']} INT8 weights in an FP16 export")
    return problems


def convert_coreml(job: ExportJob, precision: str, out_file: Path, cfg: TargetConfig) -> dict[str, Any]:
    """Convert through torch.export to an FP16 ML program; INT8 compresses its weights per channel."""
    import torch

    ct = require("coremltools")
    example = job.example()
    try:
        with quiet_coremltools(), torch.no_grad():
            exported = torch.export.export(job.module, (), kwargs=example).run_decompositions()
            model = ct.convert(exported, convert_to="mlprogram", compute_precision=ct.precision.FLOAT16,
                               minimum_deployment_target=ct.target.iOS17,
                               outputs=[ct.TensorType(name=OUTPUT)])
            if precision == "int8":
                import coremltools.optimize.coreml as cto

                op_cfg = cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8",
                                                     granularity="per_channel", weight_threshold=256)
                model = cto.linear_quantize_weights(model, cto.OptimizationConfig(global_config=op_cfg))
            model.save(str(out_file))
    except EdgeslimError:
        raise
    except Exception as exc:
        raise StepError(f"Core ML conversion failed ({precision}): {type(exc).__name__}: {exc}") from exc
    facts = spec_facts(out_file)
    n_linear = sum(1 for m in job.net.modules() if isinstance(m, torch.nn.Linear))
    problems = check_spec(facts, precision, job.batch, job.seq_len, int(job.net.config.num_labels), n_linear)
    if problems:
        raise ExportMismatchError(f"Core ML package {out_file.name} does not match the model: {'; '.join(problems)}")
    ok, why = coreml_can_predict()
    return {"spec_check": {**facts, "passed": True, "linear_layers": n_linear}, "output": OUTPUT,
            "compute_precision": "fp16", "weights": precision,
            "prediction": "run" if ok else f"skipped: {why}; spec validated instead"}


TARGET = register_target(TargetInfo("coreml", "mlpackage", "model.mlpackage", ("fp16", "int8"), (), runs_here=False, extra="coreml",
                                    backends=("coremltools",)), convert_coreml)
