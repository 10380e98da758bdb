"""ModelArtifact: a frozen record of one model version on disk, with lineage.

An artifact is a folder holding the model files (an HF folder, `model.onnx`, `model.tflite`, ...)
and a manifest `edgeslim.json`. The content hash covers every file but the manifest, so the same
weights always hash the same; `parent_hash` links each artifact to the one it was made from.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ModelError
from .fileio import write_json

MANIFEST = "edgeslim.json"
FORMATS = ("hf", "onnx", "tflite", "pte", "mlpackage")


def content_hash(folder: str | Path) -> str:
    """sha256 over the relative paths and bytes of every file in `folder` except the manifest."""
    folder = Path(folder)
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if not p.is_file() or p.name == MANIFEST or p.name.startswith("."):
            continue
        h.update(p.relative_to(folder).as_posix().encode())
        h.update(b"\0")
        with p.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def run_key(*parts: Any) -> str:
    """The one key of "everything this output depends on": sha256 of the parts as sorted JSON, 16 hex digits.

    Used for the pipeline's step cache, training checkpoints and cached teacher outputs, so a changed input,
    option or seed never resumes from a stale file.
    """
    blob = json.dumps(list(parts), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def folder_bytes(folder: str | Path) -> int:
    """Total size in bytes of the model files in `folder` (manifest excluded)."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file() and p.name != MANIFEST)


@dataclass(frozen=True)
class ModelArtifact:
    """One model version: where it lives, what it is for, what it scored, and where it came from."""

    path: Path
    format: str                       # one of FORMATS
    task: str | None = None           # e.g. "sst2"; None for a task-agnostic backbone
    content_hash: str = ""
    parent_hash: str | None = None
    step: str = "source"              # the step that produced it
    step_config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # format-specific facts (precision, base model, ...)
    created: float = 0.0

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ModelError(f"unknown artifact format {self.format!r}; expected one of {', '.join(FORMATS)}")

    @property
    def short_hash(self) -> str:
        return self.content_hash[:12]

    @property
    def size_bytes(self) -> int:
        return folder_bytes(self.path)

    def with_metrics(self, **metrics: Any) -> "ModelArtifact":
        """A copy with metrics merged in, in memory only: the artifact's folder (maybe an installed package or
        another run's output) is never written; the pipeline records the metrics in its own run folder."""
        return dataclasses.replace(self, metrics={**self.metrics, **metrics})

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["path"] = str(self.path)
        return d

    def save_manifest(self) -> Path:
        d = self.to_dict()
        d.pop("path")
        return write_json(Path(self.path) / MANIFEST, d)

    @classmethod
    def create(
        cls,
        path: str | Path,
        format: str,
        *,
        task: str | None = None,
        parent: "ModelArtifact | None" = None,
        step: str = "source",
        step_config: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> "ModelArtifact":
        """Hash the files already written in `path`, write the manifest, return the artifact."""
        path = Path(path)
        art = cls(
            path=path,
            format=format,
            task=task if task is not None else (parent.task if parent else None),
            content_hash=content_hash(path),
            parent_hash=parent.content_hash if parent else None,
            step=step,
            step_config=dict(step_config or {}),
            metrics=dict(metrics or {}),
            extra=dict(extra or {}),
            created=time.time(),
        )
        art.save_manifest()
        return art

    @classmethod
    def load(cls, path: str | Path) -> "ModelArtifact":
        """Read an artifact folder's manifest; a plain HF folder without one is adopted as a source."""
        path = Path(path)
        if not path.exists():
            raise ModelError(f"model path not found: {path}")
        manifest = path / MANIFEST
        if manifest.is_file():
            try:
                d = json.loads(manifest.read_text())
            except json.JSONDecodeError as exc:
                raise ModelError(f"corrupt manifest {manifest}: {exc}. Delete it to re-adopt the folder") from exc
            known = {f.name for f in dataclasses.fields(cls)}
            return cls(path=path, **{k: v for k, v in d.items() if k in known})
        if (path / "config.json").is_file():
            return cls(path=path, format="hf", content_hash=content_hash(path), step="source")
        if path.is_file():
            raise ModelError(f"{path} is a file; pass the artifact folder that contains it")
        raise ModelError(
            f"{path} is not a model: no {MANIFEST} and no config.json. "
            "Pass an edgeslim artifact folder or a Hugging Face model folder"
        )
