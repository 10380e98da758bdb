"""One quantization scheme -> one .onnx file, through `onnxruntime.quantization` and ONNX Runtime's float16 converter.

Schemes: dynamic INT8 (per-channel signed weights, activations quantized at run time), static INT8 in QDQ
format calibrated on task data (MinMax, Percentile or Entropy ranges), FP16 (I/O kept FP32), and any of the
INT8 schemes with some MatMul/Gemm groups left in FP32 (mixed precision). Every temporary file (pre-processing,
calibration, augmented models) goes into a temporary folder that is removed afterwards, never the working folder.
"""
from __future__ import annotations

import contextlib
import io
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from .._compat import require
from ..errors import ConfigError, DataError, StepError

KINDS = ("dynamic", "static", "fp16")
CALIBRATION_METHODS = ("minmax", "percentile", "entropy")
# Ops that only appear in a model that has already been quantized.
QUANTIZED_OPS = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "MatMulInteger", "QLinearMatMul",
                 "DynamicQuantizeMatMul", "MatMulIntegerToFloat", "QGemm", "ConvInteger", "QLinearConv",
                 "QAttention", "MatMulNBits"}

# scope suffix of a BERT-style exporter node name -> short sublayer name (anything else keeps its scope path)
SUBLAYER_NAMES = (
    ("attention/self/query", "q"), ("attention/self/key", "k"), ("attention/self/value", "v"),
    ("attention/self", "attn_matmuls"), ("attention/output/dense", "attn_out"),
    ("intermediate/dense", "ffn_in"), ("output/dense", "ffn_out"),
)


@dataclass(frozen=True)
class Scheme:
    """How to quantize: kind, calibration method (static only), and MatMul/Gemm groups kept in FP32."""

    kind: str                                  # dynamic | static | fp16
    method: str | None = None                  # static: minmax | percentile | entropy
    per_channel: bool = True
    exclude: tuple[str, ...] = ()              # group names (see matmul_groups) left in FP32
    activations: str = "uint8"                 # static activations: uint8 (x86 U8S8) | int8
    embeddings: bool = True                    # also store embedding tables (Gather) as INT8
    attention: bool = False                    # dynamic: also quantize the activation x activation matmuls

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"quantize: scheme kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.kind == "static" and self.method not in CALIBRATION_METHODS:
            raise ConfigError(f"quantize: static calibration must be one of {', '.join(CALIBRATION_METHODS)}, "
                              f"got {self.method!r}")
        if self.activations not in ("uint8", "int8"):
            raise ConfigError(f"quantize: activations must be uint8 or int8, got {self.activations!r}")

    @property
    def name(self) -> str:
        base = {"dynamic": "int8-dynamic", "static": f"int8-static-{self.method}", "fp16": "fp16"}[self.kind]
        if self.kind == "dynamic" and self.attention:
            base += "-attn"
        if self.kind != "fp16" and not self.per_channel:
            base += "-pertensor"
        return base + (f"+fp32x{len(self.exclude)}" if self.exclude else "")

    @property
    def precision(self) -> str:
        """The artifact's `extra.precision`: int8-dynamic | int8-static | fp16 | mixed."""
        if self.exclude:
            return "mixed"
        return {"dynamic": "int8-dynamic", "static": "int8-static", "fp16": "fp16"}[self.kind]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "method": self.method, "per_channel": self.per_channel,
                "exclude": list(self.exclude), "activations": self.activations, "embeddings_int8": self.embeddings,
                "attention_matmuls_int8": self.kind == "static" or (self.kind == "dynamic" and self.attention),
                "weights": "int8 (signed)"
                if self.kind != "fp16" else "fp16", "name": self.name, "precision": self.precision}


@dataclass(frozen=True)
class MatMulGroup:
    """MatMul/Gemm nodes of one sublayer (e.g. `layer.3.ffn_in`); `weighted` = multiplies by a constant weight."""

    name: str
    nodes: tuple[str, ...]
    weighted: bool
    params: int = 0                            # weight elements in the group


