"""Predictions held against published on-device measurements (issue #20), and the trust label of every prediction.

Data: `hardware/published.yaml`, one row per published latency (device, runtime, precision, batch, seq len, model,
source). Each row is costed (cost.py) and predicted on its device's profile (predict.py):

    before     the profile's assumed efficiency factors (what edgeslim printed before it was checked)
    held out   one number per device, a scale s on the compute efficiencies (linear, attention, elementwise),
               fitted on the device's rows of OTHER models (every runtime of the held-out model is held out with
               it: leave one model out); a device with a single model is fitted on the other devices of its kind
    fitted     s fitted on all of the device's rows: what the shipped profile carries (`efficiency`, with the
               assumed factors kept in `calibration.assumed_efficiency`)

s is bounded so no efficiency exceeds 1: a prediction never beats the roofline floor (roofline_floor_ms).

Trust, per (device, precision): the band of published / predicted over the held-out rows of that device and
precision ("checked"). A device or precision with no row is "unchecked": it is predicted with assumed factors, so
its band is that of the before-calibration errors of its kind, widened x2 in log space (x3 either way when its
kind has no row at that precision). A verdict whose band straddles the deadline reads "uncertain".
"""
from __future__ import annotations

import functools
import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..errors import HardwareError
from .cost import BottleneckShape, ModelCost, bottleneck_model_cost, model_cost
from .schema import PRECISIONS, Efficiency, HardwareProfile, load_profile, profile_files

DATA_FILE = Path(__file__).resolve().parent / "published.yaml"
HEADS = ("classifier", "mlm")
ROW_KEYS = ("id", "device", "device_label", "model", "head", "runtime", "precision", "threads", "batch", "seq_len",
            "latency_ms", "statistic", "source", "url", "uncertain", "power_w", "published_flops", "fit", "fit_note")
UNCHECKED_BAND = (1 / 3, 3.0)   # no row for the device or its kind: published may be 3x either side of predicted


@dataclass(frozen=True)
class PublishedModel:
    """A model shape the published rows refer to: an HF-style config, or a MobileBERT bottleneck shape."""

    name: str
    source: str
    config: dict[str, Any] | None = None
    bottleneck: BottleneckShape | None = None

    def cost(self, *, batch: int, seq_len: int, precision: str, head: str) -> ModelCost:
        lm = head == "mlm"
        if self.bottleneck is not None:
            return bottleneck_model_cost(self.bottleneck, batch=batch, seq_len=seq_len, precision=precision,
                                         lm_head=lm)
        return model_cost(self.config, batch=batch, seq_len=seq_len, precision=precision, lm_head=lm)


@dataclass(frozen=True)
class PublishedRow:
    """One published on-device latency and exactly what it measured."""

    id: str
    device: str                 # the edgeslim profile it is predicted on
    device_label: str           # the device as the source names it
    model: str
    head: str                   # "classifier" (pooler + classifier) | "mlm" (masked-LM logits over every token)
    runtime: str
    precision: str
    threads: str                # CPU threads, or the accelerator
    batch: int
    seq_len: int
    latency_ms: float
    statistic: str
    source: str
    url: str
    uncertain: str = ""
    power_w: float | None = None
    published_flops: float | None = None
    fit: bool = True            # False: predicted and reported, never fitted on (fit_note says why)
    fit_note: str = ""

    @property
    def energy_mj(self) -> float | None:
        return self.power_w * self.latency_ms if self.power_w else None


