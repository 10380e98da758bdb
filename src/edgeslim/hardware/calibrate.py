"""Host calibration: measure this machine's achievable GEMM throughput and copy bandwidth, write `host.yaml`.

fp32: ONNX Runtime MatMul [n, n] x [n, n]; int8: ONNX Runtime MatMulInteger (uint8 x int8 -> int32);
bandwidth: numpy copy of a 256 MB buffer (read + write bytes counted). All at a pinned thread count.
Optionally (`fit`), random BERT shapes are timed in ONNX Runtime and the predictor's efficiency factors
are fitted to them, so host predictions are calibrated.
"""
from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any, Callable, Sequence

from .._compat import require
from ..measure import host_facts, measure_latency
from .schema import Efficiency, HardwareProfile, parse_profile, user_dir


def _gemm_model(n: int, int8: bool) -> bytes:
    onnx = require("onnx")
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    if int8:
        b = numpy_helper.from_array(rng.integers(-127, 127, (n, n), dtype=np.int8), "B")
        node = helper.make_node("MatMulInteger", ["A", "B"], ["Y"])
        a_t, y_t = TensorProto.UINT8, TensorProto.INT32
    else:
        b = numpy_helper.from_array(rng.standard_normal((n, n)).astype(np.float32), "B")
        node = helper.make_node("MatMul", ["A", "B"], ["Y"])
        a_t, y_t = TensorProto.FLOAT, TensorProto.FLOAT
    graph = helper.make_graph([node], "gemm", [helper.make_tensor_value_info("A", a_t, [n, n])],
                              [helper.make_tensor_value_info("Y", y_t, [n, n])], initializer=[b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def gemm_gops(n: int = 1024, int8: bool = False, threads: int = 2, iters: int = 10) -> dict[str, float]:
    """Achievable ONNX Runtime GEMM throughput (giga-ops/s, 2 ops per MAC) at `threads` threads (best round p50)."""
    import numpy as np

    from ..runtime.onnx_rt import make_session

    sess = make_session(_gemm_model(n, int8), threads)
    rng = np.random.default_rng(1)
    a = rng.integers(0, 255, (n, n), dtype=np.uint8) if int8 else rng.standard_normal((n, n)).astype(np.float32)
    p50, best = _best_round(lambda: sess.run(None, {"A": a}), iters)
    ops = 2 * n ** 3
    return {"gops_p50": ops / (p50 / 1e3) / 1e9, "gops_best": ops / (best / 1e3) / 1e9, "p50_ms": p50, "n": n}


def _best_round(fn: Callable[[], Any], iters: int, rounds: int = 3) -> tuple[float, float]:
    """(lowest round median, fastest call) over `rounds` rounds: the least-disturbed estimate on a shared machine."""
    stats = [measure_latency(fn, warmup=2, iters=iters) for _ in range(rounds)]
    return min(s.p50_ms for s in stats), min(s.min_ms for s in stats)


def copy_bandwidth_gbs(mbytes: int = 256, iters: int = 6) -> dict[str, float]:
    """Memory copy bandwidth (GB/s) from a numpy copy of a buffer far larger than the caches (read + write)."""
    import numpy as np

    src = np.ones(mbytes * (1 << 20) // 8, dtype=np.float64)
    dst = np.empty_like(src)
    p50, best = _best_round(lambda: np.copyto(dst, src), iters)
    moved = 2 * src.nbytes
    return {"gbs_p50": moved / (p50 / 1e3) / 1e9, "gbs_best": moved / (best / 1e3) / 1e9, "p50_ms": p50,
            "mbytes": mbytes}


# per-core ops per cycle of one vector unit, by the best ISA flag (2 ops per MAC); a floor, not a datasheet figure
_OPS_PER_CYCLE = {"int8": (("amx_int8", 1024), ("avx512_vnni", 128), ("avx_vnni", 64), ("avx2", 64)),
                  "fp32": (("avx512f", 32), ("avx2", 32), ("fma", 32))}


def _cpu_ghz() -> float:
    try:
        with open("/proc/cpuinfo") as f:
            mhz = [float(line.split(":", 1)[1]) for line in f if line.startswith("cpu MHz")]
        return max(mhz) / 1000 if mhz else 2.0
    except (OSError, ValueError):
        return 2.0


def host_peaks(precision: str, threads: int = 2) -> dict[str, Any]:
    """This host's peak compute at `precision` (fp32 or int8; fp16 as fp32) and bandwidth, for comparing devices
    with it: the larger of the calibrated (or quickly probed: 512^3 GEMM, 64 MB copy) GEMM rate and an estimate
    from the CPU's vector flags x clock x threads; bandwidth as calibrated or probed."""
    import os

    from ..errors import HardwareError
    from .schema import load_profile

    prec = "int8" if precision == "int8" else "fp32"
    try:
        prof = load_profile("host")
        gemm, bw, how = prof.peak(prec), prof.memory_bandwidth_gbs.value, "calibrated host profile"
    except HardwareError:
        gemm = gemm_gops(512, int8=prec == "int8", threads=threads, iters=5)["gops_best"]
        bw = copy_bandwidth_gbs(64, iters=3)["gbs_best"]
        how = f"quick probe (ONNX Runtime {prec} GEMM 512^3, 64 MB copy, {threads} threads)"
    flags = set(host_facts().get("cpu_flags") or [])
    per_cycle = next((ops for flag, ops in _OPS_PER_CYCLE[prec] if flag in flags), 8 if prec == "fp32" else 16)
    cores = min(threads, os.cpu_count() or 1)
    flag_est = cores * _cpu_ghz() * per_cycle
    return {"peak_gops": max(gemm, flag_est), "bandwidth_gbs": bw, "gemm_gops": gemm, "flag_estimate_gops": flag_est,
            "label": "measured / estimate",
            "how": f"max of {how} and {cores} threads x {_cpu_ghz():.2f} GHz x {per_cycle} {prec} ops/cycle (CPU flags)"}


def host_profile_dict(fp32: dict[str, float], int8: dict[str, float], bw: dict[str, float], threads: int,
                      efficiency: Efficiency | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The `host` profile as YAML-ready data from calibration measurements."""
    facts = host_facts()
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    how = f"measured by `edgeslim hw calibrate` on {facts['cpu']} at {threads} threads, {when}"
    active_w, idle_w = 10.0, 4.0
    dyn = active_w - idle_w
    data: dict[str, Any] = {
        "name": "host",
        "description": f"this machine: {facts['cpu']}, {threads} threads ({', '.join(facts['cpu_flags'])})",
        "kind": "cpu",
        "peak_gops": {
            "fp32": {"value": round(fp32["gops_p50"], 1),
                     "source": f"{how}: ONNX Runtime MatMul {fp32['n']}^3 fp32, best of 3 round medians"},
            "int8": {"value": round(int8["gops_p50"], 1),
                     "source": f"{how}: ONNX Runtime MatMulInteger {int8['n']}^3 uint8 x int8, best of 3 round medians"},
        },
        "memory_bandwidth_gbs": {"value": round(bw["gbs_p50"], 2),
                                 "source": f"{how}: numpy copy of {bw['mbytes']} MB (read + write), best of 3 round medians"},
        "memory_gb": {"value": round(_mem_gb(), 1), "source": "/proc/meminfo MemTotal"},
        "power_active_w": {"value": active_w, "estimate": True,
                           "source": "estimate: no RAPL or power meter on this virtual machine; ~5 W per busy "
                                     "server core (socket TDP / cores) for 2 threads"},
        "power_idle_w": {"value": idle_w, "estimate": True,
                         "source": "estimate: static share of 2 server cores plus their memory; not measurable here"},
        "pj_per_mac": {
            "fp32": {"value": round(dyn / (fp32["gops_p50"] / 2 * 1e9) * 1e12, 2), "estimate": True,
                     "source": "estimate: (active - idle power) / measured fp32 MAC rate"},
            "int8": {"value": round(dyn / (int8["gops_p50"] / 2 * 1e9) * 1e12, 2), "estimate": True,
                     "source": "estimate: (active - idle power) / measured int8 MAC rate"},
        },
        "pj_per_dram_byte": {"value": 120, "estimate": True,
                             "source": "estimate: ~15 pJ/bit for server DDR4/DDR5 access and I/O (order of magnitude)"},
        "calibration": {"threads": threads, "when": when, "host": facts, "fp32": fp32, "int8": int8,
                        "bandwidth": bw, **(extra or {})},
    }
    if efficiency is not None:
        data["efficiency"] = efficiency.to_dict()
    return data


def _mem_gb() -> float:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    return int(line.split()[1]) / (1 << 20)
    except OSError:
        pass
    return 1.0


def write_profile(data: dict[str, Any], folder: str | Path | None = None) -> Path:
    """Validate and write a profile YAML (atomically) into the user profiles folder."""
    import yaml

    from ..fileio import atomic_path

    parse_profile(data, where=data.get("name", "profile"))
    folder = Path(folder) if folder else user_dir()
    target = folder / f"{data['name']}.yaml"
    with atomic_path(target) as tmp:
        tmp.write_text("# Written by `edgeslim hw calibrate`; re-run it on this machine, never copy it to another.\n"
                       + yaml.safe_dump(data, sort_keys=False, width=120))
    return target


def measure_samples(shapes: Sequence[Any], threads: int = 2, rounds: int = 3, budget_s: float = 0.6,
                    progress: Callable[[str], None] | None = None) -> list[Any]:
    """Time ShapeSpecs in ONNX Runtime fp32 in interleaved rounds; predictor Samples of the best round median."""
    from .measured import measure_shapes_rounds
    from .predict import Sample, resolve_config

    rows = measure_shapes_rounds(list(shapes), threads=threads, rounds=rounds, budget_s=budget_s, progress=progress)
    out = []
    for spec, r in zip(shapes, rows):
        out.append(Sample(spec.name, resolve_config(spec.config()), spec.batch, spec.seq_len, "fp32",
                          r["best_round_p50_ms"], extra=r))
        if progress:
            progress(f"{spec.name}: best round p50 {r['best_round_p50_ms']:.2f} ms (round p50s "
                     f"{', '.join(f'{m:.2f}' for m in r['round_p50_ms'])}; pooled p95 {r['p95_ms']:.2f})")
    return out


def calibrate_host(threads: int = 2, fit: bool = True, folder: str | Path | None = None,
                   progress: Callable[[str], None] | None = None) -> tuple[Path, HardwareProfile]:
    """Measure GEMM fp32/int8 throughput and copy bandwidth (and fit efficiencies), write host.yaml."""
    say = progress or (lambda s: None)
    fp32 = gemm_gops(int8=False, threads=threads)
    say(f"ONNX Runtime fp32 GEMM: {fp32['gops_p50']:.1f} GFLOP/s (p50)")
    int8 = gemm_gops(int8=True, threads=threads)
    say(f"ONNX Runtime int8 MatMulInteger: {int8['gops_p50']:.1f} GOP/s (p50)")
    bw = copy_bandwidth_gbs()
    say(f"copy bandwidth: {bw['gbs_p50']:.1f} GB/s (p50)")
    data = host_profile_dict(fp32, int8, bw, threads)
    eff = None
    extra: dict[str, Any] = {}
    if fit:
        from .predict import error_summary, fit_efficiency, prediction_errors
        from .study import FIT_SHAPES

        prof = parse_profile(data, where="host")
        samples = measure_samples(FIT_SHAPES, threads=threads, progress=say)
        eff = fit_efficiency(prof, samples, source=f"fitted on {len(samples)} random-BERT shapes timed in ONNX "
                                                   f"Runtime fp32 at {threads} threads ({data['calibration']['when']})")
        fit_err = error_summary(prediction_errors(prof, samples, eff))
        extra = {"fit_shapes": [s.name for s in samples], "fit_measured_ms": [round(s.measured_ms, 4) for s in samples],
                 "fit_error_on_fit_shapes": fit_err}
        say(f"fitted efficiencies: linear {eff.linear:.3f}, attention {eff.attention:.3f}, elementwise "
            f"{eff.elementwise:.3f}, memory {eff.memory:.3f}, op overhead {eff.op_overhead_us:.1f} us, fixed "
            f"{eff.fixed_overhead_us:.0f} us; error on the fit shapes: median {fit_err['median_abs_error']:.1%}")
    data = host_profile_dict(fp32, int8, bw, threads, efficiency=eff, extra=extra)
    path = write_profile(data, folder)
    from .schema import read_profile_file

    return path, read_profile_file(path)
