"""Runtime x precision -> size, dev metric, p50, p99: every export of a bundle timed side by side with PyTorch.

Usage (run under the shared lock, after `edgeslim export ... --out runs/export/teacher-sst2`):
    flock /tmp/edgeslim-heavy.lock .venv/bin/python benchmarks/bench_export.py \
        --bundle runs/export/teacher-sst2 --source runs/teacher-sst2

Every model gets the same batch-1 input at the bundle's static sequence length (all tokens real), timed in
interleaved rounds (edgeslim.measure.compare_latency); the metric comes from the export's own manifest
(full dev set, measured at export time). Writes benchmarks/out/bench_export.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from _common import rel, resolve_teacher  # noqa: E402
from edgeslim.artifact import ModelArtifact  # noqa: E402
from edgeslim.measure import compare_latency  # noqa: E402


def file_mb(art: ModelArtifact) -> float:
    p = Path(art.path) / art.extra["file"]
    size = sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size
    return size / 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", default="runs/export/teacher-sst2", help="output folder of `edgeslim export`")
    ap.add_argument("--source", default=None, help="the HF model the bundle was exported from [$EDGESLIM_BENCH_TEACHER, "
                                                   "runs/teacher-sst2 if present, else runs/demo/01-finetune]")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--name", default=None, help="output name [bench_export-<bundle folder>]")
    args = ap.parse_args(argv)
    args.source = args.source or str(resolve_teacher())
    if not (Path(args.bundle) / "edgeslim.json").is_file():
        print(f"bench: error: no export bundle at {args.bundle}: make it with `edgeslim export --model "
              f"{rel(args.source)} --targets onnx,litert,executorch,coreml --seq-len 64 --out {args.bundle} "
              f"--keep-going`, or run `benchmarks/run_all.py --only export` (builds it, then runs this)",
              file=sys.stderr)
        return 2

    import numpy as np
    import torch

    from edgeslim.runtime import load_forward

    torch.set_num_threads(args.threads)
    bundle = ModelArtifact.load(args.bundle)
    source = ModelArtifact.load(args.source)
    exports = [r for r in bundle.extra.get("exports", []) if "error" not in r]
    if not exports:
        print(f"{args.bundle} holds no exports; run `edgeslim export` first", file=sys.stderr)
        return 2
    shapes = [ModelArtifact.load(Path(args.bundle) / r["export"]).extra.get("static_shape") for r in exports]
    seq_len = next((int(s["sequence"]) for s in shapes if s), 64)  # the static exports' length
    rng = np.random.default_rng(0)
    vocab = int(json.loads((Path(source.path) / "config.json").read_text())["vocab_size"])  # pruned vocabularies
    ids = torch.from_numpy(rng.integers(1000, min(20000, vocab), size=(1, seq_len))).long()
    ids[0, 0], ids[0, -1] = 101, 102
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)}

    rows, fns = [], {}
    src_metrics = source.metrics
    ref_metric = None
    for r in exports:
        art = ModelArtifact.load(Path(args.bundle) / r["export"])
        m = art.metrics
        dev = next((v for k, v in m.items() if isinstance(v, dict) and "eval" in v), None)
        if dev is not None:
            ref_metric = dev["reference"]
        row = {"runtime": r["target"], "precision": art.extra["precision"], "size_mb": round(file_mb(art), 2),
               "metric": None if dev is None else dev.get("accuracy", dev.get(next(iter(dev["reference"])))),
               "delta_points": None if dev is None else dev["delta_points"],
               "max_abs_diff": m.get("validation", {}).get("max_abs_diff"), "export": r["export"]}
        try:
            fns[r["export"]] = (lambda f: (lambda: f(batch)))(load_forward(art, args.threads))
        except Exception as exc:  # Core ML off macOS: size and spec only
            row["note"] = str(exc).split(". ")[0]
        rows.append(row)
    fns = {"pytorch-fp32": (lambda f: (lambda: f(batch)))(load_forward(source, args.threads)), **fns}
    rows.insert(0, {"runtime": "pytorch", "precision": "fp32", "export": "pytorch-fp32",
                    "size_mb": round(sum(p.stat().st_size for p in Path(source.path).glob("*.safetensors")) / 1e6, 2),
                    "metric": ref_metric["accuracy"] if ref_metric else src_metrics.get("accuracy"),
                    "delta_points": 0.0, "max_abs_diff": 0.0})
    cmp = compare_latency(fns, reference="pytorch-fp32", rounds=args.rounds, iters=args.iters)
    for row in rows:
        st = cmp.stats.get(row["export"])
        if st:
            row.update(p50_ms=round(st.p50_ms, 2), p99_ms=round(st.p99_ms, 2),
                       speedup=round(cmp.speedup(row["export"]), 2),
                       ratio_spread=[round(x, 3) for x in cmp.ratio_spread[row["export"]]])

    name = args.name or f"bench_export-{Path(args.bundle).name}"
    out = ROOT / "benchmarks" / "out"
    out.mkdir(parents=True, exist_ok=True)
    result = {"bundle": str(args.bundle), "source": str(args.source), "seq_len": seq_len, "batch": 1,
              "threads": args.threads, "rows": rows, "latency": cmp.to_dict(), "host": cmp.host}
    (out / f"{name}.json").write_text(json.dumps(result, indent=2, default=str) + "\n")

    def fmt(v, spec=""):
        return "-" if v is None else format(v, spec)

    lines = [f"batch 1, sequence {seq_len} (all tokens real), {args.threads} threads, {args.rounds} interleaved "
             f"rounds x {args.iters} calls; metric: full SST-2 dev accuracy at export time (batch 32 reference; "
             f"static exports run batch 1 padded to {seq_len})",
             f"host: {cmp.host['cpu']}, flags {' '.join(cmp.host['cpu_flags'])}", "",
             "| runtime | precision | size (MB) | dev acc | vs PyTorch (points) | p50 (ms) | p99 (ms) | speed-up "
             "(paired, spread) |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        spd = (f"{r['speedup']:.2f}x ({1 / r['ratio_spread'][1]:.2f}-{1 / r['ratio_spread'][0]:.2f})"
               if "speedup" in r else r.get("note", "-"))
        lines.append(f"| {r['runtime']} | {r['precision']} | {r['size_mb']:.1f} | {fmt(r['metric'], '.4f')} | "
                     f"{fmt(r['delta_points'], '+.2f')} | {fmt(r.get('p50_ms'), '.2f')} | "
                     f"{fmt(r.get('p99_ms'), '.2f')} | {spd} |")
    table = "\n".join(lines) + "\n"
    (out / f"{name}.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
