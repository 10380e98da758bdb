"""Roofline latency and energy prediction per op, and fitting the predictor's efficiency factors.

Per op:  t_compute = ops / (peak[precision] * efficiency[kind]),  t_memory = bytes / (bandwidth * efficiency.memory)
         t_op = max(t_compute, t_memory) + op_overhead;           bound = the larger of the two
Total:   latency = sum(t_op) + fixed_overhead
Energy:  E = MACs * pJ/MAC[precision] + DRAM bytes * pJ/byte + idle (static) power * latency

Every number this module returns is predicted, never measured; results carry `label = "predicted"`.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..errors import ConfigError, HardwareError, ModelError
from .cost import ModelCost, OpCost, model_cost
from .schema import Efficiency, HardwareProfile, load_profile


def resolve_config(model_or_config: Any) -> Any:
    """A NormalizedConfig (with num_labels, type_vocab_size in .extra) from a config, dict, artifact or folder."""
    from ..models.config import NormalizedConfig, normalize_config

    if isinstance(model_or_config, NormalizedConfig):
        return model_or_config
    if isinstance(model_or_config, dict):
        d = model_or_config
    else:
        path = Path(getattr(model_or_config, "path", model_or_config))
        if not path.exists():
            from ..models.zoo import resolve_model_source

            path = resolve_model_source(str(model_or_config))
        cfg_file = path / "config.json"
        if not cfg_file.is_file():
            raise ModelError(
                f"{path} has no config.json, so its shape is unknown; profile the HF artifact it was exported "
                "from (the shape is the same), or copy that artifact's config.json into the folder")
        try:
            d = json.loads(cfg_file.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelError(f"cannot read {cfg_file}: {exc}") from exc
    cfg = normalize_config(d)
    extra = dict(cfg.extra)
    if "id2label" in d:
        extra["num_labels"] = len(d["id2label"])
    elif "num_labels" in d:
        extra["num_labels"] = int(d["num_labels"])
    if "type_vocab_size" in d:
        extra["type_vocab_size"] = int(d["type_vocab_size"])
    return dataclasses.replace(cfg, extra=extra)


def artifact_precision(art: Any) -> str:
    """fp32 / fp16 / int8 for the cost model, from the artifact's precision tag (quantize writes e.g.
    `int8-dynamic`, `int8-static`, `mixed`: INT8 with a few FP32 groups, costed as INT8)."""
    tag = str(art.extra.get("precision") or "fp32")
    if tag.startswith("int8") or tag == "mixed":
        return "int8"
    return tag if tag in ("fp32", "fp16") else "fp32"


def device_precision(prof: Any, wanted: str, auto: bool = True) -> tuple[str, str]:
    """The precision to predict at on `prof`, and a note when it differs from the model's (auto: the device's
    fp16, else its first precision; not auto: HardwareError naming the supported ones)."""
    if wanted in prof.peak_gops:
        return wanted, ""
    if not auto:
        prof.peak(wanted)   # raises, naming the supported precisions
    alt = "fp16" if "fp16" in prof.peak_gops else prof.precisions[0]
    return alt, f"{prof.name} has no {wanted}; predicted at {alt} (what its compiler would convert to)"


@dataclass(frozen=True)
class OpPrediction:
    """Predicted time, bound and energy of one op."""

    cost: OpCost
    compute_ms: float
    memory_ms: float
    time_ms: float
    bound: str              # "compute" | "memory"
    energy_mj: float

    def to_dict(self) -> dict[str, Any]:
        return {**self.cost.to_dict(), "compute_ms": self.compute_ms, "memory_ms": self.memory_ms,
                "time_ms": self.time_ms, "bound": self.bound, "energy_mj": self.energy_mj}


@dataclass(frozen=True)
class Prediction:
    """Predicted latency, energy and roofline verdict of one model on one device (label: predicted)."""

    hardware: str
    precision: str
    batch: int
    seq_len: int
    latency_ms: float
    energy_mj: float
    bound: str                       # where most predicted time goes: "memory", "compute" or "overhead" (launches)
    memory_bound_share: float        # share of predicted time spent in memory-bound ops
    overhead_share: float            # share of predicted time in per-op and fixed overheads
    rows: tuple[OpPrediction, ...]
    params: int
    model_bytes: int
    macs: int
    flops: int
    traffic_bytes: int
    energy_breakdown_mj: dict[str, float]
    utilisation: float               # achieved ops/s over peak ops/s
    bandwidth_utilisation: float     # traffic / latency over peak bandwidth
    calibrated: bool                 # efficiency factors fitted on this device's measurements
    efficiency_source: str
    label: str = "predicted"

    @property
    def intensity(self) -> float:
        return self.flops / self.traffic_bytes if self.traffic_bytes else 0.0

    def layers(self) -> list[dict[str, Any]]:
        """Per-layer totals (embeddings, layer.0 ..., head) with the bound that dominates each layer's time."""
        out: dict[str, dict[str, Any]] = {}
        for r in self.rows:
            d = out.setdefault(r.cost.layer, {"layer": r.cost.layer, "params": 0, "macs": 0, "flops": 0, "bytes": 0,
                                              "time_ms": 0.0, "energy_mj": 0.0, "_mem": 0.0})
            d["params"] += r.cost.params
            d["macs"] += r.cost.macs
            d["flops"] += r.cost.flops
            d["bytes"] += r.cost.bytes
            d["time_ms"] += r.time_ms
            d["energy_mj"] += r.energy_mj
            d["_mem"] += r.time_ms if r.bound == "memory" else 0.0
        rows = []
        for d in out.values():
            mem = d.pop("_mem")
            d["bound"] = "memory" if d["time_ms"] and mem / d["time_ms"] > 0.5 else "compute"
            d["intensity"] = round(d["flops"] / d["bytes"], 3) if d["bytes"] else 0.0
            rows.append(d)
        return rows

    def to_dict(self, ops: bool = True) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in ("hardware", "precision", "batch", "seq_len", "latency_ms", "energy_mj",
                                          "bound", "memory_bound_share", "overhead_share", "params", "model_bytes", "macs", "flops",
                                          "traffic_bytes", "energy_breakdown_mj", "utilisation",
                                          "bandwidth_utilisation", "calibrated", "efficiency_source", "label")}
        d["intensity"] = round(self.intensity, 3)
        d["layers"] = self.layers()
        if ops:
            d["ops"] = [r.to_dict() for r in self.rows]
        return d


