"""Before quantizing: will INT8 be faster on this target? Op coverage of the scheme x the target's INT8 throughput.

Two bases, stated in every prediction:
- a hardware profile (`edgeslim.hardware.load_profile(target)`, e.g. raspberry-pi-5, or a calibrated `host`):
  the roofline predictor's per-op times at FP32 and INT8, taking INT8 time only for the ops the scheme quantizes;
- the host without a calibrated profile: this machine's ONNX Runtime GEMM throughput measured now at FP32 and
  INT8 (`edgeslim.hardware.calibrate.gemm_gops`), applied to the share of MACs the scheme quantizes (Amdahl).
  This ignores the time of non-matmul ops, so it over-states the speed-up; its sign is what it is for.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import HardwareError

# op kinds of the analytic cost model each scheme runs in INT8
COVERED_KINDS = {"dynamic": ("linear",), "static": ("linear", "attention"), "fp16": ()}
FASTER_MARGIN = 1.05      # predict "faster" only above a 5% speed-up


@dataclass(frozen=True)
class SpeedupPrediction:
    """Predicted speed-up of INT8 over the float model (FP32; FP16 on devices without FP32) on a target."""

    target: str
    scheme_kind: str
    basis: str
    coverage: float                  # share of MACs the scheme runs in INT8
    int8_throughput_ratio: float     # INT8 over FP32 GEMM throughput on the target
    predicted_speedup: float         # FP32 time / INT8 time
    faster: bool
    seq_len: int
    detail: dict[str, Any] = field(default_factory=dict)
    label: str = "predicted"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def verdict(self) -> str:
        word = "faster" if self.faster else "not faster"
        return (f"INT8 ({self.scheme_kind}) predicted {word} on {self.target}: {self.predicted_speedup:.2f}x "
                f"(covers {self.coverage:.0%} of MACs, INT8/{self.detail.get('baseline', 'fp32').upper()} GEMM throughput "
                f"{self.int8_throughput_ratio:.2f}x; "
                f"{self.basis})")


def predict_int8_speedup(config_source: Any, target: str = "host", *, scheme_kind: str = "dynamic",
                         seq_len: int = 128, threads: int = 2) -> SpeedupPrediction:
    """Predict FP32-time / INT8-time of a model (HF folder, artifact or config dict) on `target`."""
    from ..hardware import load_profile, model_cost, predict_cost, resolve_config

    cfg = resolve_config(config_source)
    kinds = COVERED_KINDS.get(scheme_kind, ("linear",))
    cost32 = model_cost(cfg, batch=1, seq_len=seq_len, precision="fp32")
    total_macs = sum(o.macs for o in cost32.ops) or 1
    coverage = sum(o.macs for o in cost32.ops if o.kind in kinds) / total_macs
    try:
        prof = load_profile(target)
    except HardwareError:
        if target != "host":
            raise
        prof = None
    if prof is not None and "int8" in prof.peak_gops and ("fp32" in prof.peak_gops or "fp16" in prof.peak_gops):
        base = "fp32" if "fp32" in prof.peak_gops else "fp16"   # NPUs run float models in FP16
        p32 = predict_cost(model_cost(cfg, batch=1, seq_len=seq_len, precision=base), prof)
        p8 = predict_cost(model_cost(cfg, batch=1, seq_len=seq_len, precision="int8"), prof)
        t8 = {(r.cost.layer, r.cost.op): r.time_ms for r in p8.rows}
        mixed = sum(t8.get((r.cost.layer, r.cost.op), r.time_ms) if r.cost.kind in kinds else r.time_ms
                    for r in p32.rows) + prof.efficiency.fixed_overhead_us / 1e3
        speed = p32.latency_ms / mixed
        ratio = prof.peak("int8") / prof.peak(base)
        fit = "calibrated" if prof.efficiency.fitted else "efficiency factors assumed, not fitted"
        from ..hardware.check import trust_for

        trust = trust_for(prof, "int8")
        basis = (f"hardware profile {prof.name!r} roofline ({fit}); INT8 time for {', '.join(kinds) or 'no'} ops, "
                 f"{base.upper()} for the rest; baseline {base.upper()}; INT8 trust: {trust.label}")
        detail = {"baseline": base, "baseline_ms": round(p32.latency_ms, 3), "int8_ms": round(mixed, 3),
                  "profile": prof.name, "trust_label": trust.label}
    elif prof is not None:
        speed, ratio = 1.0, 0.0
        basis = f"hardware profile {prof.name!r} lists no INT8 throughput: INT8 is not accelerated there"
        detail = {"profile": prof.name, "precisions": prof.precisions}
    else:
        from ..hardware.calibrate import gemm_gops
        from ..measure import host_facts

        g32 = gemm_gops(512, int8=False, threads=threads, iters=10)
        g8 = gemm_gops(512, int8=True, threads=threads, iters=10)
        ratio = g8["gops_p50"] / g32["gops_p50"]
        speed = 1.0 / ((1 - coverage) + coverage / ratio) if kinds else 1.0
        flags = host_facts()["cpu_flags"]
        vnni = [f for f in flags if f in ("avx512_vnni", "avx_vnni", "amx_int8")]
        basis = (f"host GEMM throughput measured now (ONNX Runtime MatMul vs MatMulInteger, 512^3, {threads} threads; "
                 f"INT8 dot-product flags: {', '.join(vnni) or 'none'}), Amdahl over MAC share; non-matmul ops ignored "
                 "(over-states the speed-up)")
        detail = {"fp32_gops": round(g32["gops_p50"], 1), "int8_gops": round(g8["gops_p50"], 1),
                  "cpu_flags": flags}
        if not kinds:
            basis = "scheme runs no INT8 ops"
    return SpeedupPrediction(target, scheme_kind, basis, round(coverage, 4), round(ratio, 3), round(speed, 3),
                             speed > FASTER_MARGIN, seq_len, detail)
