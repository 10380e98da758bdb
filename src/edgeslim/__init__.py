"""edgeslim: make a transformer small, fast and measured for edge devices.

Importing edgeslim is light: no torch, onnxruntime or exporter is loaded until a function needs it.
"""
from __future__ import annotations

from .artifact import ModelArtifact
from .context import RunContext
from .errors import (
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
from .registry import STEPS, register_step
from .settings import get_settings

__version__ = "0.1.0"

__all__ = [
    "ModelArtifact", "RunContext", "STEPS", "register_step", "get_settings",
    "EdgeslimError", "ConfigError", "DataError", "ModelError", "RecipeError", "StepError",
    "ExportMismatchError", "HardwareError", "MissingBackendError", "__version__",
]
