"""Model loading: packaged offline weights, user HF folders, tiny test models, normalised config."""
from __future__ import annotations

from .config import NormalizedConfig, normalize_config
from .zoo import PACKAGED_MODELS, resolve_model_source

__all__ = ["NormalizedConfig", "normalize_config", "PACKAGED_MODELS", "resolve_model_source"]
