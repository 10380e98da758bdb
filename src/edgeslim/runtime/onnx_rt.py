"""ONNX Runtime adapter: load an ONNX artifact, run batches, fixed thread count."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .._compat import require
from ..artifact import ModelArtifact
from ..inputs import foreign_loader
from . import Forward, model_file, register_runtime


def onnx_file(art: ModelArtifact) -> Path:
    """The .onnx file inside an ONNX artifact."""
    return model_file(art, "model.onnx")


OPTIMIZATION_LEVELS = ("disabled", "basic", "extended", "all")


def make_session(model: str | Path | bytes, threads: int = 2, *, optimization: str = "all",
                 optimized_path: str | Path | None = None, spinning: bool = True) -> Any:
    """The one ONNX Runtime session builder: CPU, `threads` intra-op threads, sequential execution.

    `model` is a file path or serialized bytes; `optimization` the graph optimisation level; with `optimized_path`
    ORT also writes the optimised graph there (offline optimisation); `spinning=False` stops idle intra-op threads
    from busy-waiting (a server needs that CPU between batches).
    """
    ort = require("onnxruntime")
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    if not spinning:
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.graph_optimization_level = {"disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
                                   "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                                   "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                                   "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}[optimization]
    if optimized_path is not None:
        so.optimized_model_filepath = str(optimized_path)
    return ort.InferenceSession(model if isinstance(model, bytes) else str(model), so,
                                providers=["CPUExecutionProvider"])


def session_forward(sess: Any) -> Forward:
    """forward(batch) -> first output as numpy; feeds only the graph's inputs (ids as int64, pixels as float32)."""
    import numpy as np

    names = [i.name for i in sess.get_inputs()]

    def fwd(batch: dict[str, Any]) -> Any:
        feed = {}
        for n in names:
            v = batch[n]
            a = np.asarray(v.numpy() if hasattr(v, "numpy") else v)
            feed[n] = a.astype(np.int64 if a.dtype.kind in "iub" else np.float32, copy=False)
        return sess.run(None, feed)[0]

    return fwd


@register_runtime("onnx")
def load_onnx(art: ModelArtifact, threads: int = 2) -> Forward:
    """Load an ONNX artifact in ONNX Runtime (CPU)."""
    path = model_file(art, "model.onnx", must_exist=True)
    with foreign_loader(path, "ONNX model", "re-export it (edgeslim export) or pass an intact .onnx file"):
        run = session_forward(make_session(path, threads))

    def forward(batch: dict[str, Any]) -> Any:
        with foreign_loader(path, "inputs into the ONNX model", "the batch does not fit the model's inputs (shape or "
                            "type): check the artifact's static_shape and re-export it (edgeslim export)"):
            return run(batch)

    if art.extra.get("static_shape"):  # exported without dynamic axes: pad/cut batches to the file's shape
        from .static import pad_id, static_shape, static_text_forward

        return static_text_forward(forward, *static_shape(art.extra, path), pad_id(art.extra, path), what=str(path))
    return forward
