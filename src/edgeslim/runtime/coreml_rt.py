"""Core ML adapter: predict with an `.mlpackage` where Core ML exists (macOS); elsewhere say so plainly."""
from __future__ import annotations

import platform
from pathlib import Path

import numpy as np

from .._compat import require
from ..artifact import ModelArtifact
from ..errors import StepError
from . import Forward, model_file, register_runtime
from .static import pad_id, static_shape, static_text_forward


def mlpackage_dir(art: ModelArtifact) -> Path:
    """The .mlpackage folder inside a Core ML artifact."""
    return model_file(art, "model.mlpackage")


def coreml_can_predict() -> tuple[bool, str]:
    """Whether Core ML prediction can run on this machine, and why not."""
    if platform.system() != "Darwin":
        return False, f"Core ML prediction needs macOS (this is {platform.system()} {platform.machine()})"
    return True, ""


@register_runtime("mlpackage")
def load_coreml(art: ModelArtifact, threads: int = 2) -> Forward:
    """Load a Core ML artifact for prediction on the CPU (macOS only)."""
    ok, why = coreml_can_predict()
    if not ok:
        raise StepError(f"cannot run {mlpackage_dir(art)}: {why}. Its spec is validated at export; "
                        "run it on a Mac to measure accuracy and speed")
    ct = require("coremltools")
    model = ct.models.MLModel(str(mlpackage_dir(art)), compute_units=ct.ComputeUnit.CPU_ONLY)
    batch, seq_len = static_shape(art.extra, mlpackage_dir(art))
    out_name = art.extra.get("output", "logits")

    def run(feed: dict[str, np.ndarray]) -> np.ndarray:
        return np.asarray(model.predict({k: v.astype(np.int32) for k, v in feed.items()})[out_name])

    return static_text_forward(run, batch, seq_len, pad_id(art.extra, mlpackage_dir(art)),
                               what=str(mlpackage_dir(art)))
