"""The `profile` analysis step: analytic cost, roofline verdict, predicted latency/energy per device,
measured latency on this host, and a real-time verdict against a deadline.

Every figure in the result is labelled "measured" (timed on this host) or "predicted" (roofline model); every
prediction carries its trust label (hardware/check.py: its error vs published measurements, or "unchecked"), and a
predicted verdict whose band straddles the deadline reads "uncertain".
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..artifact import ModelArtifact
from ..context import RunContext
from ..errors import ConfigError, HardwareError
from ..hardware.predict import artifact_precision, device_precision
from ..registry import register_step, suggest

PRECISION_CHOICES = ("auto", "fp32", "fp16", "int8")


@dataclass(frozen=True)
class ProfileConfig:
    """Profile a model on hardware profiles (predicted) and on this host (measured)."""

    hardware: tuple[str, ...] | str = ("jetson-orin-nano", "raspberry-pi-5")   # profile names, or ("all",)
    batch: int = 1
    seq_len: int = 128
    precision: str = "auto"          # auto = the artifact's precision (fp32 unless it records another)
    deadline_ms: float | None = None
    measure: bool = True             # time the model on this host (ONNX Runtime, and PyTorch for HF artifacts)
    plot: bool = False               # write roofline_<hardware>.png beside the run's outputs

    def __post_init__(self) -> None:
        from ..hardware.predict import check_deadline
        from ..hardware.schema import list_profiles

        hw = (self.hardware,) if isinstance(self.hardware, str) else tuple(self.hardware)
        object.__setattr__(self, "hardware", hw)
        if not hw:
            raise ConfigError("profile: hardware must name at least one profile (see `edgeslim hw list`)")
        known = list_profiles()
        for name in hw:
            if name != "all" and name not in known:
                raise ConfigError(f"profile: unknown hardware {name!r}.{suggest(name, known)}")
        if self.batch < 1:
            raise ConfigError(f"profile: batch must be >= 1, got {self.batch}")
        if self.seq_len < 1:
            raise ConfigError(f"profile: seq_len must be >= 1, got {self.seq_len}")
        if self.precision not in PRECISION_CHOICES:
            raise ConfigError(f"profile: unknown precision {self.precision!r}.{suggest(self.precision, PRECISION_CHOICES)}")
        if self.deadline_ms is not None:
            check_deadline(self.deadline_ms, "profile: deadline_ms")


def profile_artifact(art: ModelArtifact, cfg: ProfileConfig, *, threads: int = 2, plot_dir: Path | None = None,
                     progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The full profile report of `art` as plain data (JSON-ready)."""
    from ..hardware import list_profiles, load_profile, model_cost, predict_cost, resolve_config
    from ..hardware.check import trust_fields, trust_for
    from ..hardware.predict import roofline_floor_ms

    say = progress or (lambda s: None)
    shape = resolve_config(art)
    wanted = artifact_precision(art) if cfg.precision == "auto" else cfg.precision
    names = list_profiles() if "all" in cfg.hardware else list(dict.fromkeys(cfg.hardware))
    seq = shape_seq(shape, cfg.seq_len)
    cost = model_cost(shape, batch=cfg.batch, seq_len=seq, precision=wanted)
    report: dict[str, Any] = {
        "model": str(art.path), "format": art.format, "batch": cfg.batch, "seq_len": seq, "precision": wanted,
        "deadline_ms": cfg.deadline_ms,
        "cost": {"label": "analytic", "params": cost.params, "model_bytes": cost.model_bytes, "macs": cost.macs,
                 "flops": cost.flops, "traffic_bytes": cost.bytes, "intensity": round(cost.intensity, 3),
                 "layers": [{"layer": k, **v} for k, v in cost.by_layer().items()]},
        "hardware": {}, "measured": None,
    }
    if cfg.measure and not shape.is_vision and art.format in ("hf", "onnx"):
        from ..hardware.measured import measure_artifact

        say("timing on this host ...")
        report["measured"] = measure_artifact(art, batch=cfg.batch, seq_len=seq, vocab=max(shape.vocab, 2),
                                              threads=threads)
    host_ref: dict[str, Any] = {}     # this host's peaks, probed once if a device prediction beats its timing
    for name in names:
        try:
            prof = load_profile(name)
        except HardwareError:
            if name == "host" and "all" in cfg.hardware:
                report["hardware"][name] = {"skipped": "not calibrated: run `edgeslim hw calibrate`"}
                continue
            raise
        prec, note = device_precision(prof, wanted, cfg.precision == "auto")
        c = cost if prec == wanted else model_cost(shape, batch=cfg.batch, seq_len=seq, precision=prec)
        pred = predict_cost(c, prof)
        trust = trust_for(prof, prec)
        row = pred.to_dict(ops=False)
        row.update(ridge_point=round(prof.ridge_point(prec), 3), note=note, ops=[r.to_dict() for r in pred.rows],
                   floor_ms=roofline_floor_ms(c, prof.peak(prec), prof.memory_bandwidth_gbs.value),
                   **trust_fields(pred.latency_ms, trust))
        warning = _host_warning(pred, prof, report, threads, host_ref)
        if warning:
            row["warning"] = warning
        if cfg.deadline_ms is not None:
            row["deadline"] = _deadline_verdict(shape, prof, pred, cfg, prec, report["measured"] if name == "host"
                                                else None, trust)
            if warning and row["deadline"]["verdict"] == "meets":   # a suspect prediction cannot promise the deadline
                row["deadline"].update(verdict="uncertain", verdict_note="downgraded from meets: " + warning)
        if plot_dir is not None:
            from ..hardware.plot import roofline_plot

            row["plot"] = str(roofline_plot(pred, prof, Path(plot_dir) / f"roofline_{name}.png"))
        report["hardware"][name] = row
    return report


