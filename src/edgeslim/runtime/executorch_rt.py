"""ExecuTorch adapter: run a `.pte` artifact with the ExecuTorch Python runtime (XNNPACK delegate, CPU)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .._compat import require
from ..artifact import ModelArtifact
from ..errors import ModelError
from ..inputs import foreign_loader
from . import Forward, model_file, register_runtime
from .static import TEXT_INPUTS, StaticRun, pad_id, static_shape, static_text_forward


def pte_file(art: ModelArtifact) -> Path:
    """The .pte file inside an ExecuTorch artifact."""
    return model_file(art, "model.pte")


def load_method(path: str | Path, threads: int = 2):
    """The `forward` method of a .pte program, with the runtime's thread pool set to `threads`."""
    rt_mod = require("executorch.runtime")
    try:  # XNNPACK's thread pool otherwise takes every core
        from executorch.extension.pybindings import portable_lib

        portable_lib._unsafe_reset_threadpool(threads)
    except (ImportError, AttributeError):
        pass
    program = rt_mod.Runtime.get().load_program(str(path))
    return program.load_method("forward")


def method_run(method, input_order: tuple[str, ...] = TEXT_INPUTS) -> StaticRun:
    """run(feed) -> first output as float32 numpy."""
    import torch

    def run(feed: dict[str, np.ndarray]) -> np.ndarray:
        outs = method.execute([torch.from_numpy(feed[n]) for n in input_order])
        return outs[0].float().numpy()

    return run


@register_runtime("pte")
def load_executorch(art: ModelArtifact, threads: int = 2) -> Forward:
    """Load an ExecuTorch artifact (static [batch, seq_len] inputs) in the ExecuTorch runtime."""
    path = model_file(art, "model.pte", must_exist=True)
    batch, seq_len = static_shape(art.extra, path)
    order = art.extra.get("inputs", TEXT_INPUTS)
    if not isinstance(order, (list, tuple)) or not order or any(n not in TEXT_INPUTS for n in order):
        raise ModelError(f"{path}: the manifest's extra.inputs must list the model's inputs in order, a subset of "
                         f"{', '.join(TEXT_INPUTS)}, got {order!r}; fix: re-export the model (edgeslim export)")
    with foreign_loader(path, "ExecuTorch program", "re-export it (edgeslim export) or pass an intact .pte file"):
        run = method_run(load_method(path, threads), tuple(order))
    return static_text_forward(run, batch, seq_len, pad_id(art.extra, path), what=str(path))