def predict_cost(cost: ModelCost, profile: HardwareProfile, efficiency: Efficiency | None = None) -> Prediction:
    """Roofline prediction for an already computed ModelCost."""
    eff = efficiency or profile.efficiency
    prec = cost.precision
    peak = profile.peak(prec) * 1e9                  # ops/s
    bw = profile.memory_bandwidth_gbs.value * 1e9    # bytes/s
    if prec not in profile.pj_per_mac:
        raise HardwareError(f"hardware {profile.name!r} has no pj_per_mac figure for {prec}")
    pj_mac = profile.pj_per_mac[prec].value
    pj_byte = profile.pj_per_dram_byte.value
    kind_eff = {"linear": eff.linear, "attention": eff.attention, "elementwise": eff.elementwise}
    rows = []
    for op in cost.ops:
        compute_ms = op.flops / (peak * kind_eff[op.kind]) * 1e3 if op.kind in kind_eff else 0.0
        memory_ms = op.bytes / (bw * eff.memory) * 1e3
        t = max(compute_ms, memory_ms) + eff.op_overhead_us / 1e3
        energy = (op.flops / 2 * pj_mac + op.bytes * pj_byte) * 1e-9   # pJ -> mJ
        rows.append(OpPrediction(op, compute_ms, memory_ms, t, "compute" if compute_ms >= memory_ms else "memory",
                                 energy))
    latency = sum(r.time_ms for r in rows) + eff.fixed_overhead_us / 1e3
    # the verdict compares where the time goes: memory-bound ops, compute-bound ops, or fixed overheads
    mem_time = sum(r.time_ms - eff.op_overhead_us / 1e3 for r in rows if r.bound == "memory")
    comp_time = sum(r.time_ms - eff.op_overhead_us / 1e3 for r in rows if r.bound == "compute")
    over_time = latency - mem_time - comp_time
    bound = max((mem_time, "memory"), (comp_time, "compute"), (over_time, "overhead"))[1]
    e_compute = sum(r.cost.flops / 2 for r in rows) * pj_mac * 1e-9
    e_dram = sum(r.cost.bytes for r in rows) * pj_byte * 1e-9
    e_static = profile.power_idle_w.value * latency      # W * ms = mJ
    flops, traffic = cost.flops, cost.bytes
    return Prediction(
        hardware=profile.name, precision=prec, batch=cost.batch, seq_len=cost.seq_len, latency_ms=latency,
        energy_mj=e_compute + e_dram + e_static, bound=bound, memory_bound_share=mem_time / latency,
        overhead_share=over_time / latency, rows=tuple(rows), params=cost.params, model_bytes=cost.model_bytes,
        macs=cost.macs, flops=flops, traffic_bytes=traffic,
        energy_breakdown_mj={"compute": e_compute, "dram": e_dram, "static": e_static},
        utilisation=flops / (latency / 1e3) / peak, bandwidth_utilisation=traffic / (latency / 1e3) / bw,
        calibrated=eff.fitted, efficiency_source=eff.source,
    )


