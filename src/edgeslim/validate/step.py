"""The `validate` analysis step (the survey's sixth step): the final model, in the runtime it was exported for,
against the run's baseline (teacher) model.

Measured here: the task metric on the full dev set at batch 1 (the deployment setting) and at `batch_size`; the
teacher's dev metric at batch 1 in PyTorch FP32; the size on disk of both; host latency p50/p95/p99 of the final
model, the teacher in PyTorch FP32 and the teacher in ONNX Runtime FP32, timed in interleaved rounds in one run.
Predicted: latency and energy of both on every hardware profile, next to the predictor's measured error on this
host (the host's peaks are measured by a quick calibration; its efficiency factors are the same assumed defaults the
device profiles use, so the host error is the error bar to read the device predictions with).
"""
from __future__ import annotations

import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..artifact import ModelArtifact, folder_bytes
from ..context import RunContext
from ..errors import ConfigError, StepError
from ..registry import register_step

RUNTIME_OF_FORMAT = {"onnx": "onnxruntime", "hf": "pytorch", "tflite": "litert", "pte": "executorch",
                     "mlpackage": "coreml"}
SELECTION_NOTE = ("Model selection inside the run (quantization search, prune targets) used the `val` split carved "
                  "from the training data; the dev set is used for reporting only.")
TRAINING_STEPS = ("distill", "prune")


