"""Quantization side by side on the fine-tuned SST-2 teacher: edgeslim's chosen model vs Optimum's ORTQuantizer
dynamic INT8 (its config for this CPU) vs PyTorch `quantize_dynamic`, same model, same inputs, interleaved rounds.

    flock /tmp/edgeslim-heavy.lock .venv/bin/python benchmarks/bench_quantize.py \
        [--teacher runs/teacher-sst2] [--edgeslim runs/quantize/teacher-auto] [--optimum-python .venv-optimum/bin/python]

Optimum pins transformers 4.x, so it lives in its own venv (default `.venv-optimum` at the repo root, or
$EDGESLIM_OPTIMUM_PYTHON; `benchmarks/run_all.py --only quantize` creates it: torch==2.13.0 first, then the
versions in benchmarks/_common.py) and runs in a subprocess; it quantizes the same FP32 ONNX file edgeslim starts
from. All ONNX models are timed in one ONNX Runtime loop with the PyTorch models (`edgeslim.measure.compare_latency`:
interleaved, rotated order, paired per-round ratios to ONNX Runtime FP32). Accuracy: SST-2 dev, all 872 sentences,
batch 1 (no padding). Writes benchmarks/out/quantize/bench_quantize.{json,md} and prints the table.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import OPTIMUM_ENV, OPTIMUM_VENV, content_hash, default_optimum_python, resolve_teacher  # noqa: E402

OPTIMUM_SCRIPT = r'''
import json, sys
from optimum.onnxruntime import ORTQuantizer
from optimum.onnxruntime.configuration import AutoQuantizationConfig
src, dst, flavour = sys.argv[1], sys.argv[2], sys.argv[3]
make = getattr(AutoQuantizationConfig, flavour)
qconfig = make(is_static=False, per_channel=False)
quantizer = ORTQuantizer.from_pretrained(src, file_name="model.onnx")
quantizer.quantize(save_dir=dst, quantization_config=qconfig)
import optimum.version
print(json.dumps({"config": {k: str(v) for k, v in qconfig.__dict__.items()}, "flavour": flavour,
                  "optimum": optimum.version.__version__}))
'''


def optimum_flavour(flags: list[str]) -> str:
    """Optimum's AutoQuantizationConfig for this CPU: avx512_vnni if present, else avx512, else avx2."""
    if "avx512_vnni" in flags:
        return "avx512_vnni"
    if "avx512f" in flags:
        return "avx512"
    return "avx2"


