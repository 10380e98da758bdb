"""Score ONNX models on a task at a stated batch size: metric, and output SQNR against the FP32 model."""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..tasks.base import TaskSpec


@dataclass
class OnnxScorer:
    """Runs ONNX models over fixed example sets (batch 1 by default: what a device runs, no padding)."""

    task: TaskSpec
    tokenizer: Any
    examples: dict[str, Sequence[Any]]            # set name ("screen", "select", "dev", ...) -> examples
    batch_size: int = 1
    max_length: int = 128
    threads: int = 2
    splits: dict[str, str] = field(default_factory=dict)   # set name -> the task split it was drawn from
    _cache: dict[tuple[str, str], Any] = field(default_factory=dict)

    @property
    def padding(self) -> str:
        return "none (batch 1)" if self.batch_size == 1 else "longest in batch, length-sorted batches"

    def outputs(self, model_path: str | Path, which: str) -> Any:
        """Logits of `model_path` on example set `which` (cached per file and set)."""
        from ..runtime.onnx_rt import make_session, session_forward
        from ..evaluate.text import EvalSettings, predict_text

        key = (str(model_path), which)
        if key not in self._cache:
            fwd = session_forward(make_session(model_path, self.threads))
            settings = EvalSettings("dev", self.batch_size, self.max_length)
            self._cache[key] = predict_text(fwd, self.tokenizer, self.examples[which], settings)
        return self._cache[key]

    def metric(self, model_path: str | Path, which: str) -> float:
        """The task's primary metric of `model_path` on set `which`."""
        from ..evaluate.text import score

        out = self.outputs(model_path, which)
        return float(score(self.task, out, [e.label for e in self.examples[which]])[self.task.primary])

    def sqnr(self, reference: str | Path, model_path: str | Path, which: str) -> float:
        from .onnx_schemes import sqnr_db

        return sqnr_db(self.outputs(reference, which), self.outputs(model_path, which))

    def forget(self, model_path: str | Path) -> None:
        """Drop cached outputs of a model file (e.g. before the file is deleted)."""
        for k in [k for k in self._cache if k[0] == str(model_path)]:
            del self._cache[k]

    def describe(self, which: str) -> dict[str, Any]:
        """How set `which` is scored: its split (when known), size, batch size, padding, max length."""
        split = {"split": self.splits[which]} if which in self.splits else {}
        return {**split, "examples": len(self.examples[which]), "batch_size": self.batch_size,
                "padding": self.padding, "max_length": self.max_length}


def seeded_subset(examples: Sequence[Any], n: int, seed: int = 0) -> list[Any]:
    """`n` examples drawn without replacement, seeded (all of them, in order, if n >= len)."""
    if n >= len(examples):
        return list(examples)
    idx = sorted(random.Random(seed).sample(range(len(examples)), n))
    return [examples[i] for i in idx]