def roofline_floor_ms(cost: ModelCost, peak_gops: float, bandwidth_gbs: float) -> float:
    """The fastest any device with these peaks can run `cost`: all its arithmetic at peak compute, or every weight
    read once at peak bandwidth, whichever is longer (activations may stay on chip). No prediction may be below it."""
    return max(cost.flops / (peak_gops * 1e9), sum(op.weight_bytes for op in cost.ops) / (bandwidth_gbs * 1e9)) * 1e3


def predict_latency(model_or_config: Any, profile: str | HardwareProfile, batch: int = 1, seq_len: int = 128,
                    precision: str = "fp32") -> Prediction:
    """Predicted latency (ms), energy (mJ), roofline bound and per-op rows of a model on a device."""
    cfg = resolve_config(model_or_config)
    prof = load_profile(profile)
    prof.peak(precision)   # fails early, naming the precisions the device supports
    return predict_cost(model_cost(cfg, batch=batch, seq_len=seq_len, precision=precision), prof)


def check_deadline(deadline_ms: float, where: str = "") -> float:
    """The deadline as a float; a ConfigError (prefixed with `where`, e.g. "profile: deadline_ms") otherwise."""
    if where:
        try:
            return check_deadline(deadline_ms)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    if not isinstance(deadline_ms, (int, float)) or not math.isfinite(deadline_ms) or deadline_ms <= 0:
        raise ConfigError(f"deadline must be a positive number of milliseconds, got {deadline_ms!r} "
                          "(e.g. --deadline-ms 50)")
    return float(deadline_ms)


def _largest(lo: int, hi: int, fits) -> int | None:
    """Largest n in [lo, hi] with fits(n), assuming fits is monotone (latency grows with n)."""
    if not fits(lo):
        return None
    if fits(hi):
        return hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid
    return lo


def largest_under_deadline(model_or_config: Any, profile: str | HardwareProfile, deadline_ms: float, *,
                           batch: int = 1, seq_len: int = 128, precision: str = "fp32",
                           max_batch: int = 4096) -> dict[str, int | None]:
    """Predicted largest batch (at seq_len) and largest seq len (at batch) whose latency meets the deadline."""
    deadline_ms = check_deadline(deadline_ms)
    cfg = resolve_config(model_or_config)
    prof = load_profile(profile)

    def lat(b: int, s: int) -> float:
        return predict_cost(model_cost(cfg, batch=b, seq_len=s, precision=precision), prof).latency_ms

    out: dict[str, int | None] = {"max_batch": _largest(1, max_batch, lambda b: lat(b, seq_len) <= deadline_ms)}
    if cfg.is_vision:
        out["max_seq_len"] = None
    else:
        max_seq = cfg.max_positions or 4096
        out["max_seq_len"] = _largest(1, max_seq, lambda s: lat(batch, s) <= deadline_ms)
    return out


