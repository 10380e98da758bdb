"""One small adapter per runtime: load an artifact and give back `forward(batch) -> numpy outputs`.

A batch is the dict `collate` makes (input_ids, token_type_ids, attention_mask as int64 torch
tensors, or pixel_values). Each runtime module registers a loader for the artifact format it runs.
"""
from __future__ import annotations

from typing import Any, Callable

from ..artifact import ModelArtifact
from ..registry import Registry

Forward = Callable[[dict[str, Any]], Any]
Loader = Callable[[ModelArtifact, int], Forward]  # (artifact, threads) -> forward

# Each module of this package registers the loader of the format it runs (imported on first lookup; the
# modules load their heavy backends inside the loaders).
RUNTIMES: Registry[Loader] = Registry("runtime for artifact format", discover="edgeslim.runtime")


def register_runtime(fmt: str) -> Callable[[Loader], Loader]:
    """Register the loader for artifacts of format `fmt`."""
    def deco(fn: Loader) -> Loader:
        return RUNTIMES.add(fmt, fn)
    return deco


def load_forward(art: ModelArtifact, threads: int = 2) -> Forward:
    """A forward function for `art` in the runtime that runs its format."""
    return RUNTIMES.get(art.format)(art, threads)
