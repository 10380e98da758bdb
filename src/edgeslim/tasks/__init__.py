"""Benchmark tasks (GLUE, SQuAD, image folders) and their metrics."""
from __future__ import annotations

from . import glue, squad, vision  # noqa: F401  (register the tasks)
from .base import TASKS, TaskSpec, TextExample, get_task, label_counts

__all__ = ["TASKS", "TaskSpec", "TextExample", "get_task", "label_counts"]