def run_optimum(python: str, fp32_dir: Path, out_dir: Path, flavour: str) -> dict:
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    proc = subprocess.run([python, "-c", OPTIMUM_SCRIPT, str(fp32_dir), str(out_dir), flavour], capture_output=True,
                          text=True, cwd=str(out_dir), env=env, timeout=900)
    if proc.returncode != 0:
        raise SystemExit(f"Optimum quantization failed:\n{proc.stderr[-3000:]}")
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    files = sorted(out_dir.glob("*quantized*.onnx"))
    if not files:
        raise SystemExit(f"Optimum wrote no *quantized*.onnx into {out_dir}: {list(out_dir.iterdir())}")
    info["file"] = str(files[0])
    return info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--teacher", default=None, help="fine-tuned teacher [$EDGESLIM_BENCH_TEACHER, runs/teacher-sst2 "
                                                    "if present, else runs/demo/01-finetune]")
    ap.add_argument("--edgeslim", default=str(ROOT / "runs" / "quantize" / "teacher-auto"),
                    help="edgeslim quantize artifact (made by `edgeslim quantize --scheme auto`)")
    ap.add_argument("--optimum-python", default=str(default_optimum_python()),
                    help="Python of a venv with Optimum [$EDGESLIM_OPTIMUM_PYTHON, else .venv-optimum/bin/python]")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "quantize"))
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--limit", type=int, default=None, help="score only the first N dev sentences (smoke runs)")
    args = ap.parse_args()
    args.teacher = args.teacher or str(resolve_teacher())
    if not Path(args.optimum_python).is_file():
        raise SystemExit(f"bench: error: no Optimum Python at {args.optimum_python}: `.venv/bin/python "
                         f"benchmarks/run_all.py --only quantize` (${OPTIMUM_ENV} unset) creates "
                         f"{OPTIMUM_VENV}/bin/python, or point --optimum-python / ${OPTIMUM_ENV} at a venv with Optimum")

    import torch

    from edgeslim.artifact import ModelArtifact
    from edgeslim.measure import compare_latency, host_facts
    from edgeslim.models.hf import load_model, load_tokenizer
    from edgeslim.quantize.search import latency_inputs
    from edgeslim.runtime.onnx_rt import make_session, session_forward
    from edgeslim.models.hf import copy_sidecar_files
    from edgeslim.runtime.onnx_export import export_text_model_to_onnx
    from edgeslim.tasks import get_task
    from edgeslim.evaluate.text import EvalSettings, predict_text, score
    from edgeslim.runtime.torch_rt import torch_forward

    torch.set_num_threads(2)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    host = host_facts()
    teacher = Path(args.teacher)
    tok = load_tokenizer(teacher)
    task = get_task("sst2")

    # 1. edgeslim's chosen model (the accuracy-goal search, max_drop 0.5 points on dev at batch 1)
    es_dir = Path(args.edgeslim)
    if not (es_dir / "edgeslim.json").is_file():
        raise SystemExit(f"{es_dir} is not an artifact: make it first with `edgeslim quantize --model {teacher} "
                         f"--scheme auto --max-drop 0.5 --task sst2 --out {es_dir}`")
    es = ModelArtifact.load(es_dir)

    # 2. the FP32 ONNX both quantizers start from (same exporter and opset as edgeslim's own export)
    fp32_dir = out / "fp32-onnx"
    fp32_dir.mkdir(exist_ok=True)
    net = load_model(teacher, "classification")
    source, stamp = content_hash(teacher), fp32_dir / "source-hash.txt"  # re-export when the teacher changes
    if not (fp32_dir / "model.onnx").is_file() or source is None or not stamp.is_file() or stamp.read_text() != source:
        export_text_model_to_onnx(net, fp32_dir / "model.onnx", 17)
        copy_sidecar_files(teacher, fp32_dir)   # tokenizer files and config.json
        if source is not None:
            stamp.write_text(source)

    # 3. Optimum ORTQuantizer, dynamic INT8 with its config for this CPU, in its own venv
    flavour = optimum_flavour(host["cpu_flags"])
    t0 = time.perf_counter()
    opt = run_optimum(args.optimum_python, fp32_dir, out / "optimum", flavour)
    opt["seconds"] = round(time.perf_counter() - t0, 1)

    # 4. PyTorch dynamic INT8 (nn.Linear, qint8, per-tensor: its default)
    from torch.ao.quantization import quantize_dynamic

    tq = quantize_dynamic(load_model(teacher, "classification"), {torch.nn.Linear}, dtype=torch.qint8).eval()
    tq_file = out / "torch-dynamic.pt"
    torch.save(tq.state_dict(), tq_file)

    onnx_models = {"ort-fp32": fp32_dir / "model.onnx", "edgeslim": Path(es.path) / es.extra.get("file", "model.onnx"),
                   "optimum": Path(opt["file"])}
    sizes = {k: p.stat().st_size for k, p in onnx_models.items()}
    sizes["torch-fp32"] = sum(p.numel() * p.element_size() for p in net.state_dict().values())
    sizes["torch-dynamic"] = tq_file.stat().st_size

    # accuracy: full dev, batch 1 (no padding)
    dev = task.load("dev", limit=args.limit)
    labels = [e.label for e in dev]
    settings = EvalSettings("dev", 1, 128)
    fwds = {k: session_forward(make_session(p, 2)) for k, p in onnx_models.items()}
    fwds["torch-fp32"] = torch_forward(net)
    fwds["torch-dynamic"] = torch_forward(tq)
    acc: dict[str, float] = {}
    for name, f in fwds.items():
        t0 = time.perf_counter()
        acc[name] = float(score(task, predict_text(f, tok, dev, settings), labels)["accuracy"])
        print(f"{name}: dev accuracy {acc[name]:.4f} (batch 1, {len(dev)} sentences, {time.perf_counter() - t0:.1f}s)",
              flush=True)

    # latency: one interleaved loop over all five, batch 1, fixed input
    feed = latency_inputs(args.seq_len, len(tok))
    tfeed = {k: torch.from_numpy(v) for k, v in feed.items()}
    fns = {}
    for name, p in onnx_models.items():
        s = make_session(p, 2)
        names = [i.name for i in s.get_inputs()]
        fns[name] = (lambda s=s, f={n: feed[n] for n in names}: s.run(None, f))
    for name, m in (("torch-fp32", net), ("torch-dynamic", tq)):
        def call(m=m):
            with torch.inference_mode():
                return m(**tfeed).logits
        fns[name] = call
    comp = compare_latency(fns, reference="ort-fp32", rounds=args.rounds, iters=args.iters, warmup=5)

    rows = []
    for name in fns:
        rows.append({"model": name, "dev_accuracy": acc[name], "drop_points_vs_ort_fp32": round((acc["ort-fp32"] -
                     acc[name]) * 100, 2), "size_mb": round(sizes[name] / 1e6, 2),
                     "p50_ms": round(comp.stats[name].p50_ms, 3), "ratio_vs_ort_fp32": round(comp.ratio_median[name], 3),
                     "ratio_spread": [round(x, 3) for x in comp.ratio_spread[name]],
                     "speedup_vs_ort_fp32": round(comp.speedup(name), 3)})
    by = {r["model"]: r for r in rows}
    es_vs_opt = by["optimum"]["p50_ms"] and comp.ratio_median["optimum"] / comp.ratio_median["edgeslim"]
    accept = {"edgeslim_at_least_as_fast_as_optimum": comp.ratio_median["edgeslim"] <= comp.ratio_median["optimum"],
              "edgeslim_at_least_as_accurate_as_optimum": acc["edgeslim"] >= acc["optimum"],
              "edgeslim_within_0.5_points_of_fp32": (acc["ort-fp32"] - acc["edgeslim"]) * 100 <= 0.5 + 1e-9,
              "edgeslim_speedup_over_optimum": round(es_vs_opt, 3)}
    result = {"host": host, "settings": {"accuracy": f"SST-2 dev, {len(dev)} sentences, batch 1, no padding",
                                         "latency": f"batch 1, sequence {args.seq_len}, {args.rounds} interleaved "
                                                    f"rounds x {args.iters} iters, 2 threads, reference ort-fp32"},
              "edgeslim": {"artifact": str(es.path), "scheme": es.step_config.get("scheme")},
              "optimum": opt, "torch_dynamic": "torch.ao.quantization.quantize_dynamic({nn.Linear}, qint8)",
              "rows": rows, "acceptance": accept, "latency": comp.to_dict()}
    (out / "bench_quantize.json").write_text(json.dumps(result, indent=2, default=str))
    md = [f"Host: {host['cpu']}, flags {', '.join(host['cpu_flags'])}, {host['cpus']} CPUs. Optimum "
          f"{opt['optimum']} `AutoQuantizationConfig.{flavour}(is_static=False, per_channel=False)`; edgeslim "
          f"`{es.step_config['scheme']['name']}`. Accuracy: {result['settings']['accuracy']}. Latency: "
          f"{result['settings']['latency']}.", "",
          "| model | dev acc (batch 1) | drop vs FP32 (points) | size (MB) | p50 (ms) | time / ORT FP32 (spread) "
          "| speed-up vs ORT FP32 |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        md.append(f"| {r['model']} | {r['dev_accuracy']:.4f} | {r['drop_points_vs_ort_fp32']:+.2f} | {r['size_mb']:.1f} "
                  f"| {r['p50_ms']:.2f} | {r['ratio_vs_ort_fp32']:.3f} ({r['ratio_spread'][0]:.2f}-"
                  f"{r['ratio_spread'][1]:.2f}) | {r['speedup_vs_ort_fp32']:.2f}x |")
    md += ["", "Acceptance: " + ", ".join(f"{k}={v}" for k, v in accept.items())]
    (out / "bench_quantize.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    sys.exit(main())
