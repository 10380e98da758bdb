"""The per-batch latency curve of one model on this machine, and the batching plan chosen from it.

The server never guesses how long a batch takes: it times the model at startup over batch sizes and token lengths
(the same runtime, threads and session settings it serves with), fits `ms = a + b*B + c*B*L + d*B*L^2` with
non-negative coefficients by relative least squares (fixed cost, per-row cost, per-token cost, attention's quadratic cost) to the p90 of
each point, and scales the fit online by how long batches really take under load (see batcher.Correction).
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import ConfigError

BATCHES = (1, 2, 4, 8, 16, 32, 64)
LENGTHS = (16, 32, 64, 128, 256, 512)


@dataclass(frozen=True)
class CurvePoint:
    batch: int
    tokens: int
    p50_ms: float
    p90_ms: float
    n: int


def _features(batch: float, tokens: float) -> list[float]:
    return [1.0, batch, batch * tokens, batch * tokens * tokens / 1000.0]


def fit_nonnegative(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least squares with every coefficient >= 0 (active set: drop the most negative feature and refit)."""
    keep = list(range(x.shape[1]))
    while keep:
        coef, *_ = np.linalg.lstsq(x[:, keep], y, rcond=None)
        if (coef >= 0).all():
            out = np.zeros(x.shape[1])
            out[keep] = coef
            return out
        keep.pop(int(np.argmin(coef)))
    return np.zeros(x.shape[1])


@dataclass
class LatencyCurve:
    """Measured points and the fitted model of batch latency (ms) as a function of batch size and tokens."""

    points: list[CurvePoint]
    coef: list[float]
    fit_error: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    @classmethod
    def fit(cls, points: Sequence[CurvePoint], seconds: float = 0.0) -> "LatencyCurve":
        if not points:
            raise ConfigError("no latency points to fit: the model could not be timed")
        x = np.array([_features(p.batch, p.tokens) for p in points])
        y = np.array([p.p90_ms for p in points])
        w = 1.0 / np.maximum(y, 1e-6)          # relative error: a 3 ms point counts as much as a 300 ms one
        coef = fit_nonnegative(x * w[:, None], y * w)
        pred = x @ coef
        rel = np.abs(pred - y) / np.maximum(y, 1e-9)
        return cls(points=list(points), coef=[float(c) for c in coef], seconds=round(seconds, 2),
                   fit_error={"median_rel": round(float(np.median(rel)), 4), "max_rel": round(float(rel.max()), 4)})

    def estimate_ms(self, batch: int, tokens: int) -> float:
        """Predicted p90 time of one batch of `batch` rows padded to `tokens` (ms)."""
        return float(np.dot(self.coef, _features(batch, tokens)))

    def to_dict(self) -> dict[str, Any]:
        return {"points": [asdict(p) for p in self.points], "coef_ms": self.coef,
                "model": "ms = a + b*batch + c*batch*tokens + d*batch*tokens^2/1000 (p90 per point, coef >= 0)",
                "fit_error": self.fit_error, "seconds": self.seconds}


def measure_curve(run: Callable[[int, int], Any], *, deadline_ms: float, max_tokens: int, max_batch: int = 64,
                  budget_s: float = 6.0) -> LatencyCurve:
    """Time `run(batch, tokens)` over a grid of batch sizes and lengths up to max_tokens.

    Along each length the batch doubles until one call takes longer than the deadline (never usable) or the time
    budget runs out; each point is warmed up once and timed 3-15 times.
    """
    t_start = time.perf_counter()
    for tokens in sorted(set(range(2, min(64, max_tokens) + 1)) | set(range(64, max_tokens + 1, 8))):
        run(1, tokens)   # every request length once: a runtime's first call at a new shape is slow (allocation)
    lengths = sorted({n for n in LENGTHS if n < max_tokens} | {max_tokens})
    points: list[CurvePoint] = []
    per_point = budget_s / (len(lengths) * 5)
    for tokens in lengths:
        for batch in (b for b in BATCHES if b <= max_batch):
            run(batch, tokens)                                   # warm-up (first call allocates)
            t0 = time.perf_counter()
            run(batch, tokens)
            first = (time.perf_counter() - t0) * 1000
            reps = int(max(3, min(15, per_point * 1000 / max(first, 1e-3))))
            samples = [first]
            for _ in range(reps - 1):
                t0 = time.perf_counter()
                run(batch, tokens)
                samples.append((time.perf_counter() - t0) * 1000)
            samples.sort()
            p90 = samples[min(len(samples) - 1, math.ceil(0.9 * len(samples)) - 1)]
            points.append(CurvePoint(batch, tokens, round(statistics.median(samples), 4), round(p90, 4), len(samples)))
            if first > deadline_ms or time.perf_counter() - t_start > 2 * budget_s:
                break
    return LatencyCurve.fit(points, time.perf_counter() - t_start)