def shape_seq(shape: Any, seq_len: int) -> int:
    """Tokens per sequence: seq_len for text, patches + 1 for ViT."""
    if shape.is_vision:
        return (shape.image_size // shape.patch_size) ** 2 + 1
    return seq_len


def _host_warning(pred: Any, prof: Any, report: dict[str, Any], threads: int, host_ref: dict[str, Any]) -> str | None:
    """A warning when `pred` beats this host's measured time on a device no faster where the model is bound."""
    from ..hardware.check import host_bound_warning

    m = report.get("measured") or {}
    if prof.name == "host" or not m.get("runtimes"):
        return None
    host_ms = min(st["p50_ms"] for st in m["runtimes"].values())
    if pred.latency_ms >= host_ms:
        return None
    if pred.precision not in host_ref:
        from ..hardware.calibrate import host_peaks

        host_ref[pred.precision] = host_peaks(pred.precision, threads)
        report.setdefault("host_peaks", {})[pred.precision] = host_ref[pred.precision]
    ref = host_ref[pred.precision]
    achieved = pred.flops / (host_ms / 1e3) / 1e9    # the host ran this model at least this fast: a floor on its peak
    return host_bound_warning(pred, prof, host_ms, max(ref["peak_gops"], achieved), ref["bandwidth_gbs"])


def _deadline_verdict(shape: Any, prof: Any, pred: Any, cfg: ProfileConfig, prec: str,
                      measured: dict[str, Any] | None, trust: Any) -> dict[str, Any]:
    from ..hardware.check import deadline_verdict
    from ..hardware.predict import largest_under_deadline

    deadline = float(cfg.deadline_ms)  # type: ignore[arg-type]
    out: dict[str, Any] = {}
    if measured and measured.get("runtimes"):
        # the fastest runtime's p99 decides: that is what a user would ship
        rt, st = min(measured["runtimes"].items(), key=lambda kv: kv[1]["p99_ms"])
        basis, latency, verdict = f"measured p99 ({rt}, this host)", st["p99_ms"], deadline_verdict(st["p99_ms"], deadline)
    else:
        basis, latency, verdict = "predicted latency", pred.latency_ms, deadline_verdict(pred.latency_ms, deadline, trust)
        lo, hi = trust.range_ms(pred.latency_ms)
        out = {"trust_label": trust.label, "latency_range_ms": [round(lo, 4), round(hi, 4)]}
    big = largest_under_deadline(shape, prof, deadline, batch=cfg.batch, seq_len=cfg.seq_len, precision=prec)
    return {"deadline_ms": deadline, "latency_ms": latency, "basis": basis, "verdict": verdict, **out,
            "max_batch": big["max_batch"], "max_seq_len": big["max_seq_len"],
            "seq_is_model_limit": bool(shape.max_positions) and big["max_seq_len"] == shape.max_positions,
            "max_label": "predicted (roofline model)"}


@register_step("profile", ProfileConfig, analysis=True)
def profile(model: ModelArtifact, cfg: ProfileConfig, ctx: RunContext) -> ModelArtifact:
    """Cost, roofline verdict and latency/energy per hardware profile; recorded as the `profile` metric."""
    report = profile_artifact(model, cfg, threads=ctx.threads,
                              plot_dir=Path(ctx.out_dir) if cfg.plot else None)
    for row in report["hardware"].values():
        row.pop("ops", None)   # per-op rows stay out of the manifest; `edgeslim profile --ops` prints them
    return model.with_metrics(profile=report)
