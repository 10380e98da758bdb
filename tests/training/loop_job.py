"""A tiny deterministic training run on the one loop, importable by tests and runnable as a script (to be killed).

Usage: python loop_job.py CHECKPOINT SLEEP_SECONDS
"""
from __future__ import annotations

import sys
import time

N, WIDTH, BATCH, EPOCHS = 16, 8, 4, 3          # 4 batches per epoch -> 12 steps


def tiny_model():
    """A 1-layer tiny BERT classifier with dropout on, so a resume must restore the RNG to match."""
    import torch

    from edgeslim.models.tiny import tiny_bert

    model = tiny_bert("classification", seed=0, layers=1, vocab=64)
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.1
    return model


def run(checkpoint, sleep: float = 0.0, key: str = "job", crash_at: int | None = None):
    """Train the tiny model for EPOCHS epochs; returns (LoopResult, model). `crash_at`: raise on that call."""
    import torch

    from edgeslim.training.loop import LoopConfig, train_loop

    model = tiny_model().train()
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 64, (N, WIDTH), generator=g)
    labels = torch.randint(0, 2, (N,), generator=g)
    calls = {"n": 0}

    def loss_fn(b):
        calls["n"] += 1
        if crash_at is not None and calls["n"] == crash_at:
            raise RuntimeError("simulated crash")
        time.sleep(sleep)
        out = model(input_ids=ids[b], attention_mask=torch.ones_like(ids[b]), labels=labels[b])
        return out.loss, {"ce": float(out.loss.detach())}

    # a budget this far away keeps the clock out of the schedule (progress = steps / planned), so runs repeat
    cfg = LoopConfig(lr=1e-2, epochs=EPOCHS, max_minutes=1e9, batch_size=BATCH, warmup=0.5, checkpoint_minutes=1e-9,
                     seed=3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)     # the same reduction order in every process
    try:
        res = train_loop(model.named_parameters(), [WIDTH] * N, loss_fn, cfg, checkpoint=checkpoint, key=key,
                         modules={"model": model}, quiet=True)
    finally:
        torch.set_num_threads(threads)
    return res, model


if __name__ == "__main__":
    run(sys.argv[1], float(sys.argv[2]))