@dataclass(frozen=True)
class ValidateConfig:
    """Validate the final model against the baseline: dev metric, size, interleaved host latency, predictions."""

    baseline: str = "auto"          # auto: the run's model before its first distill/prune step; or a folder path
    split: str = "dev"
    batch_size: int = 32            # the second evaluation batch size (the first is always 1)
    max_length: int = 128
    seq_len: int = 128              # latency input length (batch 1)
    rounds: int = 7                 # interleaved timing rounds
    budget_s: float = 20.0          # total timing budget; calls per round follow from it
    hardware: tuple[str, ...] | str = ("all",)   # profiles to predict on
    target: str | None = None       # the deployment target for the deadline verdict (a profile name or "host")
    deadline_ms: float | None = None
    calibrate: bool = True          # quick host calibration for the predictor's host error
    limit: int | None = None        # evaluate on the first N examples only (tests); None = the full split

    def __post_init__(self) -> None:
        from ..hardware.predict import check_deadline
        from ..hardware.schema import list_profiles
        from ..registry import suggest

        hw = (self.hardware,) if isinstance(self.hardware, str) else tuple(self.hardware)
        object.__setattr__(self, "hardware", hw)
        known = list_profiles()
        for name in hw + ((self.target,) if self.target else ()):
            if name not in ("all", "host") and name not in known:
                raise ConfigError(f"validate: unknown hardware profile {name!r}.{suggest(name, known)}")
        for name in ("batch_size", "max_length", "seq_len", "rounds"):
            if getattr(self, name) < 1:
                raise ConfigError(f"validate: {name} must be >= 1, got {getattr(self, name)}")
        if self.budget_s <= 0:
            raise ConfigError(f"validate: budget_s must be > 0, got {self.budget_s}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"validate: limit must be >= 1, got {self.limit}")
        if self.deadline_ms is not None:
            check_deadline(self.deadline_ms, "validate: deadline_ms")


def resolve_baseline(cfg: ValidateConfig, ctx: RunContext) -> ModelArtifact:
    """The baseline artifact: a folder named by `baseline`, or (auto) the run's last HF model before distill/prune."""
    if cfg.baseline != "auto":
        path = Path(cfg.baseline)
        if not path.is_dir():
            raise ConfigError(f"validate: baseline {cfg.baseline!r} is not a model folder; give the teacher's "
                              "artifact folder (e.g. runs/demo/01-finetune) or leave baseline: auto inside a recipe")
        return ModelArtifact.load(path)
    records = list(ctx.lineage)
    if not records:
        raise ConfigError("validate: baseline auto needs the run's lineage (inside `edgeslim run`/`optimize`); "
                          "outside a recipe pass the teacher folder: --baseline DIR")
    chosen = records[0]
    for rec in records:
        if rec.get("step") in TRAINING_STEPS or rec.get("step", "").startswith(("export", "quantize")):
            break
        chosen = rec
    art = ModelArtifact.load(chosen["path"])
    if art.format != "hf":
        raise StepError(f"validate: the baseline found in the run ({art.path}) is a {art.format} artifact, not a "
                        "PyTorch (hf) model; pass baseline: <teacher folder>")
    return art


def weights_file_bytes(art: ModelArtifact) -> int:
    """Bytes of the model's weights file(s): the ONNX/TFLite/PTE file, or an HF folder's safetensors/bin."""
    folder = Path(art.path)
    name = art.extra.get("file")
    if name and (folder / name).is_file():
        return (folder / name).stat().st_size
    if art.format == "hf":
        files = list(folder.glob("*.safetensors")) or list(folder.glob("*.bin"))
        if files:
            return sum(f.stat().st_size for f in files)
    for pattern in ("*.onnx", "*.tflite", "*.pte"):
        files = list(folder.glob(pattern))
        if files:
            return sum(f.stat().st_size for f in files)
    return folder_bytes(folder)


def _shape(art: ModelArtifact) -> Any:
    from ..hardware.predict import resolve_config

    folder = Path(art.extra.get("config_dir") or art.extra.get("tokenizer_dir") or art.path)
    return resolve_config(folder if (folder / "config.json").is_file() else art.path)


def _runner(art: ModelArtifact, feed: dict[str, Any], threads: int, tmp: Path,
            export_onnx: bool = False) -> Callable[[], Any]:
    """A zero-argument callable running one inference of `art` on `feed` in its own runtime (or ONNX Runtime)."""
    from ..hardware.measured import onnx_runner, torch_runner
    from ..models.hf import artifact_kind, load_model
    from ..runtime.onnx_rt import onnx_file

    if art.format == "onnx":
        return onnx_runner(onnx_file(art), feed, threads)
    if art.format == "hf":
        model = load_model(art.path, artifact_kind(art) or "classification")
        if export_onnx:
            from ..runtime.onnx_export import export_text_model_to_onnx

            path = export_text_model_to_onnx(model, tmp / f"{art.short_hash}.onnx", seq_len=16)
            return onnx_runner(path, feed, threads)
        return torch_runner(model, feed, threads)
    import torch

    from ..runtime import load_forward

    fwd = load_forward(art, threads)
    batch = {k: torch.from_numpy(v) for k, v in feed.items()}
    return lambda: fwd(batch)


def measure_interleaved(final: ModelArtifact, teacher: ModelArtifact, cfg: ValidateConfig, threads: int,
                        vocab: int) -> dict[str, Any]:
    """Final model vs teacher (PyTorch FP32 and ONNX Runtime FP32), batch 1, interleaved rounds, one run."""
    from ..hardware.measured import text_feed
    from ..measure import compare_latency, time_calls

    feed = text_feed(1, cfg.seq_len, vocab)
    with tempfile.TemporaryDirectory() as tmp:
        fns = {"final": _runner(final, feed, threads, Path(tmp)),
               "teacher-pytorch": _runner(teacher, feed, threads, Path(tmp)),
               "teacher-onnxruntime": _runner(teacher, feed, threads, Path(tmp), export_onnx=True)}
        for fn in fns.values():
            time_calls(fn, 3)
        per_call = {n: statistics.median(time_calls(fn, 3)) / 1000 for n, fn in fns.items()}
        share = cfg.budget_s / cfg.rounds / len(fns)
        iters = {n: int(max(5, min(200, share / max(s, 1e-6)))) for n, s in per_call.items()}
        cmp = compare_latency(fns, reference="teacher-pytorch", rounds=cfg.rounds, iters=iters, warmup=3)
    models = {}
    for name, st in cmp.stats.items():
        meds = cmp.round_medians[name]
        models[name] = {**{k: round(v, 4) for k, v in st.to_dict().items()}, "iters_per_round": iters[name],
                        "round_median_min_ms": round(min(meds), 4), "round_median_max_ms": round(max(meds), 4)}
    ort_ratio = [t / f for t, f in zip(cmp.round_medians["teacher-onnxruntime"], cmp.round_medians["final"])]
    return {
        "label": "measured", "batch": 1, "seq_len": cfg.seq_len, "threads": threads, "rounds": cfg.rounds,
        "iters": iters, "models": models, "host": cmp.host,
        "speedup": {"vs_teacher_pytorch": round(cmp.speedup("final"), 3),
                    "vs_teacher_onnxruntime": round(statistics.median(ort_ratio), 3)},
        "round_spread": {"vs_teacher_pytorch": [round(1 / cmp.ratio_spread["final"][1], 3),
                                                round(1 / cmp.ratio_spread["final"][0], 3)],
                         "vs_teacher_onnxruntime": [round(min(ort_ratio), 3), round(max(ort_ratio), 3)]},
        "how": "speed-up = median over rounds of the per-round ratio of medians (paired, interleaved)",
    }


def predictions(final_shape: Any, teacher_shape: Any, final_prec: str, names: list[str], seq_len: int,
                host_profile: Any = None) -> dict[str, dict[str, Any]]:
    """Predicted latency/energy of the final model (its precision, or the device's fallback) and the FP32 teacher."""
    from ..hardware import load_profile, model_cost, predict_cost
    from ..hardware.check import trust_fields, trust_for
    from ..hardware.predict import device_precision

    out: dict[str, dict[str, Any]] = {}
    for name in names:
        prof = host_profile if name == "host" else load_profile(name)
        prec, note = device_precision(prof, final_prec)
        tprec = "fp32" if "fp32" in prof.peak_gops else prec
        pf = predict_cost(model_cost(final_shape, batch=1, seq_len=seq_len, precision=prec), prof)
        pt = predict_cost(model_cost(teacher_shape, batch=1, seq_len=seq_len, precision=tprec), prof)
        out[name] = {"label": "predicted", "precision": prec, "latency_ms": round(pf.latency_ms, 4),
                     "energy_mj": round(pf.energy_mj, 4), "teacher_precision": tprec,
                     "teacher_latency_ms": round(pt.latency_ms, 4), "teacher_energy_mj": round(pt.energy_mj, 4),
                     "description": prof.description, **trust_fields(pf.latency_ms, trust_for(prof, prec)),
                     "teacher_trust_label": trust_for(prof, tprec).label}
        if note:
            out[name]["note"] = note
    return out


def host_error(final_shape: Any, teacher_shape: Any, final_prec: str, latency: dict[str, Any], seq_len: int,
               threads: int, folder: Path) -> tuple[dict[str, Any], Any]:
    """Quick host calibration (measured peaks, default efficiencies), then predicted vs measured p50 on this host."""
    from ..hardware import model_cost, predict_cost
    from ..hardware.calibrate import calibrate_host

    _, prof = calibrate_host(threads=threads, fit=False, folder=folder)
    rows = []
    for name, shape, prec in (("final", final_shape, final_prec), ("teacher-onnxruntime", teacher_shape, "fp32")):
        if prec not in prof.peak_gops:
            continue
        pred = predict_cost(model_cost(shape, batch=1, seq_len=seq_len, precision=prec), prof).latency_ms
        meas = latency["models"][name]["p50_ms"]
        rows.append({"model": name, "precision": prec, "predicted_ms": round(pred, 4), "measured_ms": meas,
                     "error_pct": round((pred - meas) / meas * 100, 2)})
    err = {"label": "measured", "profile": "host", "threads": threads, "rows": rows,
           "mean_abs_error_pct": round(statistics.mean(abs(r["error_pct"]) for r in rows), 2) if rows else None,
           "how": "host peaks measured by a quick calibration (GEMM fp32/int8, copy bandwidth); efficiency factors "
                  "are the defaults the device profiles also assume; measured = ONNX Runtime p50 above"}
    final_row = next((r for r in rows if r["model"] == "final"), None)
    if final_row:
        err.update(predicted_ms=final_row["predicted_ms"], measured_ms=final_row["measured_ms"],
                   error_pct=final_row["error_pct"])
    return err, prof


def deadline_report(cfg: ValidateConfig, latency: dict[str, Any], predicted: dict[str, dict[str, Any]],
                    fshape: Any, tshape: Any, fprec: str) -> dict[str, Any]:
    """The real-time verdict: the measured p99 on the host, or the prediction on the target with its trust band
    (a band straddling the deadline reads "uncertain")."""
    from ..hardware.check import Trust, deadline_verdict

    target = cfg.target or "host"
    deadline = float(cfg.deadline_ms)  # type: ignore[arg-type]
    if target == "host":
        lat = latency["models"]["final"]["p99_ms"]
        return {"target": target, "deadline_ms": deadline, "latency_ms": lat, "basis": "measured p99 on this host",
                "label": "measured", "verdict": deadline_verdict(lat, deadline)}
    row = predicted[target] if target in predicted else predictions(fshape, tshape, fprec, [target],
                                                                    cfg.seq_len)[target]
    trust = Trust.from_dict(row["trust"])
    return {"target": target, "deadline_ms": deadline, "latency_ms": row["latency_ms"],
            "basis": f"predicted on {target}", "label": "predicted",
            "verdict": deadline_verdict(row["latency_ms"], deadline, trust), "trust_label": trust.label,
            "latency_range_ms": row["latency_range_ms"]}


def _metric(res: dict[str, Any], primary: str) -> float:
    value = res.get(primary)
    if not isinstance(value, (int, float)):
        raise StepError(f"validate: evaluation returned no {primary!r} metric ({sorted(res)})")
    return float(value)


def validate_artifact(final: ModelArtifact, teacher: ModelArtifact, cfg: ValidateConfig, ctx: RunContext,
                      say: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """The validate report of `final` against `teacher` as plain data (JSON-ready)."""
    from ..evaluate.step import EvaluateConfig, evaluate_artifact
    from ..hardware.predict import artifact_precision
    from ..hardware.schema import list_profiles
    from ..tasks.base import get_task

    task_name = ctx.task or final.task or teacher.task
    if not task_name:
        raise ConfigError("validate needs a task: pass --task or set `task:` in the recipe")
    task = get_task(task_name)
    if task.kind not in ("classification", "regression"):
        raise StepError(f"validate supports text classification/regression tasks so far, not {task.kind!r}")
    primary = task.primary

    def evaluate(art: ModelArtifact, batch: int) -> dict[str, Any]:
        ecfg = EvaluateConfig(split=cfg.split, batch_size=batch, max_length=cfg.max_length, limit=cfg.limit)
        return evaluate_artifact(art, task.name, ecfg, ctx)

    say(f"scoring the final model ({final.format}) on {task.name} {cfg.split} at batch 1 and {cfg.batch_size}")
    f1 = evaluate(final, 1)
    fb = evaluate(final, cfg.batch_size) if cfg.batch_size != 1 else f1
    say(f"scoring the teacher (PyTorch FP32) on {task.name} {cfg.split} at batch 1")
    t1 = evaluate(teacher, 1)
    fshape, tshape = _shape(final), _shape(teacher)
    fprec = artifact_precision(final)
    from ..hardware import model_cost

    fparams = model_cost(fshape, precision="fp32").params
    tparams = model_cost(tshape, precision="fp32").params
    say(f"timing final vs teacher (PyTorch, ONNX Runtime) in {cfg.rounds} interleaved rounds")
    latency = measure_interleaved(final, teacher, cfg, ctx.threads, vocab=max(2, min(fshape.vocab, tshape.vocab)))
    names = list_profiles() if "all" in cfg.hardware else [h for h in dict.fromkeys(cfg.hardware) if h != "host"]
    names = [n for n in names if n != "host"]
    pred_err, host_prof = None, None
    if cfg.calibrate:
        say("quick host calibration for the predictor's error on this host")
        pred_err, host_prof = host_error(fshape, tshape, fprec, latency, cfg.seq_len, ctx.threads,
                                         Path(ctx.out_dir))
    predicted = predictions(fshape, tshape, fprec, names + (["host"] if host_prof is not None else []),
                            cfg.seq_len, host_prof)
    fsize, tsize = weights_file_bytes(final), weights_file_bytes(teacher)
    fm1, fmb, tm1 = _metric(f1, primary), _metric(fb, primary), _metric(t1, primary)
    report: dict[str, Any] = {
        "task": task.name, "metric_name": primary, "split": cfg.split, "examples": f1["eval"]["n"],
        "selection_note": SELECTION_NOTE if cfg.split == "dev" else f"metrics on the {cfg.split} split",
        "final": {"path": str(final.path), "hash": final.content_hash, "format": final.format,
                  "runtime": RUNTIME_OF_FORMAT.get(final.format, final.format), "precision": str(final.extra.get("precision",
                                                                                                        "fp32")),
                  "size_bytes": fsize, "folder_bytes": final.size_bytes, "params": fparams,
                  "metric_batch1": fm1, "metric_batch": fmb, "batch_size": cfg.batch_size,
                  "eval_batch1": f1["eval"], "eval_batch": fb["eval"]},
        "teacher": {"path": str(teacher.path), "hash": teacher.content_hash, "format": teacher.format,
                    "runtime": "pytorch-fp32", "size_bytes": tsize, "folder_bytes": teacher.size_bytes,
                    "params": tparams, "metric_batch1": tm1, "eval_batch1": t1["eval"]},
        "latency": latency, "predicted": predicted, "predictor_error": pred_err,
        "ratios": {"size": round(tsize / fsize, 3), "params": round(tparams / fparams, 3),
                   "latency_vs_pytorch": latency["speedup"]["vs_teacher_pytorch"],
                   "latency_vs_onnxruntime": latency["speedup"]["vs_teacher_onnxruntime"],
                   "drop_points": round((tm1 - fm1) * 100, 4)},
        "params_label": "analytic (cost model)", "target": cfg.target,
    }
    if cfg.deadline_ms is not None:
        report["deadline"] = deadline_report(cfg, latency, predicted, fshape, tshape, fprec)
    return report


@register_step("validate", ValidateConfig, analysis=True, accepts=("onnx", "hf", "tflite", "pte"),
               backends=("onnxruntime",))
def validate(model: ModelArtifact, cfg: ValidateConfig, ctx: RunContext) -> ModelArtifact:
    """Validate the final model against the run's baseline; recorded as the `validate` metric."""
    teacher = resolve_baseline(cfg, ctx)
    from ..progress import progress_line

    report = validate_artifact(model, teacher, cfg, ctx, say=lambda msg: progress_line(f"validate: {msg}", ctx.quiet))
    return model.with_metrics(validate=report)
