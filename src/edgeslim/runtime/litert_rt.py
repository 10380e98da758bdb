"""LiteRT adapter: run a `.tflite` artifact with the ai-edge-litert Interpreter (XNNPACK delegate, CPU)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .._compat import require
from ..artifact import ModelArtifact
from ..inputs import foreign_loader
from . import Forward, model_file, register_runtime
from .static import StaticRun, pad_id, static_shape, static_text_forward


def tflite_file(art: ModelArtifact) -> Path:
    """The .tflite file inside a LiteRT artifact."""
    return model_file(art, "model.tflite")


def make_interpreter(path: str | Path, threads: int = 2) -> Any:
    """An allocated LiteRT Interpreter with `threads` threads (XNNPACK is applied by default)."""
    interp_mod = require("ai_edge_litert.interpreter")
    it = interp_mod.Interpreter(model_path=str(path), num_threads=threads)
    it.allocate_tensors()
    return it


def interpreter_run(it: Any) -> StaticRun:
    """run(feed) -> first output as float32: casts inputs to the file's dtypes (int32 ids) and dequantizes INT8 outputs."""
    runner = it.get_signature_runner()
    in_details = runner.get_input_details()   # name -> details
    out_name, out_detail = next(iter(runner.get_output_details().items()))

    def run(feed: dict[str, np.ndarray]) -> np.ndarray:
        out = runner(**{n: feed[n].astype(d["dtype"]) for n, d in in_details.items()})[out_name]
        scale, zero = out_detail.get("quantization", (0.0, 0))
        if np.issubdtype(out.dtype, np.integer) and scale:
            return (out.astype(np.float32) - zero) * scale
        return out.astype(np.float32)

    return run


@register_runtime("tflite")
def load_litert(art: ModelArtifact, threads: int = 2) -> Forward:
    """Load a LiteRT artifact (static [batch, seq_len] inputs) in the ai-edge-litert Interpreter."""
    path = model_file(art, "model.tflite", must_exist=True)
    batch, seq_len = static_shape(art.extra, path)
    with foreign_loader(path, "LiteRT model", "re-export it (edgeslim export) or pass an intact .tflite file"):
        run = interpreter_run(make_interpreter(path, threads))
    return static_text_forward(run, batch, seq_len, pad_id(art.extra, path), what=str(path))