def parse_scheme(name: str, *, per_channel: bool = True) -> Scheme:
    """Scheme from its name: dynamic[-attn][-pertensor], static[-minmax|-percentile|-entropy][-pertensor], fp16.

    `-attn`: dynamic INT8 also of the two attention matmuls (activation x activation); `-pertensor`: one weight
    scale per tensor instead of per output channel.
    """
    n = name.strip().lower().removeprefix("int8-")
    if n == "fp16":
        return Scheme("fp16")
    parts = n.split("-")
    pc = per_channel and "pertensor" not in parts
    rest = [p for p in parts[1:] if p != "pertensor"]
    if parts[0] == "dynamic" and rest in ([], ["attn"]):
        return Scheme("dynamic", per_channel=pc, attention=bool(rest))
    if parts[0] == "static" and len(rest) <= 1:
        return Scheme("static", rest[0] if rest else "minmax", per_channel=pc)
    raise ConfigError(f"quantize: unknown scheme {name!r}; use dynamic[-attn][-pertensor], "
                      "static[-minmax|-percentile|-entropy][-pertensor], fp16, mixed or auto")


def _load(model: Any) -> Any:
    onnx = require("onnx")
    return model if isinstance(model, onnx.ModelProto) else onnx.load(str(model))


def detect_precision(model: Any) -> str:
    """'int8' if the graph holds quantization ops, 'fp16' if its weights are float16, else 'fp32'."""
    onnx = require("onnx")
    m = _load(model)
    if any(n.op_type in QUANTIZED_OPS for n in m.graph.node):
        return "int8"
    types = {t.data_type for t in m.graph.initializer}
    if onnx.TensorProto.FLOAT16 in types and onnx.TensorProto.FLOAT not in types:
        return "fp16"
    if sum(t.data_type == onnx.TensorProto.FLOAT16 for t in m.graph.initializer) > len(m.graph.initializer) // 2:
        return "fp16"
    return "fp32"


def check_float_model(model: Any, where: str = "quantize") -> None:
    """Raise StepError if the model is already quantized or FP16: quantize its FP32 parent instead."""
    p = detect_precision(model)
    if p != "fp32":
        raise StepError(f"{where}: the model is already {p.upper()} (it holds quantized/half-precision tensors); "
                        "quantize its FP32 parent artifact instead")


def group_label(scope: str) -> str:
    """Short name of a node scope: '/inner/bert/encoder/layer.0/intermediate/dense' -> 'layer.0.ffn_in'."""
    s = scope.strip("/")
    for prefix in ("inner/", "bert/", "encoder/", "model/"):
        while s.startswith(prefix):
            s = s[len(prefix):]
    m = re.match(r"(layer\.\d+|layers\.\d+|h\.\d+)/(.*)", s)
    if m:
        for suffix, short in SUBLAYER_NAMES:
            if m.group(2) == suffix:
                return f"{m.group(1)}.{short}"
        return f"{m.group(1)}.{m.group(2).replace('/', '.')}"
    s = s.replace("/", ".")
    return s.removesuffix(".dense") or "root"


def matmul_groups(model: Any) -> list[MatMulGroup]:
    """MatMul/Gemm nodes grouped by sublayer (Q, K, V, attention matmuls, attention output, FFN in/out, head)."""
    from onnx import numpy_helper

    m = _load(model)
    inits = {t.name: t for t in m.graph.initializer}
    groups: dict[str, dict[str, Any]] = {}
    for node in m.graph.node:
        if node.op_type not in ("MatMul", "Gemm"):
            continue
        name = node.name or node.output[0]
        scope = name.rsplit("/", 1)[0] if "/" in name else name
        label = group_label(scope)
        w = inits.get(node.input[1])
        g = groups.setdefault(label, {"nodes": [], "weighted": False, "params": 0})
        g["nodes"].append(name)
        if w is not None:
            g["weighted"] = True
            g["params"] += int(numpy_helper.to_array(w).size)
    return [MatMulGroup(k, tuple(v["nodes"]), v["weighted"], v["params"]) for k, v in groups.items()]


