"""One small adapter per runtime: load an artifact and give back `forward(batch) -> numpy outputs`.

A batch is the dict `collate` makes (input_ids, token_type_ids, attention_mask as int64 torch
tensors, or pixel_values). Each runtime module registers a loader for the artifact format it runs.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable

from ..artifact import ModelArtifact
from ..registry import Registry

Forward = Callable[[dict[str, Any]], Any]
Loader = Callable[[ModelArtifact, int], Forward]  # (artifact, threads) -> forward

RUNTIMES: Registry[Loader] = Registry("runtime for artifact format")

# artifact format -> module that registers its loader (imported on first use: heavy backends)
RUNTIME_MODULES: dict[str, str] = {
    "hf": "edgeslim.runtime.torch_rt",
    "onnx": "edgeslim.runtime.onnx_rt",
    "tflite": "edgeslim.runtime.litert_rt",
    "pte": "edgeslim.runtime.executorch_rt",
    "mlpackage": "edgeslim.runtime.coreml_rt",
}


def register_runtime(fmt: str) -> Callable[[Loader], Loader]:
    """Register the loader for artifacts of format `fmt`."""
    def deco(fn: Loader) -> Loader:
        return RUNTIMES.add(fmt, fn)
    return deco


def load_forward(art: ModelArtifact, threads: int = 2) -> Forward:
    """A forward function for `art` in the runtime that runs its format."""
    if art.format not in RUNTIMES and art.format in RUNTIME_MODULES:
        importlib.import_module(RUNTIME_MODULES[art.format])
    return RUNTIMES.get(art.format)(art, threads)
