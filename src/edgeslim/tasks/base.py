"""Task specs: where a task's files live, how to read them, which metrics score it."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import DataError
from ..registry import Registry
from ..settings import Settings, get_settings


@dataclass(frozen=True)
class TextExample:
    """One sentence or sentence pair with its label (int class or float score)."""

    text_a: str
    text_b: str | None
    label: int | float


@dataclass(frozen=True)
class TaskSpec:
    """A benchmark task: its files under the data directory, reader, labels and metrics."""

    name: str
    kind: str                                   # classification | regression | qa | image-classification
    folder: str                                 # relative to the data directory
    files: dict[str, str]                       # split -> file or folder name inside `folder`
    reader: Callable[[Path, "TaskSpec"], list[Any]]
    labels: tuple[str, ...] = ()                # class names by index; () for regression / QA
    metrics: tuple[str, ...] = ("accuracy",)
    primary: str = "accuracy"
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)  # reader options (columns, header, ...)

    @property
    def num_labels(self) -> int:
        return 1 if self.kind == "regression" else len(self.labels)

    def path(self, split: str, settings: Settings | None = None) -> Path:
        """Path of a split's file, checked to exist."""
        settings = settings or get_settings()
        if split not in self.files:
            raise DataError(f"task {self.name!r} has no split {split!r}; available: {', '.join(self.files)}")
        base = settings.require_data_dir() / self.folder
        p = base / self.files[split]
        if not p.exists():
            raise DataError(
                f"{self.name} {split} data not found at {p}. Put the file there or point "
                f"EDGESLIM_DATA at a data directory that has {self.folder}/{self.files[split]}"
            )
        return p

    def load(self, split: str, settings: Settings | None = None, limit: int | None = None) -> list[Any]:
        """Read a split's examples (optionally the first `limit`)."""
        examples = self.reader(self.path(split, settings), self)
        if not examples:
            raise DataError(f"{self.name} {split} has no examples ({self.path(split, settings)})")
        return examples[:limit] if limit else examples


TASKS: Registry[TaskSpec] = Registry("task")


def register_task(spec: TaskSpec) -> TaskSpec:
    return TASKS.add(spec.name, spec)


def get_task(name: str) -> TaskSpec:
    """Look a task up by name (case-insensitive; 'sst-2' and 'SST2' both find 'sst2')."""
    key = name.lower().replace("-", "").replace("_", "")
    return TASKS.get(key if key in TASKS else name)


def label_counts(examples: Sequence[Any]) -> dict[Any, int]:
    """How many examples carry each label."""
    out: dict[Any, int] = {}
    for e in examples:
        out[e.label] = out.get(e.label, 0) + 1
    return out
