"""Predictor study on this host, roofline crossover, and a 5M-110M model-size sweep.

1. Calibrate: ONNX Runtime GEMM fp32 / MatMulInteger int8 throughput and copy bandwidth (2 threads).
2. Time 22 random-BERT shapes in ONNX Runtime fp32 (batch 1-4, seq 16-512, 2-12 layers, hidden 128-768), in
   alternating fit / held-out order; fit the predictor's efficiency factors on the 10 fit shapes and report
   predicted-vs-measured errors on the 12 held-out shapes (and, for contrast, with the assumed defaults).
   The fitted host profile is written to the user profiles folder ($EDGESLIM_HARDWARE_DIR or runs/hardware).
3. Crossover (predicted): where MiniLM-L6's roofline verdict flips along batch and sequence length, per device.
4. Size sweep 5M-110M params (BERT shapes with a 30,522 vocab, seq 128, batch 1): predicted utilisation per device,
   and measured utilisation on this host (achieved GFLOP/s in ONNX Runtime / calibrated GEMM peak).

Run under the shared lock (about 4-6 minutes):
    flock /tmp/edgeslim-heavy.lock .venv/bin/python benchmarks/bench_profile.py
Writes benchmarks/out/bench_profile.json and .md and prints the tables.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "out"
MINILM = {"model_type": "bert", "num_hidden_layers": 6, "hidden_size": 384, "num_attention_heads": 12,
          "intermediate_size": 1536, "vocab_size": 30522, "max_position_embeddings": 512, "type_vocab_size": 2,
          "num_labels": 2}
# (layers, hidden): 4.4M ... 109M params with a 30,522-token vocabulary
SIZES = [(2, 128), (4, 256), (4, 312), (6, 384), (4, 512), (12, 384), (8, 512), (6, 768), (12, 768)]
DEVICES = {"jetson-orin-nano": ["fp32", "fp16", "int8"], "snapdragon-8gen3-cpu": ["fp32", "int8"],
           "snapdragon-8gen3-npu": ["int8"], "apple-a17-pro-ane": ["fp16"], "raspberry-pi-5": ["fp32", "int8"]}


def log(msg: str) -> None:
    print(msg, flush=True)


def study(threads: int, budget_s: float, rounds: int) -> dict[str, Any]:
    from edgeslim.hardware.calibrate import (copy_bandwidth_gbs, gemm_gops, host_profile_dict,
                                             measure_samples, write_profile)
    from edgeslim.hardware.predict import error_summary, fit_efficiency, prediction_errors
    from edgeslim.hardware.schema import parse_profile
    from edgeslim.hardware.study import FIT_SHAPES, HELDOUT_SHAPES

    t0 = time.perf_counter()
    fp32, int8, bw = gemm_gops(int8=False, threads=threads), gemm_gops(int8=True, threads=threads), copy_bandwidth_gbs()
    log(f"calibration: fp32 {fp32['gops_p50']:.1f} GFLOP/s, int8 {int8['gops_p50']:.1f} GOP/s, copy {bw['gbs_p50']:.1f} GB/s")
    # alternate fit and held-out shapes so slow drift of the shared machine hits both sets alike
    order = []
    for i in range(max(len(FIT_SHAPES), len(HELDOUT_SHAPES))):
        order += [("fit", s) for s in FIT_SHAPES[i:i + 1]] + [("heldout", s) for s in HELDOUT_SHAPES[i:i + 1]]
    samples = measure_samples([s for _, s in order], threads=threads, rounds=rounds, budget_s=budget_s, progress=log)
    fit = [smp for (which, _), smp in zip(order, samples) if which == "fit"]
    held = [smp for (which, _), smp in zip(order, samples) if which == "heldout"]
    base = parse_profile(host_profile_dict(fp32, int8, bw, threads), where="host")
    eff = fit_efficiency(base, fit, source=f"fitted on {len(fit)} random-BERT shapes timed in ONNX Runtime fp32 at "
                                          f"{threads} threads by benchmarks/bench_profile.py")
    rows_fit = prediction_errors(base, fit, eff)
    rows_held = prediction_errors(base, held, eff)
    rows_default = prediction_errors(base, held)
    for rows, smp in ((rows_held, held), (rows_fit, fit)):
        for r, s in zip(rows, smp):
            r.update(round_p50_ms=s.extra["round_p50_ms"], pooled_p50_ms=s.extra["p50_ms"], p95_ms=s.extra["p95_ms"],
                     p99_ms=s.extra["p99_ms"], n=s.extra["n"])
    data = host_profile_dict(fp32, int8, bw, threads, efficiency=eff,
                             extra={"fit_shapes": [s.name for s in fit],
                                    "fit_error_on_fit_shapes": error_summary(rows_fit),
                                    "heldout_error": error_summary(rows_held)})
    path = write_profile(data)
    log(f"wrote fitted host profile {path}")
    return {"calibration": {"fp32": fp32, "int8": int8, "bandwidth": bw}, "efficiency": eff.to_dict(),
            "fit": {"rows": rows_fit, "summary": error_summary(rows_fit)},
            "heldout": {"rows": rows_held, "summary": error_summary(rows_held)},
            "heldout_uncalibrated": {"rows": rows_default, "summary": error_summary(rows_default)},
            "host_profile": str(path), "seconds": round(time.perf_counter() - t0, 1)}


def crossovers() -> dict[str, Any]:
    from edgeslim.hardware import crossover

    out = {}
    for dev, precs in DEVICES.items():
        for prec in precs:
            b = crossover(MINILM, dev, axis="batch", values=(1, 2, 4, 8, 16, 32, 64, 128, 256), seq_len=128,
                          precision=prec)
            s = crossover(MINILM, dev, axis="seq_len", values=(8, 16, 32, 64, 128, 256, 512), batch=1,
                          precision=prec)
            b16 = crossover(MINILM, dev, axis="batch", values=(1, 2, 4, 8, 16, 32, 64, 128, 256), seq_len=16,
                            precision=prec)
            out[f"{dev}/{prec}"] = {"batch@seq128": b, "seq@batch1": s, "batch@seq16": b16}
    return out


def flips(rows: list[dict[str, Any]], axis: str) -> str:
    parts = [f"{r[axis]}:{r['bound'][0]}" for r in rows]
    changes = [f"{a[axis]}->{b[axis]} ({a['bound']}->{b['bound']})" for a, b in zip(rows, rows[1:])
               if a["bound"] != b["bound"]]
    return (", ".join(changes) or f"none ({rows[0]['bound']} throughout)") + "  [" + " ".join(parts) + "]"


def size_sweep(threads: int, budget_s: float, rounds: int, measure: bool) -> list[dict[str, Any]]:
    from edgeslim.hardware import load_profile, model_cost, predict_cost, resolve_config
    from edgeslim.hardware.measured import ShapeSpec, measure_shapes_rounds

    host = None
    try:
        host = load_profile("host")
    except Exception:  # noqa: BLE001 - the sweep still predicts the edge devices
        pass
    specs = [ShapeSpec(layers, hidden, 128, vocab=30522, heads=max(1, hidden // 64) if hidden % 64 == 0 else 12)
             for layers, hidden in SIZES]
    measured = measure_shapes_rounds(specs, threads=threads, rounds=rounds, budget_s=budget_s, progress=log) \
        if (measure and host is not None) else [None] * len(specs)
    rows = []
    for spec, m in zip(specs, measured):
        cfg = resolve_config(spec.config())
        row: dict[str, Any] = {"layers": spec.layers, "hidden": spec.hidden,
                               "params_m": round(model_cost(cfg).params / 1e6, 1)}
        for dev, precs in DEVICES.items():
            for prec in precs:
                p = predict_cost(model_cost(cfg, seq_len=128, precision=prec), load_profile(dev))
                row[f"{dev}/{prec}"] = {"utilisation": round(p.utilisation, 4), "bound": p.bound,
                                        "latency_ms": round(p.latency_ms, 3)}
        if host is not None:
            p = predict_cost(model_cost(cfg, seq_len=128), host)
            row["host/fp32 predicted"] = {"utilisation": round(p.utilisation, 4), "latency_ms": round(p.latency_ms, 3),
                                          "bound": p.bound}
            if m is not None:
                flops = model_cost(cfg, seq_len=128).flops
                ms = m["best_round_p50_ms"]
                row["host/fp32 measured"] = {"best_round_p50_ms": round(ms, 3), "round_p50_ms": m["round_p50_ms"],
                                             "p95_ms": m["p95_ms"],
                                             "utilisation": round(flops / (ms / 1e3) / (host.peak("fp32") * 1e9), 4),
                                             "rel_error_of_prediction": round(p.latency_ms / ms - 1, 4)}
                log(f"size {row['params_m']}M: measured {ms:.2f} ms, predicted {p.latency_ms:.2f} ms")
        rows.append(row)
    return rows


def markdown(res: dict[str, Any]) -> str:
    L = ["# Profile benchmark", "", f"host: {res['host']}", ""]
    st = res.get("study")
    if st:
        c = st["calibration"]
        L += ["## Host calibration (measured, ONNX Runtime, 2 threads)", "",
              f"fp32 GEMM {c['fp32']['gops_p50']:.1f} GFLOP/s (p50; best {c['fp32']['gops_best']:.1f}), int8 "
              f"MatMulInteger {c['int8']['gops_p50']:.1f} GOP/s (p50; best {c['int8']['gops_best']:.1f}), copy "
              f"bandwidth {c['bandwidth']['gbs_p50']:.1f} GB/s (p50)", ""]
        e = st["efficiency"]
        L += [f"fitted efficiencies: linear {e['linear']:.3f}, attention {e['attention']:.3f}, elementwise "
              f"{e['elementwise']:.3f}, memory {e['memory']:.3f}, op overhead {e['op_overhead_us']:.1f} us, "
              f"fixed {e['fixed_overhead_us']:.0f} us", ""]
        for key, title in (("heldout", "Held-out shapes (not used for fitting): predicted vs measured"),
                           ("fit", "Fit shapes (in-sample)")):
            s = st[key]["summary"]
            L += [f"## {title}", "", f"median |error| {s['median_abs_error']:.1%}, within 10%: "
                  f"{s['within_10pct']:.0%}, within 20%: {s['within_20pct']:.0%}, max {s['max_abs_error']:.1%} "
                  f"(n = {s['n']})", "", "| shape | measured ms (best round p50) | round p50s | predicted ms | error | bound |", "|---|---|---|---|---|---|"]
            for r in st[key]["rows"]:
                L.append(f"| {r['shape']} | {r['measured_ms']:.2f} | {', '.join(f'{m:.1f}' for m in r['round_p50_ms'])} "
                         f"| {r['predicted_ms']:.2f} | {r['rel_error']:+.1%} "
                         f"| {r['bound']} |")
            L.append("")
        s = st["heldout_uncalibrated"]["summary"]
        L += [f"Uncalibrated (assumed default efficiencies) on the same held-out shapes: median |error| "
              f"{s['median_abs_error']:.1%}, within 10%: {s['within_10pct']:.0%}", ""]
    L += ["## Roofline crossover of MiniLM-L6 (predicted)", "",
          "| device/precision | batch at seq 128 | seq len at batch 1 | batch at seq 16 |", "|---|---|---|---|"]
    for k, v in res["crossover"].items():
        L.append(f"| {k} | {flips(v['batch@seq128'], 'batch')} | {flips(v['seq@batch1'], 'seq_len')} | "
                 f"{flips(v['batch@seq16'], 'batch')} |")
    L += ["", "(m = memory-bound, c = compute-bound, o = overhead-bound)", "",
          "## Size sweep: utilisation (achieved ops/s over peak) at batch 1, seq 128", ""]
    rows = res["sizes"]
    keys = [k for k in rows[0] if "/" in k]
    L += ["| params (M) | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for r in rows:
        L.append(f"| {r['params_m']} | " + " | ".join(f"{r[k]['utilisation']:.0%}" for k in keys) + " |")
    L += ["", "All columns are predicted except `host/fp32 measured`."]
    return "\n".join(L) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--budget", type=float, default=0.6, help="seconds of timed calls per shape and round")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds over all shapes")
    ap.add_argument("--no-study", action="store_true", help="skip the timed predictor study")
    ap.add_argument("--no-measure-sizes", action="store_true", help="size sweep: predicted only")
    args = ap.parse_args()
    from edgeslim.measure import host_facts

    res: dict[str, Any] = {"host": host_facts(), "threads": args.threads}
    if not args.no_study:
        res["study"] = study(args.threads, args.budget, args.rounds)
    res["crossover"] = crossovers()
    res["sizes"] = size_sweep(args.threads, args.budget, args.rounds, not args.no_measure_sizes)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench_profile.json").write_text(json.dumps(res, indent=2, default=str))
    md = markdown(res)
    (OUT / "bench_profile.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
