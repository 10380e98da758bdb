"""PyTorch runtime for HF-format artifacts."""
from __future__ import annotations

from ..artifact import ModelArtifact
from . import Forward, register_runtime


@register_runtime("hf")
def load_torch(art: ModelArtifact, threads: int = 2) -> Forward:
    """Load an HF folder in eager PyTorch with its task head; forward returns logits as numpy."""
    import torch

    from ..models.hf import artifact_kind, load_model
    from ..train.evaluate import torch_forward

    torch.set_num_threads(threads)
    return torch_forward(load_model(art.path, artifact_kind(art)))
