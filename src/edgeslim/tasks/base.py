"""Task specs: where a task's files live, how to read them, which metrics score it.

Splits. A split is either a file the task names (`files`: "train", "dev", ...) or, for tasks with
`carve_val=True` (the GLUE text tasks) that have a train file, one carved from that file:

- "val": k = min(1000, round(0.2 * n)) of the n train examples, the first k when ranked by the sha256 of their
  text (text_a + "\\t" + (text_b or "")), file index breaking ties. Model selection (quantize search, ...) uses it.
- "train": the train file minus val, and minus every exact duplicate of a val text, so no training step sees a
  val example (SST-2: 1000 of 67,349 go to val; MRPC 734 of 3,668; CoLA 1000 of 8,551).
- "train-full": the raw train file, for counts and for text that is not training data (e.g. a vocabulary).

"dev" (the GLUE dev file) is for reporting only. See docs/data-splits.md.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import DataError
from ..registry import Registry
from ..settings import Settings, get_settings

VAL_MAX = 1000        # val is min(VAL_MAX, round(VAL_SHARE * n)) examples of the train file
VAL_SHARE = 0.2
CARVED = ("train", "val", "train-full")   # splits read from the train file when a task carves val


@dataclass(frozen=True)
class TextExample:
    """One sentence or sentence pair with its label (int class or float score)."""

    text_a: str
    text_b: str | None
    label: int | float


@dataclass(frozen=True)
class CarvedSplit:
    """The train file split into train and val; `dropped` train examples repeat a val text exactly."""

    train: list[Any]
    val: list[Any]
    dropped: int


def example_text(e: Any) -> str:
    """The text an example is identified by: text_a, a tab, then text_b (empty for single sentences)."""
    return e.text_a + "\t" + (e.text_b or "")


def val_size(n: int) -> int:
    """How many of `n` train examples go to val."""
    return min(VAL_MAX, round(VAL_SHARE * n))


def carve_val(examples: Sequence[Any]) -> CarvedSplit:
    """Split train examples into (train, val): val = the first val_size(n) by sha256 of their text (index breaks
    ties); train = the rest minus exact duplicates of a val text. Both keep file order."""
    digests = [hashlib.sha256(example_text(e).encode("utf-8")).digest() for e in examples]
    ranked = sorted(range(len(examples)), key=lambda i: (digests[i], i))
    val_idx = set(ranked[:val_size(len(examples))])
    val_digests = {digests[i] for i in val_idx}
    train = [e for i, e in enumerate(examples) if i not in val_idx and digests[i] not in val_digests]
    val = [e for i, e in enumerate(examples) if i in val_idx]
    return CarvedSplit(train, val, len(examples) - len(val) - len(train))


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
    carve_val: bool = False                     # "val" carved from the train file; "train" excludes it

    @property
    def num_labels(self) -> int:
        return 1 if self.kind == "regression" else len(self.labels)

    @property
    def carves_val(self) -> bool:
        """Whether this task's "val" is carved from its train file (and "train" excludes it)."""
        return self.carve_val and "train" in self.files

    @property
    def splits(self) -> tuple[str, ...]:
        """Every split name `load` accepts: the files, plus "val" and "train-full" when val is carved."""
        out: list[str] = []
        for s in self.files:
            out.append(s)
            if s == "train" and self.carves_val:
                out.append("val")
        return tuple(out) + (("train-full",) if self.carves_val else ())

    def file_name(self, split: str) -> str:
        """The file (or folder) inside `folder` that holds `split`; DataError naming the splits there are."""
        if split not in self.splits:
            hint = ""
            if split in ("val", "train-full") and self.carve_val:
                hint = f" ({split} is carved from the train file, which {self.name} does not have)"
            raise DataError(f"task {self.name!r} has no split {split!r}{hint}; available: {', '.join(self.splits)}")
        return self.files["train" if self.carves_val and split in CARVED else split]

    def path(self, split: str, settings: Settings | None = None) -> Path:
        """Path of the file that holds a split, checked to exist (val and train-full: the train file)."""
        settings = settings or get_settings()
        name = self.file_name(split)
        p = settings.require_data_dir() / self.folder / name
        if not p.exists():
            raise DataError(
                f"{self.name} {split} data not found at {p}. Put the file there or point "
                f"EDGESLIM_DATA at a data directory that has {self.folder}/{name}"
            )
        return p

    def load(self, split: str, settings: Settings | None = None, limit: int | None = None) -> list[Any]:
        """Read a split's examples (optionally the first `limit`); train and val of a carving task are carved."""
        path = self.path(split, settings)
        examples = self.reader(path, self)
        if self.carves_val and split in ("train", "val"):
            carved = carve_val(examples)
            examples = carved.train if split == "train" else carved.val
        if not examples:
            raise DataError(f"{self.name} {split} has no examples ({path})")
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
