"""Extractive QA features (SQuAD v1.1): (question, context window) pairs with doc stride, and their batches."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from ..tasks.squad import QAExample


@dataclass
class QAFeatures:
    """Tokenised (question, context window) pairs; several windows per long context."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]]
    example_index: list[int]                       # feature -> example
    offsets: list[list[tuple[int, int] | None]]    # context-token char spans (None outside the context)
    start_positions: list[int]
    end_positions: list[int]

    def __len__(self) -> int:
        return len(self.input_ids)


def prepare_features(tokenizer: Any, examples: Sequence[QAExample], max_length: int = 384,
                     stride: int = 128) -> QAFeatures:
    """Tokenise question + context windows; label each window with the first answer's token span
    (both 0, the [CLS] position, when the answer lies outside the window). The stride (overlap of
    windows) is capped at half the window so short windows still work."""
    stride = min(stride, max_length // 2)
    enc = tokenizer([e.question.lstrip() for e in examples], [e.context for e in examples], truncation="only_second",
                    max_length=max_length, stride=stride, return_overflowing_tokens=True,
                    return_offsets_mapping=True, padding=False)
    feats = QAFeatures([], [], [], [], [], [])
    for f, ids in enumerate(enc["input_ids"]):
        ex_i = enc["overflow_to_sample_mapping"][f]
        seq_ids = enc.sequence_ids(f)
        offsets = [tuple(o) if seq_ids[k] == 1 else None for k, o in enumerate(enc["offset_mapping"][f])]
        ex = examples[ex_i]
        start_tok = end_tok = 0
        if ex.answers:
            a_start = ex.answer_starts[0]
            a_end = a_start + len(ex.answers[0])
            ctx_toks = [k for k, o in enumerate(offsets) if o is not None]
            if ctx_toks and offsets[ctx_toks[0]][0] <= a_start and offsets[ctx_toks[-1]][1] >= a_end:
                start_tok = next(k for k in ctx_toks if offsets[k][1] > a_start)
                end_tok = max(k for k in ctx_toks if offsets[k][0] < a_end)
        feats.input_ids.append(list(ids))
        feats.token_type_ids.append(list(enc["token_type_ids"][f]) if "token_type_ids" in enc else [0] * len(ids))
        feats.example_index.append(ex_i)
        feats.offsets.append(offsets)
        feats.start_positions.append(start_tok)
        feats.end_positions.append(end_tok)
    return feats


def collate_qa(feats: QAFeatures, batch: Sequence[int], pad_id: int, with_labels: bool) -> dict[str, Any]:
    """Pad a batch of QA features to its longest window."""
    import torch

    from ..training.text import pad_batch

    out = pad_batch(feats.input_ids, feats.token_type_ids, batch, pad_id)
    if with_labels:
        out["start_positions"] = torch.tensor([feats.start_positions[i] for i in batch])
        out["end_positions"] = torch.tensor([feats.end_positions[i] for i in batch])
    return out
