"""Evaluate a model on a task split and compute its metrics."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import ConfigError
from ..tasks import metrics as M
from ..runtime.torch_rt import torch_forward
from ..tasks.base import TaskSpec


@dataclass(frozen=True)
class EvalSettings:
    """How an accuracy figure was measured (it moves with batch size and padding for INT8 models)."""

    split: str = "dev"
    batch_size: int = 32
    max_length: int = 128
    padding: str = "longest-in-batch, length-sorted batches"
    limit: int | None = None


def score(task: TaskSpec, outputs: np.ndarray, labels: Sequence[Any]) -> dict[str, float]:
    """Metrics of `task` from raw model outputs (logits, or scores for regression)."""
    if task.kind == "regression":
        preds = outputs.reshape(-1)
        return {m: M.METRICS[m](preds, labels) for m in task.metrics}
    if task.kind == "image-classification":
        return {"top1": M.topk_accuracy(outputs, labels, 1), "top5": M.topk_accuracy(outputs, labels, 5)}
    if task.kind == "classification":
        preds = outputs.argmax(axis=-1)
        return {m: M.METRICS[m](preds, labels) for m in task.metrics}
    raise ConfigError(f"score() does not handle {task.kind!r} tasks; use the QA evaluator for {task.name}")


def predict_text(forward: Callable[[dict[str, Any]], np.ndarray], tokenizer: Any, examples: Sequence[Any],
                 settings: EvalSettings, pad_id: int | None = None) -> np.ndarray:
    """Run `forward(batch) -> outputs` over examples; returns outputs in example order."""
    from ..training.text import encode, iter_batches

    enc = encode(tokenizer, examples, settings.max_length)
    pad = tokenizer.pad_token_id if pad_id is None else pad_id
    out: np.ndarray | None = None
    for idx, batch in iter_batches(enc, settings.batch_size, pad):
        o = forward(batch)
        if out is None:
            out = np.zeros((len(examples),) + o.shape[1:], dtype=np.float32)
        out[idx] = o
    assert out is not None
    return out




def evaluate_text_model(model: Any, tokenizer: Any, task: TaskSpec, settings: EvalSettings | None = None,
                        data_settings: Any = None) -> dict[str, Any]:
    """Evaluate a PyTorch text model on a GLUE-style task; metrics plus how they were measured."""
    settings = settings or EvalSettings()
    examples = task.load(settings.split, data_settings, limit=settings.limit)
    t0 = time.perf_counter()
    outputs = predict_text(torch_forward(model), tokenizer, examples, settings)
    result: dict[str, Any] = score(task, outputs, [e.label for e in examples])
    result["eval"] = {**asdict(settings), "n": len(examples), "runtime": "pytorch-fp32",
                      "seconds": round(time.perf_counter() - t0, 2)}
    return result
