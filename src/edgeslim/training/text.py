"""Tokenise text examples once, batch them by length, and collate to padded tensors."""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

from ..tasks.base import TextExample


@dataclass
class Encoded:
    """Token ids per example (ragged) plus labels; padding happens per batch."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]]
    labels: list[float] | list[int]

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def lengths(self) -> list[int]:
        return [len(x) for x in self.input_ids]


def encode(tokenizer: Any, examples: Sequence[TextExample], max_length: int = 128) -> Encoded:
    """Tokenise sentence (pair) examples with truncation and no padding."""
    a = [e.text_a for e in examples]
    b = [e.text_b for e in examples] if examples and examples[0].text_b is not None else None
    enc = tokenizer(a, b, truncation=True, max_length=max_length, padding=False)
    tti = enc.get("token_type_ids") or [[0] * len(x) for x in enc["input_ids"]]
    return Encoded(list(enc["input_ids"]), list(tti), [e.label for e in examples])


def length_grouped_batches(lengths: Sequence[int], batch_size: int, seed: int, *, shuffle: bool = True,
                           mega: int = 50) -> list[list[int]]:
    """Batches of similar-length examples (less padding), in a seeded random order.

    Shuffle, cut into mega-batches of `mega` batches, sort each by length, split, shuffle the batches.
    Without `shuffle`, one global length sort (for evaluation).
    """
    idx = list(range(len(lengths)))
    if not shuffle:
        idx.sort(key=lambda i: lengths[i])
        return [idx[i:i + batch_size] for i in range(0, len(idx), batch_size)]
    rng = random.Random(seed)
    rng.shuffle(idx)
    batches: list[list[int]] = []
    span = batch_size * mega
    for s in range(0, len(idx), span):
        chunk = sorted(idx[s:s + span], key=lambda i: lengths[i])
        batches.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def pad_batch(input_ids: Sequence[Sequence[int]], token_type_ids: Sequence[Sequence[int]], batch: Sequence[int],
              pad_id: int = 0) -> dict[str, Any]:
    """Pad the rows `batch` of ragged id lists to their longest: input_ids, token_type_ids, attention_mask."""
    import torch

    width = max(len(input_ids[i]) for i in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)      # [batch, width]
    tti = torch.zeros((len(batch), width), dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for r, i in enumerate(batch):
        n = len(input_ids[i])
        ids[r, :n] = torch.tensor(input_ids[i])
        tti[r, :n] = torch.tensor(token_type_ids[i])
        mask[r, :n] = 1
    return {"input_ids": ids, "token_type_ids": tti, "attention_mask": mask}


def collate(enc: Encoded, batch: Sequence[int], pad_id: int = 0, *, with_labels: bool = True) -> dict[str, Any]:
    """Pad one batch to its longest example; returns torch tensors (plus labels)."""
    import torch

    out = pad_batch(enc.input_ids, enc.token_type_ids, batch, pad_id)
    if with_labels:
        labels = [enc.labels[i] for i in batch]
        out["labels"] = torch.tensor(labels, dtype=torch.float if isinstance(labels[0], float) else torch.long)
    return out


def iter_batches(enc: Encoded, batch_size: int, pad_id: int = 0) -> Iterator[tuple[list[int], dict[str, Any]]]:
    """Length-sorted evaluation batches with the example indices they hold."""
    for b in length_grouped_batches(enc.lengths, batch_size, 0, shuffle=False):
        yield b, collate(enc, b, pad_id, with_labels=False)
