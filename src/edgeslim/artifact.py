"""ModelArtifact: a frozen record of one model version on disk, with lineage.

An artifact is a folder holding the model files (an HF folder, `model.onnx`, `model.tflite`, ...)
and a manifest `edgeslim.json`. The content hash covers every file but the manifest, so the same
weights always hash the same; `parent_hash` links each artifact to the one it was made from.

Integrity: the manifest also lists every file's size, mtime and sha256 (`files`). Loading checks sizes and
mtimes (fast); a file whose mtime moved is re-hashed, so a copied folder still loads and a changed byte fails
with a ModelError naming the file. `verify()` (run before every export) re-hashes everything. Manifests written
before the file list existed load as before (`verify()` then compares the folder hash only).
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


def model_files(folder: str | Path) -> list[Path]:
    """The files the content hash covers: every file under `folder` but the manifest and hidden files, sorted."""
    return [p for p in sorted(Path(folder).rglob("*"))
            if p.is_file() and p.name != MANIFEST and not p.name.startswith(".")]


def hash_files(folder: str | Path) -> tuple[str, dict[str, dict[str, Any]]]:
    """The content hash and the per-file table (size, mtime_ns, sha256 by relative path), in one read."""
    folder = Path(folder)
    h = hashlib.sha256()
    table: dict[str, dict[str, Any]] = {}
    for p in model_files(folder):
        rel = p.relative_to(folder).as_posix()
        st = p.stat()
        one = hashlib.sha256()
        h.update(rel.encode())
        h.update(b"\0")
        with p.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
                one.update(chunk)
        table[rel] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": one.hexdigest()}
    return h.hexdigest(), table


def content_hash(folder: str | Path) -> str:
    """sha256 over the relative paths and bytes of every file in `folder` except the manifest."""
    return hash_files(folder)[0]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
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
    files: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)  # rel path -> size, mtime_ns, sha256

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

    def to_dict(self, *, files: bool = False) -> dict[str, Any]:
        """The record as plain data; the per-file table only with `files` (the manifest has it, displays not)."""
        d = dataclasses.asdict(self)
        d["path"] = str(self.path)
        if not files:
            d.pop("files")
        return d

    def save_manifest(self) -> Path:
        d = self.to_dict(files=True)
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
        digest, files = hash_files(path)
        art = cls(
            path=path,
            format=format,
            task=task if task is not None else (parent.task if parent else None),
            content_hash=digest,
            parent_hash=parent.content_hash if parent else None,
            step=step,
            step_config=dict(step_config or {}),
            metrics=dict(metrics or {}),
            extra=dict(extra or {}),
            created=time.time(),
            files=files,
        )
        art.save_manifest()
        return art

    def check_files(self, *, full: bool = False) -> None:
        """Check the folder against the manifest's file list: sizes and mtimes (re-hashing a file whose mtime
        moved), or with `full` every file's sha256 and the content hash. Raises ModelError naming the file."""
        fix = (f"Restore the file, re-run the step that made {self.path}, or delete {self.path / MANIFEST} to "
               "adopt the folder as a new source")
        if not self.files:   # a manifest from before the file list: only the full check can say anything
            if full and self.content_hash and content_hash(self.path) != self.content_hash:
                raise ModelError(f"{self.path}: the model files changed since the artifact was made (content hash "
                                 f"{self.short_hash} expected). {fix}")
            return
        on_disk = {p.relative_to(self.path).as_posix(): p for p in model_files(self.path)}
        missing = sorted(set(self.files) - set(on_disk))
        if missing:
            raise ModelError(f"{self.path / missing[0]} is missing (listed in {MANIFEST}). {fix}")
        added = sorted(set(on_disk) - set(self.files))
        if added and full:
            raise ModelError(f"{on_disk[added[0]]} is not part of the artifact (not in {MANIFEST}). Remove it or "
                             f"re-run the step that made {self.path}")
        for rel, want in self.files.items():
            st = on_disk[rel].stat()
            if st.st_size != want["size"]:
                raise ModelError(f"{on_disk[rel]} changed: {st.st_size} bytes, {want['size']} when the artifact "
                                 f"was made. {fix}")
            if (full or st.st_mtime_ns != want["mtime_ns"]) and file_sha256(on_disk[rel]) != want["sha256"]:
                raise ModelError(f"{on_disk[rel]} changed: its content hash differs from the one recorded in "
                                 f"{MANIFEST}. {fix}")
        if full and content_hash(self.path) != self.content_hash:
            raise ModelError(f"{self.path}: the content hash differs from {MANIFEST}'s. {fix}")

    def verify(self) -> "ModelArtifact":
        """Re-hash every file and compare with the manifest (ModelError naming a changed file); returns self."""
        self.check_files(full=True)
        return self

    @classmethod
    def load(cls, path: str | Path, *, verify: bool = False) -> "ModelArtifact":
        """Read an artifact folder's manifest and check its files (sizes and mtimes; every byte with `verify`);
        a plain HF folder without a manifest is adopted as a source."""
        path = Path(path)
        if not path.exists():
            raise ModelError(f"model path not found: {path}")
        manifest = path / MANIFEST
        if manifest.is_file():
            from .inputs import load_user_json, type_name

            d = load_user_json(manifest, "artifact manifest", ModelError)
            if not isinstance(d, dict) or not isinstance(d.get("format"), str):
                raise ModelError(f"corrupt manifest {manifest}: expected a JSON object with a 'format' "
                                 f"({', '.join(FORMATS)}), got {type_name(d)}. Delete it to re-adopt the folder")
            if d["format"] not in FORMATS:
                raise ModelError(f"corrupt manifest {manifest}: unknown artifact format {d['format']!r}; expected "
                                 f"one of {', '.join(FORMATS)}. Delete it to re-adopt the folder")
            for key in ("extra", "metrics", "step_config", "files"):
                if key in d and d[key] is None:
                    d[key] = {}
                if not isinstance(d.get(key, {}), dict):
                    raise ModelError(f"corrupt manifest {manifest}: '{key}' must be a mapping, got "
                                     f"{type_name(d[key])}. Delete it to re-adopt the folder")
            for key in ("content_hash", "step"):
                if key in d and d[key] is None:
                    del d[key]   # the field's default
            if not isinstance(d.get("created", 0.0), (int, float)) or isinstance(d.get("created"), bool):
                raise ModelError(f"corrupt manifest {manifest}: 'created' must be a number (a Unix time), got "
                                 f"{type_name(d['created'])}. Delete it to re-adopt the folder")
            for key in ("content_hash", "step", "task", "parent_hash"):
                if d.get(key) is not None and not isinstance(d[key], str):
                    raise ModelError(f"corrupt manifest {manifest}: '{key}' must be a string, got "
                                     f"{type_name(d[key])}. Delete it to re-adopt the folder")
            files = d.get("files") or {}
            if any(not isinstance(v, dict) or not {"size", "mtime_ns", "sha256"} <= set(v) for v in files.values()):
                raise ModelError(f"corrupt manifest {manifest}: 'files' entries need size, mtime_ns and sha256. "
                                 "Delete it to re-adopt the folder")
            known = {f.name for f in dataclasses.fields(cls)}
            art = cls(path=path, **{k: v for k, v in d.items() if k in known and k != "path"})
            art.check_files(full=verify)
            return art
        if (path / "config.json").is_file():
            return cls(path=path, format="hf", content_hash=content_hash(path), step="source")
        if path.is_file():
            raise ModelError(f"{path} is a file; pass the artifact folder that contains it")
        raise ModelError(
            f"{path} is not a model: no {MANIFEST} and no config.json. "
            "Pass an edgeslim artifact folder or a Hugging Face model folder"
        )