def nodes_of(groups: Sequence[MatMulGroup], names: Sequence[str]) -> list[str]:
    """Node names of the named groups; an unknown group name fails with the list of known ones."""
    by = {g.name: g for g in groups}
    out: list[str] = []
    for n in names:
        if n not in by:
            from ..registry import suggest

            raise ConfigError(f"quantize: no MatMul/Gemm group {n!r} in this model.{suggest(n, by)}")
        out.extend(by[n].nodes)
    return out


@contextlib.contextmanager
def scratch_dir(prefix: str = "edgeslim-quant-") -> Iterator[Path]:
    """A temporary folder (system temp, not the working folder) removed on exit."""
    d = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def preprocess(src: str | Path, dst: str | Path) -> Path:
    """ORT's quant_pre_process (symbolic shape inference + basic graph optimisation) of `src` into `dst`.

    Runs with the working folder switched to a temporary one: ONNX Runtime's symbolic shape inference writes
    `sym_shape_infer_temp.onnx` (+ a .data file) into the working folder when it cannot infer every shape.
    If symbolic inference fails, falls back to ONNX shape inference only.
    """
    require("onnxruntime")
    from onnxruntime.quantization.shape_inference import quant_pre_process

    src, dst = Path(src).resolve(), Path(dst).resolve()
    with scratch_dir("edgeslim-prequant-") as tmp, _in_dir(tmp), _quiet_logging():
        try:
            quant_pre_process(str(src), str(dst), auto_merge=True)
        except Exception:  # noqa: BLE001 - ORT raises a bare Exception("Incomplete symbolic shape inference")
            quant_pre_process(str(src), str(dst), skip_symbolic_shape=True)
    return dst


@contextlib.contextmanager
def _in_dir(folder: Path) -> Iterator[None]:
    import os

    old = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(old)


@contextlib.contextmanager
def _quiet_logging() -> Iterator[None]:
    import logging

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def input_names(model_path: str | Path) -> list[str]:
    m = _load(model_path)
    inits = {t.name for t in m.graph.initializer}
    return [i.name for i in m.graph.input if i.name not in inits]


def pad_to_common_width(batches: Sequence[dict[str, Any]], pad_id: int = 0) -> list[dict[str, Any]]:
    """Batch-1 inputs all padded to the longest example (ORT's histogram calibrators stack equal shapes only)."""
    import numpy as np

    rows = []
    for b in batches:
        arrs = {k: np.asarray(v.numpy() if hasattr(v, "numpy") else v, dtype=np.int64) for k, v in b.items()}
        for r in range(arrs["input_ids"].shape[0]):
            rows.append({k: a[r:r + 1] for k, a in arrs.items()})
    width = max(r["input_ids"].shape[1] for r in rows)
    out = []
    for r in rows:
        extra = width - r["input_ids"].shape[1]
        fill = {"input_ids": pad_id, "attention_mask": 0, "token_type_ids": 0}
        out.append({k: np.pad(a, ((0, 0), (0, extra)), constant_values=fill.get(k, 0)) for k, a in r.items()})
    return out


