"""Static-shape adapter: pads to the export's sequence length, chunks by its batch size, refuses longer inputs."""
from __future__ import annotations

import numpy as np
import pytest

from edgeslim.errors import StepError
from edgeslim.runtime.static import static_shape, static_text_forward


def test_pads_and_chunks_to_the_static_shape():
    seen = []

    def run(feed):  # a fake model: logits = [sum of ids, number of real tokens]
        seen.append({k: v.shape for k, v in feed.items()})
        return np.stack([feed["input_ids"].sum(1), feed["attention_mask"].sum(1)], axis=1).astype(np.float32)

    fwd = static_text_forward(run, batch_size=2, seq_len=8, pad_id=0)
    ids = np.array([[1, 2, 3], [4, 5, 0], [6, 0, 0]])
    mask = (ids > 0).astype(np.int64)
    out = fwd({"input_ids": ids, "attention_mask": mask})
    np.testing.assert_array_equal(out, [[6, 3], [9, 2], [6, 1]])
    assert seen == [{"input_ids": (2, 8), "attention_mask": (2, 8), "token_type_ids": (2, 8)}] * 2
    with pytest.raises(StepError, match="static sequence length of 8; this batch has 9 tokens"):
        fwd({"input_ids": np.ones((1, 9), dtype=np.int64)})


def test_static_shape_read_from_extra():
    assert static_shape({"static_shape": {"batch": 1, "sequence": 64}}) == (1, 64)
    with pytest.raises(StepError, match="static_shape"):
        static_shape({})
