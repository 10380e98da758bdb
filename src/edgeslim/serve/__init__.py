"""Real-time serving: `edgeslim serve`, an HTTP server (FastAPI + uvicorn) with deadline-aware micro-batching and
admission control, plus an open-loop load generator to find the arrival rate a model still serves in its deadline.

- `engine`: load an artifact in its runtime with its own tokenizer; one function from token ids to scores.
- `curve`: the measured per-batch latency curve of this model on this machine, and the plan chosen from it (largest
  useful batch, longest wait, the predicted sustainable rate at the deadline).
- `batcher`: the worker thread that forms batches without letting a request miss its deadline to fill one, and the
  admission check that rejects a request early (503 + Retry-After) when the queue cannot meet its deadline.
- `app`: the FastAPI app (/predict, /health, /metrics), input validation and limits, graceful shutdown.
- `loadgen`: Poisson open-loop arrivals, bursts and slow clients on loopback; per-rate latency, misses, rejections.

The web stack loads lazily (extra `serve`), so importing this package stays light.
"""
from __future__ import annotations

from .config import ServeConfig

__all__ = ["ServeConfig"]
