"""Hardware profiles (YAML data), analytic cost per op, roofline, and latency/energy prediction.

Light import: nothing here loads torch or onnxruntime. Public entry points:

    load_profile(name) -> HardwareProfile        list_profiles() -> [names]
    predict_latency(model_or_config, profile, batch=1, seq_len=128, precision="fp32") -> Prediction
    model_cost(config, batch=, seq_len=, precision=) -> ModelCost
    trust_for(profile, precision) -> Trust       published_check() -> PublishedCheck   (hardware/check.py, issue #20)
"""
from __future__ import annotations

from .cost import ModelCost, OpCost, model_cost
from .predict import (
    Prediction,
    crossover,
    largest_under_deadline,
    predict_cost,
    predict_latency,
    resolve_config,
)
from .check import published_check, trust_for
from .schema import Efficiency, Figure, HardwareProfile, list_profiles, load_profile, user_dir

__all__ = [
    "load_profile", "list_profiles", "user_dir", "predict_latency", "predict_cost", "model_cost",
    "largest_under_deadline", "crossover", "resolve_config", "HardwareProfile", "Efficiency", "Figure",
    "Prediction", "ModelCost", "OpCost", "trust_for", "published_check",
]