def _parse_row(raw: Any, models: dict[str, PublishedModel], where: str) -> PublishedRow:
    if not isinstance(raw, dict):
        raise HardwareError(f"{where}: a row is a mapping")
    unknown = set(raw) - set(ROW_KEYS)
    if unknown:
        raise HardwareError(f"{where}: unknown key {min(unknown)!r}")
    for key in ("id", "device", "model", "head", "runtime", "precision", "batch", "seq_len", "latency_ms",
                "source", "url"):
        if raw.get(key) in (None, ""):
            raise HardwareError(f"{where}: missing {key!r} (every row needs its setting and its source)")
    if raw["model"] not in models:
        raise HardwareError(f"{where}: unknown model {raw['model']!r} (define it under `models`)")
    if raw["head"] not in HEADS or raw["precision"] not in PRECISIONS:
        raise HardwareError(f"{where}: head must be one of {HEADS} and precision one of {PRECISIONS}")
    if not float(raw["latency_ms"]) > 0:
        raise HardwareError(f"{where}: latency_ms must be > 0")
    if raw.get("fit") is False and not raw.get("fit_note"):
        raise HardwareError(f"{where}: a row left out of fitting (fit: false) needs a fit_note saying why")
    return PublishedRow(**{**raw, "threads": str(raw.get("threads", "")), "batch": int(raw["batch"]),
                           "seq_len": int(raw["seq_len"]), "latency_ms": float(raw["latency_ms"]),
                           "device_label": str(raw.get("device_label", raw["device"])),
                           # YAML reads 22.5e9 (no sign in the exponent) as a string
                           **{k: float(raw[k]) for k in ("power_w", "published_flops") if raw.get(k) is not None},
                           "statistic": str(raw.get("statistic", "not stated"))})


def load_published(path: str | Path = DATA_FILE) -> tuple[dict[str, PublishedModel], list[PublishedRow]]:
    """The model shapes and the published rows, validated (a missing source or setting fails loudly)."""
    import yaml

    data = yaml.safe_load(Path(path).read_text())
    models = {}
    for name, m in (data.get("models") or {}).items():
        if not m.get("source") or ("config" in m) == ("bottleneck" in m):
            raise HardwareError(f"{path}: model {name!r} needs a source and one of config / bottleneck")
        models[name] = PublishedModel(name, str(m["source"]), m.get("config"),
                                      BottleneckShape(**m["bottleneck"]) if "bottleneck" in m else None)
    rows = [_parse_row(r, models, f"{path}: row {i}") for i, r in enumerate(data.get("rows") or [])]
    ids = [r.id for r in rows]
    if len(set(ids)) != len(ids):
        raise HardwareError(f"{path}: row ids must be unique")
    return models, rows


# ---------------------------------------------------------------------------------------------- calibration

def assumed_efficiency(prof: HardwareProfile) -> Efficiency:
    """The profile's factors before calibration (kept in `calibration.assumed_efficiency` once fitted)."""
    raw = prof.calibration.get("assumed_efficiency")
    return Efficiency(**raw) if raw else prof.efficiency


def max_scale(eff: Efficiency) -> float:
    """The largest compute-efficiency scale that keeps every efficiency at or below 1 (the roofline)."""
    return 1.0 / max(eff.linear, eff.attention, eff.elementwise)


def scaled_efficiency(eff: Efficiency, scale: float, source: str = "") -> Efficiency:
    """`eff` with its compute efficiencies (linear, attention, elementwise) multiplied by `scale`."""
    return Efficiency(linear=eff.linear * scale, attention=eff.attention * scale, elementwise=eff.elementwise * scale,
                      memory=eff.memory, op_overhead_us=eff.op_overhead_us, fixed_overhead_us=eff.fixed_overhead_us,
                      source=source or f"assumed compute efficiencies x {scale:.3g} (fitted)", fitted=True)


@dataclass(frozen=True)
class _RowTimes:
    """Per-op compute and memory times at the assumed factors: latency(s) re-scales compute without re-costing."""

    compute_ms: tuple[float, ...]
    memory_ms: tuple[float, ...]
    overhead_ms: float

    def latency(self, scale: float) -> float:
        return sum(max(c / scale, m) for c, m in zip(self.compute_ms, self.memory_ms)) + self.overhead_ms