def calibration_reader(batches: Sequence[dict[str, Any]], names: Sequence[str]) -> Any:
    """An ORT CalibrationDataReader over `collate()` batches, feeding only the graph's inputs as int64."""
    import numpy as np

    require("onnxruntime")
    from onnxruntime.quantization import CalibrationDataReader

    if not batches:
        raise DataError("calibration set is empty: static quantization needs at least one batch of task data")

    class TaskCalibrationReader(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = [{n: np.asarray(b[n].numpy() if hasattr(b[n], "numpy") else b[n], dtype=np.int64)
                           for n in names} for b in batches]
            self.pos = 0

        def get_next(self) -> dict[str, Any] | None:
            if self.pos >= len(self.feeds):
                return None
            self.pos += 1
            return self.feeds[self.pos - 1]

        def __len__(self) -> int:
            return len(self.feeds)

        def set_range(self, start_index: int, end_index: int) -> None:
            self.feeds = self.feeds[start_index:end_index]
            self.pos = 0

    return TaskCalibrationReader()


def quantize_onnx(src: str | Path, dst: str | Path, scheme: Scheme, *, calibration: Sequence[dict[str, Any]] = (),
                  groups: Sequence[MatMulGroup] | None = None, only: Sequence[str] | None = None,
                  cache_dir: str | Path | None = None, reduce_range: bool = False, pad_id: int = 0) -> Path:
    """Write `src` (an FP32, ideally pre-processed .onnx) quantized by `scheme` to `dst`.

    `only`: quantize just these groups (sensitivity analysis). `cache_dir`: keep static calibration ranges there
    (one JSON per method) so several static models of one FP32 model calibrate once. MinMax calibrates on the
    batches as given (batch 1: no padding); Percentile/Entropy on the same examples padded to the longest one
    with `pad_id` (ONNX Runtime's histogram collector needs one shape).
    """
    require("onnxruntime")
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_dynamic, quantize_static

    check_float_model(src)
    groups = list(groups) if groups is not None else matmul_groups(src)
    exclude = nodes_of(groups, scheme.exclude)
    include = nodes_of(groups, only) if only is not None else None
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    if scheme.kind == "fp16":
        return convert_fp16(src, dst, keep_fp32_nodes=exclude)
    op_types = ["MatMul", "Gemm"] + (["Gather"] if scheme.embeddings and only is None else [])
    with _quiet_logging(), contextlib.redirect_stdout(io.StringIO()):  # ORT prints calibration progress
        if scheme.kind == "dynamic":
            quantize_dynamic(str(src), str(dst), op_types_to_quantize=op_types,
                             per_channel=scheme.per_channel, reduce_range=reduce_range, weight_type=QuantType.QInt8,
                             nodes_to_quantize=include, nodes_to_exclude=exclude,
                             extra_options={"MatMulConstBOnly": not scheme.attention})
            return dst
        if not calibration:
            raise DataError("calibration set is empty: static quantization needs at least one batch of task data "
                            "(calibration_size >= 1)")
        method = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
                  "entropy": CalibrationMethod.Entropy}[scheme.method]
        with scratch_dir() as tmp:
            cache = Path(cache_dir or tmp) / f"calibration-{scheme.method}.json"
            if scheme.method != "minmax":  # histogram methods need one input shape: pad to the longest example
                calibration = pad_to_common_width(calibration, pad_id)
            quantize_static(str(src), str(dst), calibration_reader(calibration, input_names(src)),
                            quant_format=QuantFormat.QDQ, op_types_to_quantize=op_types,
                            per_channel=scheme.per_channel, reduce_range=reduce_range,
                            activation_type=QuantType.QUInt8 if scheme.activations == "uint8" else QuantType.QInt8,
                            weight_type=QuantType.QInt8, nodes_to_quantize=include, nodes_to_exclude=exclude,
                            calibrate_method=method, calibration_cache_path=cache,
                            extra_options={"WeightSymmetric": True, "ActivationSymmetric": False,
                                           "CalibMovingAverage": False})
    return dst


def convert_fp16(src: str | Path, dst: str | Path, keep_fp32_nodes: Sequence[str] = ()) -> Path:
    """FP16 weights and compute, FP32 graph inputs/outputs (ONNX Runtime's float16 converter)."""
    onnx = require("onnx")
    from onnxruntime.transformers.float16 import convert_float_to_float16

    m = convert_float_to_float16(_load(src), keep_io_types=True, node_block_list=list(keep_fp32_nodes) or None)
    onnx.save(m, str(dst))
    return Path(dst)


def sqnr_db(reference: Any, test: Any) -> float:
    """Signal-to-quantization-noise ratio in dB: 10 log10(sum ref^2 / sum (ref - test)^2); inf if identical."""
    import numpy as np

    ref = np.asarray(reference, dtype=np.float64)
    err = ref - np.asarray(test, dtype=np.float64)
    noise = float((err ** 2).sum())
    if noise == 0.0:
        return float("inf")
    return float(10 * np.log10(float((ref ** 2).sum()) / noise))
