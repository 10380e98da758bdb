"""Calibration data from a task's training split, as `collate()` batches (used by ONNX and PT2E quantizers)."""
from __future__ import annotations

import random
from typing import Any

from ..errors import DataError
from ..settings import Settings
from ..tasks.base import TaskSpec, get_task


def calibration_batches(task: str | TaskSpec, tokenizer: Any, n: int = 128, seed: int = 0, *,
                        batch_size: int = 1, max_length: int = 128, split: str = "train",
                        settings: Settings | None = None) -> list[dict[str, Any]]:
    """`n` seeded random examples of `task`'s `split`, tokenised and padded per batch (dicts of int64 tensors).

    Batch size 1 (the default) means no padding, the shapes a device sees. Labels are dropped.
    """
    from .text import collate, encode

    spec = get_task(task) if isinstance(task, str) else task
    if n < 1:
        raise DataError(f"calibration set is empty (n={n}); ask for at least 1 example (e.g. 128)")
    if batch_size < 1:
        raise DataError(f"calibration batch_size must be >= 1, got {batch_size}")
    examples = spec.load(split, settings)
    rng = random.Random(seed)
    picked = rng.sample(range(len(examples)), min(n, len(examples)))
    enc = encode(tokenizer, [examples[i] for i in picked], max_length)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    idx = list(range(len(enc)))
    return [collate(enc, idx[s:s + batch_size], pad, with_labels=False) for s in range(0, len(idx), batch_size)]