@dataclass(frozen=True)
class BatchPlan:
    """What the server does, and why: from the measured curve at a typical request length."""

    max_batch: int
    max_wait_ms: float
    typical_tokens: int
    batch_ms: float                       # predicted p90 of a max_batch batch at typical_tokens
    single_ms: float                      # same at batch 1
    predicted_rate_rps: float             # sustainable arrival rate at the deadline (capacity of max_batch batches)
    predicted_rate_unbatched_rps: float
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def plan_batching(curve: LatencyCurve, *, deadline_ms: float, margin_ms: float, batching: bool = True,
                  max_batch: int | None = None, max_wait_ms: float | None = None,
                  typical_tokens: int = 32) -> BatchPlan:
    """Largest useful batch and longest wait that keep a request's deadline, from the measured curve.

    A request that arrives just as a batch starts waits for it, then rides the next one: so a batch size B is
    feasible when 2 * t(B) + margin <= deadline. Among feasible sizes the plan takes the largest whose cost per
    request is within 5% of the best: a batch is only as big as the queue at the time, so a large cap costs no
    latency at low load, and under load it amortises the per-call work the curve does not see (the worker's cycle,
    the event loop's wake-ups). The server waits for more requests at most what joining a batch saves a request
    (t(1) - t(B)/B), and never past the point where the oldest request would miss its deadline.
    """
    budget = deadline_ms - margin_ms
    single = curve.estimate_ms(1, typical_tokens)
    if curve.estimate_ms(1, min(16, typical_tokens)) > budget:
        raise ConfigError(
            f"the model takes {curve.estimate_ms(1, 16):.1f} ms for one 16-token request on this machine (measured), "
            f"over the {deadline_ms:g} ms deadline minus a {margin_ms:g} ms margin: no request could meet it. Raise "
            "--deadline-ms, or serve a smaller/faster model (edgeslim optimize)")
    if not batching:
        return BatchPlan(1, 0.0, typical_tokens, single, single, 1000 / single, 1000 / single,
                         "batching off (--no-batching): one request per call")
    sizes = sorted({p.batch for p in curve.points} | ({max_batch} if max_batch else set()))
    feasible = [b for b in sizes if 2 * curve.estimate_ms(b, typical_tokens) <= budget] or [1]
    if max_batch:
        chosen = max([b for b in feasible if b <= max_batch] or [1])
        reason = (f"--max-batch {max_batch}" if chosen == max_batch else
                  f"--max-batch {max_batch} is not feasible (2 x {curve.estimate_ms(max_batch, typical_tokens):.1f} ms"
                  f" > {budget:.1f} ms): using {chosen}")
    else:
        cost = {b: curve.estimate_ms(b, typical_tokens) / b for b in feasible}
        chosen = max(b for b in feasible if cost[b] <= 1.05 * min(cost.values()))
        reason = (f"batch {chosen}: {cost[chosen]:.2f} ms per request at {typical_tokens} tokens (batch 1: "
                  f"{single:.2f} ms), the largest size with 2 x {curve.estimate_ms(chosen, typical_tokens):.1f} ms "
                  f"inside the {deadline_ms:g} ms deadline whose cost per request is within 5% of the best")
    t_b = curve.estimate_ms(chosen, typical_tokens)
    # wait no longer than what joining a batch saves a request (t(1) - t(B)/B): nothing when batching does not pay
    saving = max(0.0, single - t_b / chosen)
    wait = max_wait_ms if max_wait_ms is not None else max(0.0, min(saving, budget - 2 * t_b))
    return BatchPlan(chosen, round(wait, 3), typical_tokens, t_b, single, 1000 * chosen / t_b, 1000 / single, reason)