def _row_times(cost: ModelCost, prof: HardwareProfile, eff: Efficiency) -> _RowTimes:
    from .predict import predict_cost

    p = predict_cost(cost, prof, eff)
    return _RowTimes(tuple(r.compute_ms for r in p.rows), tuple(r.memory_ms for r in p.rows),
                     len(p.rows) * eff.op_overhead_us / 1e3 + eff.fixed_overhead_us / 1e3)


PRIOR_WEIGHT = 0.02   # a weak pull of log(scale) toward 0: rows that barely depend on the scale leave it at 1


def fit_scale(times: Sequence[_RowTimes], published_ms: Sequence[float], upper: float) -> float:
    """The compute-efficiency scale in [0.01, upper] minimising the squared log error over the rows, plus a weak
    prior toward 1 (so memory- or overhead-bound rows, which the scale barely moves, keep the assumed factors).

    One number per device on purpose: with a handful of rows, each of a different model, a second free
    parameter (tried: the per-op overhead) fits the training models and predicts the held-out one worse."""
    from .._compat import require

    minimize_scalar = require("scipy.optimize").minimize_scalar
    if not times:
        raise HardwareError("fitting a scale needs at least one published row")

    def loss(log_s: float) -> float:
        s = math.exp(log_s)
        return sum(math.log(t.latency(s) / m) ** 2 for t, m in zip(times, published_ms)) + PRIOR_WEIGHT * log_s ** 2

    res = minimize_scalar(loss, bounds=(math.log(0.01), math.log(upper)), method="bounded", options={"xatol": 1e-6})
    return float(math.exp(res.x))


# ---------------------------------------------------------------------------------------------- the check

@dataclass(frozen=True)
class RowCheck:
    """One published row against its predictions before calibration, held out, and fitted on all rows."""

    row: PublishedRow
    kind: str
    flops: int
    params: int
    floor_ms: float
    before_ms: float
    heldout_ms: float
    heldout_basis: str
    fitted_ms: float
    before_energy_mj: float

    @property
    def before_error(self) -> float:
        return self.before_ms / self.row.latency_ms - 1

    @property
    def heldout_error(self) -> float:
        return self.heldout_ms / self.row.latency_ms - 1

    def to_dict(self) -> dict[str, Any]:
        r = self.row
        return {"id": r.id, "device": r.device, "device_label": r.device_label, "kind": self.kind, "model": r.model,
                "head": r.head, "runtime": r.runtime, "precision": r.precision, "threads": r.threads,
                "batch": r.batch, "seq_len": r.seq_len, "published_ms": r.latency_ms, "statistic": r.statistic,
                "published_energy_mj": r.energy_mj, "source": r.source, "url": r.url, "uncertain": r.uncertain,
                "published_flops": r.published_flops, "analytic_flops": self.flops, "analytic_params": self.params,
                "floor_ms": self.floor_ms, "before_ms": self.before_ms, "before_error": self.before_error,
                "heldout_ms": self.heldout_ms, "heldout_error": self.heldout_error,
                "heldout_basis": self.heldout_basis, "fitted_ms": self.fitted_ms, "fit": r.fit, "fit_note": r.fit_note,
                "predicted_energy_mj_before": self.before_energy_mj}


def _summary(errors: Sequence[float]) -> dict[str, float]:
    a = [abs(e) for e in errors]
    return {"n": len(a), "median_abs_error": statistics.median(a), "worst_abs_error": max(a)} if a else {"n": 0}


