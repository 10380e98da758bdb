"""Latency measurement: warm-up, percentiles, and interleaved rounds with paired ratios.

Timings on shared 2-core machines are noisy; compare models only side by side in one run, as the
ratio of each round's median to the reference's median in the same round.
"""
from __future__ import annotations

import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping


@dataclass(frozen=True)
class LatencyStats:
    """Measured latency of one model in milliseconds (all figures measured, none predicted)."""

    n: int
    mean_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    min_ms: float
    max_ms: float
    stdev_ms: float

    @classmethod
    def from_samples(cls, samples_ms: list[float]) -> "LatencyStats":
        s = sorted(samples_ms)
        return cls(n=len(s), mean_ms=statistics.fmean(s), p50_ms=percentile(s, 50), p95_ms=percentile(s, 95),
                   p99_ms=percentile(s, 99), min_ms=s[0], max_ms=s[-1],
                   stdev_ms=statistics.stdev(s) if len(s) > 1 else 0.0)

    def to_dict(self) -> dict[str, float]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def percentile(sorted_samples: list[float], q: float) -> float:
    """Linear-interpolated percentile of already-sorted samples (numpy's default method)."""
    if not sorted_samples:
        raise ValueError("no samples")
    k = (len(sorted_samples) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(sorted_samples) - 1)
    return sorted_samples[lo] + (sorted_samples[hi] - sorted_samples[lo]) * (k - lo)


def time_calls(fn: Callable[[], Any], n: int) -> list[float]:
    """Call fn n times; return each call's wall time in ms."""
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def measure_latency(fn: Callable[[], Any], *, warmup: int = 10, iters: int = 100) -> LatencyStats:
    """Latency of one zero-argument callable after warm-up."""
    time_calls(fn, warmup)
    return LatencyStats.from_samples(time_calls(fn, iters))


@dataclass
class Comparison:
    """Interleaved measurement of several models: stats per model and paired ratios to the reference."""

    reference: str
    rounds: int
    iters_per_round: int
    stats: dict[str, LatencyStats]
    ratio_median: dict[str, float]          # median over rounds of (model round median / reference round median)
    ratio_spread: dict[str, tuple[float, float]]  # min and max of the per-round ratios
    round_medians: dict[str, list[float]] = field(default_factory=dict)
    host: dict[str, Any] = field(default_factory=dict)

    def speedup(self, name: str) -> float:
        """How many times faster than the reference `name` is (reference time / model time)."""
        return 1.0 / self.ratio_median[name]

    def to_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "rounds": self.rounds, "iters_per_round": self.iters_per_round,
                "stats": {k: v.to_dict() for k, v in self.stats.items()},
                "ratio_median": self.ratio_median, "ratio_spread": self.ratio_spread,
                "round_medians": self.round_medians, "host": self.host}


def compare_latency(fns: Mapping[str, Callable[[], Any]], *, reference: str | None = None, rounds: int = 7,
                    iters: int | Mapping[str, int] = 20, warmup: int = 5,
                    on_round: Callable[[int], None] | None = None) -> Comparison:
    """Time several callables in interleaved rounds (A B C, A B C, ...; order rotated each round).

    `iters` is calls per round, one number for all or one per name; `on_round(r)` is called after round r.
    """
    names = list(fns)
    per_name = {n: (iters[n] if isinstance(iters, Mapping) else iters) for n in names}
    if not names:
        raise ValueError("compare_latency needs at least one callable")
    reference = reference or names[0]
    if reference not in fns:
        raise ValueError(f"reference {reference!r} is not among {names}")
    for name in names:
        time_calls(fns[name], warmup)
    samples: dict[str, list[float]] = {n: [] for n in names}
    medians: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            s = time_calls(fns[name], per_name[name])
            samples[name].extend(s)
            medians[name].append(statistics.median(s))
        if on_round:
            on_round(r)
    ratios = {n: [m / ref for m, ref in zip(medians[n], medians[reference])] for n in names}
    return Comparison(
        reference=reference, rounds=rounds, iters_per_round=max(per_name.values()),
        stats={n: LatencyStats.from_samples(samples[n]) for n in names},
        ratio_median={n: statistics.median(ratios[n]) for n in names},
        ratio_spread={n: (min(ratios[n]), max(ratios[n])) for n in names},
        round_medians=medians, host=host_facts(),
    )


def host_facts() -> dict[str, Any]:
    """CPU model, flags that matter for INT8 speed, and core count: record with every benchmark."""
    flags: list[str] = []
    model = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and not model:
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                if line.startswith("flags"):
                    have = set(line.split(":", 1)[1].split())
                    flags = sorted(have & {"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_int8", "avx_vnni",
                                           "fma", "f16c", "sse4_2"})
                    break
    except OSError:
        pass
    return {"cpu": model, "cpu_flags": flags, "cpus": os.cpu_count(), "machine": platform.machine(),
            "python": platform.python_version()}
