"""Lazy imports of heavy backends, each mapped to the pip extra that provides it."""
from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingBackendError

# module name -> (human name, extra)
BACKENDS: dict[str, tuple[str, str]] = {
    "torch": ("PyTorch", "torch"),
    "transformers": ("transformers", "torch"),
    "onnx": ("onnx", "onnx"),
    "onnxruntime": ("ONNX Runtime", "onnx"),
    "onnxscript": ("onnxscript", "onnx"),
    "executorch": ("ExecuTorch", "executorch"),
    "torchao": ("torchao", "executorch"),
    "litert_torch": ("litert-torch", "litert"),
    "ai_edge_litert": ("ai-edge-litert", "litert"),
    "coremltools": ("coremltools", "coreml"),
    "scipy": ("SciPy", "onnx"),
    "matplotlib": ("matplotlib", "report"),
    "jinja2": ("Jinja2", "report"),
    "PIL": ("Pillow", "vision"),
    "fastapi": ("FastAPI", "serve"),
    "uvicorn": ("uvicorn", "serve"),
    "prometheus_client": ("prometheus-client", "serve"),
}


def require(module: str) -> ModuleType:
    """Import `module` or raise MissingBackendError naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        name, extra = BACKENDS.get(top, (top, "all"))
        raise MissingBackendError(name, extra, detail=str(exc)) from exc
