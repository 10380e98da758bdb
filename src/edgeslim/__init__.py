"""edgeslim: make a transformer small, fast and measured for edge devices.

Importing edgeslim is light: no torch, onnxruntime or exporter is loaded until a function needs it. The Python API
(`edgeslim.load`, `edgeslim.prune`, ..., in edgeslim/api.py) loads on first use.
"""
from __future__ import annotations

import importlib
import sys
import types

# The Python API, loaded from edgeslim.api on first access (module __getattr__ below).
_API = ("load", "steps", "run_step", "run_recipe",
       "finetune", "evaluate", "profile", "distill", "prune", "quantize", "export", "validate", "optimize",
       "report", "serve")


class _Package(types.ModuleType):
    """The edgeslim module. The step functions share their names with subpackages (edgeslim/prune/, ...): importing
    a subpackage sets it as an attribute of its parent, which would hide the function, so for those names that
    attribute is not set. The subpackage stays importable (sys.modules), and the function reads attributes it lacks
    from it, so `edgeslim.prune.step` and `import edgeslim.prune.step as s` still work."""

    def __setattr__(self, name: str, value: object) -> None:
        if name in _API and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package   # first, before any subpackage is imported

from .artifact import ModelArtifact  # noqa: E402
from .context import RunContext  # noqa: E402
from .errors import (  # noqa: E402
    ConfigError,
    DataError,
    EdgeslimError,
    ExportMismatchError,
    HardwareError,
    MissingBackendError,
    ModelError,
    RecipeError,
    StepError,
)
from .registry import STEPS, register_step  # noqa: E402
from .settings import get_settings  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "ModelArtifact", "RunContext", "STEPS", "register_step", "get_settings",
    "EdgeslimError", "ConfigError", "DataError", "ModelError", "RecipeError", "StepError",
    "ExportMismatchError", "HardwareError", "MissingBackendError", "__version__", *_API,
]


def __getattr__(name: str) -> object:
    if name in _API:
        return getattr(importlib.import_module(f"{__name__}.api"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