@dataclass(frozen=True)
class PublishedCheck:
    """Every published row predicted, per-device fits, and the error summaries the trust labels are built from."""

    rows: tuple[RowCheck, ...]
    scales: dict[str, float]              # device -> compute-efficiency scale fitted on all its fittable rows
    fitted: dict[str, Efficiency]         # device -> the factors its shipped profile carries (devices whose rows
                                          # identify a scale; the others keep their assumed factors)
    data_file: str

    def device_rows(self, device: str, precision: str | None = None) -> list[RowCheck]:
        return [r for r in self.rows if r.row.device == device and precision in (None, r.row.precision)]

    def kind_rows(self, kind: str) -> list[RowCheck]:
        return [r for r in self.rows if r.kind == kind]

    def devices(self) -> dict[str, dict[str, Any]]:
        out = {}
        for dev in dict.fromkeys(r.row.device for r in self.rows):
            rs = self.device_rows(dev)
            out[dev] = {"kind": rs[0].kind, "rows": len(rs), "models": len({r.row.model for r in rs}),
                        "precisions": sorted({r.row.precision for r in rs}), "scale": self.scales[dev],
                        "before": _summary([r.before_error for r in rs]),
                        "heldout": _summary([r.heldout_error for r in rs]),
                        "fitted_in_sample": _summary([r.fitted_ms / r.row.latency_ms - 1 for r in rs])}
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"label": "predicted vs published", "data_file": self.data_file,
                "rows": [r.to_dict() for r in self.rows], "devices": self.devices(),
                "overall": {"devices": len({r.row.device for r in self.rows}),
                            "before": _summary([r.before_error for r in self.rows]),
                            "heldout": _summary([r.heldout_error for r in self.rows])},
                "fitted_efficiency": {d: e.to_dict() for d, e in self.fitted.items()},
                "how": HOW}


HOW = ("before: the profile's assumed efficiency factors; held out: one compute-efficiency scale per device fitted "
       "on its rows of other models (leave one model out: every runtime of the held-out model is held out with it; "
       "a device with one model takes the median scale of the other devices of its kind); rows marked fit: false "
       "are predicted and reported but never fitted on; error = predicted / published - 1")


def check_published(rows: Sequence[PublishedRow] | None = None,
                    models: dict[str, PublishedModel] | None = None) -> PublishedCheck:
    """Predict every published row before calibration, held out (leave one model out) and fitted on all rows."""
    from .predict import predict_cost, roofline_floor_ms

    if rows is None or models is None:
        loaded_models, loaded = load_published()
        models = models or loaded_models
        rows = loaded if rows is None else rows
    profiles = {d: load_profile(d) for d in dict.fromkeys(r.device for r in rows)}
    base = {d: assumed_efficiency(p) for d, p in profiles.items()}
    costs = {r.id: models[r.model].cost(batch=r.batch, seq_len=r.seq_len, precision=r.precision, head=r.head)
             for r in rows}
    times = {r.id: _row_times(costs[r.id], profiles[r.device], base[r.device]) for r in rows}

    def fit(train: Sequence[PublishedRow], device: str) -> float | None:
        train = [t for t in train if t.fit]
        if not train:
            return None
        return fit_scale([times[t.id] for t in train], [t.latency_ms for t in train], max_scale(base[device]))

    identified = {d: fit([r for r in rows if r.device == d], d) for d in profiles}   # None: no fittable row
    scales = {d: 1.0 if s is None else s for d, s in identified.items()}
    out = []
    for r in rows:
        prof = profiles[r.device]
        own = [t for t in rows if t.device == r.device and t.model != r.model and t.fit]
        if own:
            s, basis = fit(own, r.device) or 1.0, f"fitted on {len(own)} rows of other models on this device"
        else:
            others = sorted({t.device for t in rows if profiles[t.device].kind == prof.kind and t.device != r.device
                             and identified[t.device] is not None})
            if others:
                s = min(math.exp(statistics.median(math.log(scales[d]) for d in others)), max_scale(base[r.device]))
                basis = f"no other model on this device: median scale of the other {prof.kind} devices ({len(others)})"
            else:
                s, basis = 1.0, f"no other {prof.kind} row: assumed factors"
        before = predict_cost(costs[r.id], prof, base[r.device])
        c = costs[r.id]
        out.append(RowCheck(row=r, kind=prof.kind, flops=c.flops, params=c.params,
                            floor_ms=roofline_floor_ms(c, prof.peak(r.precision), prof.memory_bandwidth_gbs.value),
                            before_ms=before.latency_ms, heldout_ms=times[r.id].latency(s), heldout_basis=basis,
                            fitted_ms=times[r.id].latency(scales[r.device]), before_energy_mj=before.energy_mj))
    fitted = {d: scaled_efficiency(base[d], s, source=(
        f"fitted (issue #20): assumed compute efficiencies x {s:.3f}, on "
        f"{sum(r.device == d and r.fit for r in rows)} published rows in hardware/published.yaml (`edgeslim hw check`)"))
        for d, s in identified.items() if s is not None and abs(math.log(s)) > 0.005}   # 1.0: nothing to write
    return PublishedCheck(tuple(out), scales, fitted, str(DATA_FILE))


