"""PyTorch runtime for HF-format artifacts."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..artifact import ModelArtifact
from . import Forward, register_runtime


@register_runtime("hf")
def load_torch(art: ModelArtifact, threads: int = 2) -> Forward:
    """Load an HF folder in eager PyTorch with its task head; forward returns logits as numpy."""
    import torch

    from ..models.hf import artifact_kind, load_model


    torch.set_num_threads(threads)
    return torch_forward(load_model(art.path, artifact_kind(art)))


def torch_forward(model: Any) -> Callable[[dict[str, Any]], np.ndarray]:
    """A forward function over a PyTorch HF model returning logits as numpy."""
    import torch

    def fwd(batch: dict[str, Any]) -> np.ndarray:
        with torch.inference_mode():
            return model(**batch).logits.float().numpy()

    return fwd
