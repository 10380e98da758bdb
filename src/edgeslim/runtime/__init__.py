"""One small adapter per runtime: load an artifact and give back `forward(batch) -> numpy outputs`.

A batch is the dict `collate` makes (input_ids, token_type_ids, attention_mask as int64 torch
tensors, or pixel_values). Each runtime module registers a loader for the artifact format it runs.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ..artifact import ModelArtifact
from ..errors import ModelError
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


def model_file(art: ModelArtifact, default: str, *, must_exist: bool = False) -> Path:
    """The model file inside an artifact folder: its manifest's `extra.file`, else `default`."""
    name = art.extra.get("file", default)
    if not isinstance(name, str) or not name or Path(name).is_absolute() or ".." in Path(name).parts:
        raise ModelError(f"{Path(art.path) / 'edgeslim.json'}: extra.file must be a file name inside the artifact "
                         f"folder, got {name!r}; fix: re-export the model (edgeslim export)")
    path = Path(art.path) / name
    if must_exist and not path.exists():
        raise ModelError(f"{path} not found: the {art.format} artifact in {art.path} has lost its model file; "
                         "fix: re-export the model (edgeslim export)")
    return path