def _profile_key() -> tuple[tuple[str, str, float], ...]:
    files = profile_files()
    return tuple((n, str(p), p.stat().st_mtime) for n, p in sorted(files.items())) + (
        ("published", str(DATA_FILE), DATA_FILE.stat().st_mtime),)


@functools.lru_cache(maxsize=4)
def _cached_check(key: tuple[tuple[str, str, float], ...]) -> PublishedCheck:
    return check_published()


def published_check() -> PublishedCheck:
    """The check of the shipped data, computed once per process (and again if a profile file changes)."""
    return _cached_check(_profile_key())


# ---------------------------------------------------------------------------------------------- trust

@dataclass(frozen=True)
class Trust:
    """How far a prediction on one device and precision has been checked: published / predicted lies in
    [low, high] (held-out rows), or an assumed widened band when it is unchecked."""

    hardware: str
    precision: str
    status: str                 # "checked" | "unchecked"
    rows: int                   # published rows behind the band
    low: float
    high: float
    basis: str
    label: str = field(default="")

    @property
    def error_pct(self) -> float:
        """The larger side of the band, in percent of the prediction."""
        return max(self.high - 1, 1 - self.low) * 100

    @property
    def spread(self) -> str:
        """The band in words: "±35%", or "x3.0 either way" once it passes a factor of 2."""
        if self.high <= 2 and self.low >= 0.5:
            return f"±{self.error_pct:.0f}%"
        return f"x{max(self.high, 1 / self.low):.1f} either way"

    @property
    def short(self) -> str:
        """A table-cell form: "±41% vs 6 rows" or "unchecked (x3.0 either way)"."""
        return f"{self.spread} vs {self.rows} rows" if self.status == "checked" else f"unchecked ({self.spread})"

    def range_ms(self, latency_ms: float) -> tuple[float, float]:
        return latency_ms * self.low, latency_ms * self.high

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "error_pct": round(self.error_pct, 1), "spread": self.spread, "short": self.short}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Trust:
        return cls(**{f: d[f] for f in ("hardware", "precision", "status", "rows", "low", "high", "basis", "label")})


def _band(ratios: Sequence[float]) -> tuple[float, float]:
    """(low, high) of published / predicted, always containing 1."""
    return min(min(ratios), 1.0), max(max(ratios), 1.0)


def _widen(band: tuple[float, float]) -> tuple[float, float]:
    return band[0] ** 2, band[1] ** 2


def _trust(name: str, precision: str, status: str, rows: int, band: tuple[float, float], basis: str,
           left_out: int = 0) -> Trust:
    t = Trust(name, precision, status, rows, band[0], band[1], basis)
    if status == "checked":
        label = f"{t.spread} vs {rows} published row{'s' if rows != 1 else ''}"
        label += f" (+{left_out} outside the cost model, see `edgeslim hw check`)" if left_out else ""
    else:
        label = f"unchecked ({t.spread}: {basis})"
    return Trust(name, precision, status, rows, band[0], band[1], basis, label)


