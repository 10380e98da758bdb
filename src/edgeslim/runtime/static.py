"""Run a static-shape text model (LiteRT, ExecuTorch, Core ML) on batches of any size and length.

Those runtimes take the exact shape the file was exported with, [batch, seq_len]. Right-padding
with attention_mask 0 leaves BERT-style outputs unchanged, so a shorter batch is padded to seq_len
and a larger one is cut into chunks of the static batch size.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..errors import StepError

TEXT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
MAX_DIM = 1 << 20   # a static batch or sequence length past this is a corrupt record, not an export

# run(feed) -> outputs [static_batch, ...]; feed maps each text input to an int64 array [static_batch, seq_len]
StaticRun = Callable[[dict[str, np.ndarray]], np.ndarray]


def _as_numpy(v: Any) -> np.ndarray:
    return np.asarray(v.numpy() if hasattr(v, "numpy") else v, dtype=np.int64)


def static_text_forward(run: StaticRun, batch_size: int, seq_len: int, pad_id: int = 0,
                        what: str = "model") -> Callable[[dict[str, Any]], np.ndarray]:
    """forward(batch) for a model exported with static shape [batch_size, seq_len]."""

    def fwd(batch: dict[str, Any]) -> np.ndarray:
        arrays = {k: _as_numpy(batch[k]) for k in TEXT_INPUTS if k in batch}
        if "token_type_ids" not in arrays:
            arrays["token_type_ids"] = np.zeros_like(arrays["input_ids"])
        if "attention_mask" not in arrays:
            arrays["attention_mask"] = np.ones_like(arrays["input_ids"])
        n, width = arrays["input_ids"].shape
        if width > seq_len:
            raise StepError(f"{what} was exported with a static sequence length of {seq_len}; this batch has "
                            f"{width} tokens. Evaluate with max_length <= {seq_len} or re-export with a larger seq_len")
        outs = []
        for start in range(0, n, batch_size):
            rows = min(batch_size, n - start)
            feed = {}
            for k, a in arrays.items():
                fill = pad_id if k == "input_ids" else 0
                full = np.full((batch_size, seq_len), fill, dtype=np.int64)  # [static_batch, seq_len]
                full[:rows, :width] = a[start:start + rows]
                feed[k] = full
            outs.append(np.asarray(run(feed), dtype=np.float32)[:rows])
        return np.concatenate(outs, axis=0)

    return fwd


def static_shape(extra: dict[str, Any], what: Any = "artifact") -> tuple[int, int]:
    """(batch, seq_len) an artifact was exported with, from its `extra.static_shape`; `what` names the model file."""
    shape = extra.get("static_shape") or {}
    if not isinstance(shape, dict) or "batch" not in shape or "sequence" not in shape:
        raise StepError(f"{what}: its artifact records no static_shape {{batch, sequence}}; re-export it with "
                        "edgeslim export")
    dims = shape["batch"], shape["sequence"]
    if not all(isinstance(d, int) and not isinstance(d, bool) and 0 < d <= MAX_DIM for d in dims):
        raise StepError(f"{what}: static_shape batch and sequence must be whole numbers in 1..{MAX_DIM}, got "
                        f"{shape['batch']!r} and {shape['sequence']!r}; fix: re-export it with edgeslim export")
    return dims


def pad_id(extra: dict[str, Any], what: Any = "artifact") -> int:
    """The padding token id an artifact records (0 if none)."""
    value = extra.get("pad_id", 0)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31:
        raise StepError(f"{what}: pad_id must be a token id (a whole number >= 0), got {value!r}; fix: re-export it "
                        "with edgeslim export")
    return value