def crossover(model_or_config: Any, profile: str | HardwareProfile, *, axis: str = "batch",
              values: Iterable[int] = (1, 2, 4, 8, 16, 32, 64, 128, 256), batch: int = 1, seq_len: int = 128,
              precision: str = "fp32") -> list[dict[str, Any]]:
    """The predicted bound along a batch or seq-len sweep (where memory-bound turns compute-bound)."""
    cfg = resolve_config(model_or_config)
    prof = load_profile(profile)
    rows = []
    for v in values:
        b, s = (v, seq_len) if axis == "batch" else (batch, v)
        p = predict_cost(model_cost(cfg, batch=b, seq_len=s, precision=precision), prof)
        rows.append({axis: v, "bound": p.bound, "memory_bound_share": round(p.memory_bound_share, 3),
                     "overhead_share": round(p.overhead_share, 3),
                     "latency_ms": p.latency_ms, "intensity": round(p.intensity, 2),
                     "ridge": round(prof.ridge_point(precision), 2), "utilisation": p.utilisation})
    return rows


# ---------------------------------------------------------------------------------------------- fitting

@dataclass(frozen=True)
class Sample:
    """One measured shape: a model config at batch x seq_len and precision, with its measured p50 latency."""

    name: str
    config: Any
    batch: int
    seq_len: int
    precision: str
    measured_ms: float
    extra: dict[str, Any] = field(default_factory=dict)

    def cost(self) -> ModelCost:
        return model_cost(self.config, batch=self.batch, seq_len=self.seq_len, precision=self.precision)


_FIELDS = ("linear", "attention", "elementwise", "memory", "op_overhead_us", "fixed_overhead_us")


def fit_efficiency(profile: HardwareProfile, samples: Sequence[Sample], source: str = "") -> Efficiency:
    """Fit per-op-class efficiency factors and overheads to measured latencies (least squares on log ratio)."""
    import numpy as np

    from .._compat import require

    least_squares = require("scipy.optimize").least_squares
    if len(samples) < 3:
        raise ConfigError(f"fitting needs at least 3 measured shapes, got {len(samples)}")
    costs = [s.cost() for s in samples]
    measured = np.array([s.measured_ms for s in samples])

    def make(x: Any) -> Efficiency:
        return Efficiency(*[float(v) for v in x], source=source or "fitted", fitted=True)

    def resid(x: Any) -> Any:
        eff = make(x)
        pred = np.array([predict_cost(c, profile, eff).latency_ms for c in costs])
        return np.log(pred / measured)

    e0 = profile.efficiency
    x0 = np.array([e0.linear, e0.attention, e0.elementwise, e0.memory, max(e0.op_overhead_us, 1.0),
                   max(e0.fixed_overhead_us, 10.0)])
    lo = np.array([0.01, 0.003, 0.001, 0.02, 0.0, 0.0])
    hi = np.array([1.5, 1.5, 1.5, 1.5, 500.0, 50_000.0])
    x0 = np.clip(x0, lo + 1e-6, hi - 1e-6)
    res = least_squares(resid, x0, bounds=(lo, hi), x_scale=np.array([0.1, 0.1, 0.05, 0.1, 10.0, 100.0]),
                        loss="soft_l1", f_scale=0.05)
    return make(res.x)


def prediction_errors(profile: HardwareProfile, samples: Sequence[Sample],
                      efficiency: Efficiency | None = None) -> list[dict[str, Any]]:
    """Predicted vs measured per sample: signed relative error (pred/measured - 1)."""
    rows = []
    for s in samples:
        p = predict_cost(s.cost(), profile, efficiency)
        rows.append({"shape": s.name, "batch": s.batch, "seq_len": s.seq_len, "precision": s.precision,
                     "measured_ms": s.measured_ms, "predicted_ms": p.latency_ms,
                     "rel_error": p.latency_ms / s.measured_ms - 1, "bound": p.bound})
    return rows


def error_summary(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Median absolute relative error and the share of shapes within 10% and 20%."""
    import statistics

    errs = [abs(r["rel_error"]) for r in rows]
    if not errs:
        return {"n": 0}
    return {"n": len(errs), "median_abs_error": statistics.median(errs), "max_abs_error": max(errs),
            "within_10pct": sum(e <= 0.10 for e in errs) / len(errs),
            "within_20pct": sum(e <= 0.20 for e in errs) / len(errs)}