def trust_for(profile: str | HardwareProfile, precision: str) -> Trust:
    """The trust label and band of predictions on `profile` at `precision`.

    checked: the device's held-out rows at this precision. Unchecked: the before-calibration band of the other
    devices of its kind at this precision, widened x2 in log space; x3 either way when no device of its kind has a
    row at this precision. Rows marked fit: false (outside the cost model) are counted in the label, not the band.
    """
    prof = load_profile(profile) if isinstance(profile, str) else profile
    name = prof.name
    if name == "host":
        fit = (prof.calibration or {}).get("fit_error_on_fit_shapes") or {}
        e = fit.get("max_abs_error")
        if prof.efficiency.fitted and e is not None and e < 1:
            return _trust(name, precision, "checked", int(fit.get("n", 0)), (1 / (1 + e), 1 / (1 - e)),
                          "fitted on this host's calibration shapes (in-sample worst error)")
        return _trust(name, precision, "unchecked", 0, UNCHECKED_BAND,
                      "host peaks measured, efficiency factors assumed; run `edgeslim hw calibrate --fit`")
    chk = published_check()
    own = chk.device_rows(name, precision)
    modelled = [r for r in own if r.row.fit]
    if modelled:
        return _trust(name, precision, "checked", len(modelled),
                      _band([1 / (1 + r.heldout_error) for r in modelled]), "held-out published rows",
                      left_out=len(own) - len(modelled))
    kind = [r for r in chk.kind_rows(prof.kind) if r.row.precision == precision and r.row.fit]
    if kind:
        return _trust(name, precision, "unchecked", 0, _widen(_band([1 / (1 + r.before_error) for r in kind])),
                      f"no published row for {name} at {precision}; the before-calibration band of {len(kind)} "
                      f"{prof.kind} rows at {precision}, widened x2")
    return _trust(name, precision, "unchecked", 0, UNCHECKED_BAND,
                  f"no published row for any {prof.kind} at {precision}")


def deadline_verdict(latency_ms: float, deadline_ms: float, trust: Trust | None = None) -> str:
    """meets / misses, or "uncertain" when the trust band of a prediction straddles the deadline
    (trust=None: a measured latency, compared as is)."""
    if trust is None:
        return "meets" if latency_ms <= deadline_ms else "misses"
    lo, hi = trust.range_ms(latency_ms)
    if hi <= deadline_ms:
        return "meets"
    if lo > deadline_ms:
        return "misses"
    return "uncertain"


def trust_fields(latency_ms: float, trust: Trust) -> dict[str, Any]:
    """The JSON fields a prediction carries: its trust label and the latency range the band implies."""
    lo, hi = trust.range_ms(latency_ms)
    return {"trust": trust.to_dict(), "trust_label": trust.label, "latency_range_ms": [round(lo, 4), round(hi, 4)]}


def host_bound_warning(pred: Any, prof: HardwareProfile, host_measured_ms: float, host_peak_gops: float,
                       host_bandwidth_gbs: float) -> str | None:
    """A warning when a device is predicted to beat this host's measured time for the same model although the
    resource that bounds the model on the device (peak compute or bandwidth, as predicted) is no faster than the
    host's; None otherwise."""
    if prof.name == "host" or pred.latency_ms >= host_measured_ms:
        return None
    if pred.bound == "memory":
        dev, host, what = prof.memory_bandwidth_gbs.value, host_bandwidth_gbs, "memory bandwidth"
    else:
        dev, host, what = prof.peak(pred.precision), host_peak_gops, f"peak {pred.precision} compute"
    if dev > host:
        return None
    return (f"{prof.name}: predicted {pred.latency_ms:.2f} ms beats this host's measured {host_measured_ms:.2f} ms "
            f"for the same model, yet its {what} ({dev:g}) is no higher than this host's ({host:.3g}) and bounds the "
            "model there: the prediction is likely optimistic")
