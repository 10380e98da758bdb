"""Will a training run fit in memory? An estimate made before the first step, checked against what is free.

The models are already loaded when training starts, so what is still to come is the gradients and the two AdamW
moments of the trainable parameters, and the activations autograd keeps for one batch (fp32). Per encoder layer
and token that is about 16 hidden-size vectors (attention in/out, the residual adds, LayerNorms, dropout masks),
two FFN-size vectors (up-projection and GELU) and 3 attention maps per head (scores, softmax, dropout); the
estimate is an order of magnitude for a clear early error, not a promise (the kernel OOM-kills beyond it).
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ResourceError

FLOAT = 4   # bytes: training runs in fp32


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a training run will still allocate: optimizer state (grads + 2 moments) and one batch's activations."""

    optimizer_bytes: int
    activation_bytes: int

    @property
    def total(self) -> int:
        return self.optimizer_bytes + self.activation_bytes


def estimate_training_memory(trainable: int, batch: int, seq_len: int, config: Any = None) -> MemoryEstimate:
    """Estimate for `trainable` parameters and a batch of `batch` x `seq_len` tokens on a model with HF `config`."""
    acts = 0
    if config is not None:
        hidden = int(getattr(config, "hidden_size", 0) or 0)
        layers = int(getattr(config, "num_hidden_layers", 0) or 0)
        heads = int(getattr(config, "num_attention_heads", 0) or 0)
        inter = int(getattr(config, "intermediate_size", 4 * hidden) or 4 * hidden)
        acts = FLOAT * batch * seq_len * layers * (16 * hidden + 2 * inter + 3 * heads * seq_len)
    return MemoryEstimate(optimizer_bytes=3 * FLOAT * trainable, activation_bytes=acts)


def available_memory() -> int | None:
    """Bytes this process can still allocate: MemAvailable, capped by a cgroup v2 limit; None if unknown."""
    avail = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024
    except OSError:
        return None
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text())
            avail = min(avail, int(limit) - used) if avail is not None else int(limit) - used
    except (OSError, ValueError):
        pass
    return avail


def require_training_memory(named_params: Iterable[tuple[str, Any]], modules: Mapping[str, Any], batch: int,
                            seq_len: int, what: str) -> MemoryEstimate:
    """Raise ResourceError before training if the estimate exceeds the free memory; returns the estimate."""
    trainable = sum(p.numel() for _, p in named_params if getattr(p, "requires_grad", True))
    config = next((m.config for m in modules.values() if hasattr(getattr(m, "config", None), "hidden_size")), None)
    est = estimate_training_memory(trainable, batch, seq_len, config)
    free = available_memory()
    if os.environ.get("EDGESLIM_SKIP_MEMORY_CHECK") or free is None or est.total <= free:
        return est
    raise ResourceError(
        f"{what}: will not fit in memory: needs about {est.total / 1e9:.2f} GB more (optimizer state "
        f"{est.optimizer_bytes / 1e9:.2f} GB for {trainable:,} trainable parameters, activations "
        f"{est.activation_bytes / 1e9:.2f} GB for a batch of {batch} x {seq_len} tokens), {free / 1e9:.2f} GB "
        "available. Lower batch_size or max_length, or free memory (EDGESLIM_SKIP_MEMORY_CHECK=1 skips this check)")
