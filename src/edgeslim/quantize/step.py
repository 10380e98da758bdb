"""The `quantize` step: ONNX Runtime INT8 (dynamic / static QDQ), FP16, mixed precision, or an accuracy-goal search.

    - quantize: {scheme: auto, max_drop: 0.5}       # fastest candidate within 0.5 points of FP32 on val
    - quantize: {scheme: static-entropy}             # one scheme, no search
    - quantize: {scheme: mixed, keep_fp32: 4}         # static INT8, 4 most sensitive groups kept FP32

Input: an ONNX artifact (FP32), or an HF artifact (exported to ONNX first). Output: an ONNX artifact with
`extra.precision` in {int8-dynamic, int8-static, fp16, mixed}, the scheme in `step_config`, and a report
(`quantize_report.json`/`.md`, plus `sensitivity.md`/`.png` when sensitivity was run) beside `model.onnx`.

Choices (the auto search, the groups `mixed` keeps in FP32) are made on `select_split` ("val", carved from the
train file; "dev" only for a task that has no val, and the report says so); dev numbers are reporting only.
"""
from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..artifact import ModelArtifact
from ..context import RunContext
from ..errors import ConfigError, StepError
from ..fileio import atomic_dir, require_disk, write_json, write_text
from ..registry import register_step

SCHEMES = ("auto", "dynamic", "dynamic-attn", "static", "static-minmax", "static-percentile", "static-entropy", "fp16",
           "mixed")


@dataclass(frozen=True)
class QuantizeConfig:
    """Quantize with ONNX Runtime; `auto` searches schemes and FP32 exclusions for the fastest within max_drop."""

    scheme: str = "auto"                 # one of SCHEMES
    max_drop: float | str = 0.5          # auto: metric points (0.5) or relative ("1%"); >= 0
    candidates: tuple[str, ...] = ("dynamic", "dynamic-attn", "dynamic-pertensor", "dynamic-attn-pertensor",
                                 "static-minmax", "static-percentile", "static-entropy")
    mixed_k: tuple[int, ...] = (2, 4, 8)  # auto: mixed candidates keeping k most sensitive groups in FP32
    keep_fp32: int = 4                   # scheme=mixed: groups kept FP32
    mixed_base: str = "static-minmax"    # scheme=mixed: the INT8 scheme of the other groups
    exclude: tuple[str, ...] = ()        # explicit groups kept FP32 (single-scheme runs), e.g. [layer.5.ffn_out]
    calibration_size: int = 128          # train examples for static calibration (batch 1)
    calibration_split: str = "train"
    select_split: str = "val"            # choices are made on this split ("dev" only where a task has no val)
    screen_size: int = 300               # select-split examples for screening candidates
    sensitivity_size: int = 150          # of those, examples used for the per-group sensitivity analysis
    select_all: bool = False             # auto: score every candidate on the whole select split (default: finalists)
    eval_batch_size: int = 1             # batch 1: what a device runs (no padding)
    max_length: int = 128
    latency_seq_len: int = 128
    per_channel: bool = True
    embeddings: bool = True              # also store embedding tables as INT8
    evaluate: bool = True                # single-scheme runs: score FP32 and the result on dev (reporting)
    speed_tie: float = 0.03              # auto: speed-ups within this fraction of the fastest tie -> most accurate wins
    target: str = "host"                 # speed-up prediction target (hardware profile name)
    opset: int = 17                      # when exporting an HF input to ONNX first

    def __post_init__(self) -> None:
        from .search import parse_goal

        from .onnx_schemes import parse_scheme

        if self.scheme not in ("auto", "mixed"):
            try:
                parse_scheme(self.scheme)
            except ConfigError:
                from ..registry import suggest

                raise ConfigError(f"quantize: scheme must be one of {', '.join(SCHEMES)} (dynamic/static also take "
                                  f"-attn/-pertensor suffixes), got {self.scheme!r}.{suggest(self.scheme, SCHEMES)}"
                                  ) from None
        parse_goal(self.max_drop)       # negative or malformed values fail here, before any work
        object.__setattr__(self, "candidates", tuple(self.candidates))
        object.__setattr__(self, "mixed_k", tuple(int(k) for k in self.mixed_k))
        object.__setattr__(self, "exclude", tuple(self.exclude))
        for c in self.candidates + (self.mixed_base,):
            parse_scheme(c)
        for name in ("calibration_size", "screen_size", "sensitivity_size", "eval_batch_size", "max_length",
                     "latency_seq_len"):
            if getattr(self, name) < 1:
                raise ConfigError(f"quantize: {name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.speed_tie < 1:
            raise ConfigError(f"quantize: speed_tie must be a fraction in [0, 1) (0.03 = 3%), got {self.speed_tie}")
        if not isinstance(self.select_split, str) or not self.select_split:
            raise ConfigError(f"quantize: select_split must be a split name (val, dev), got {self.select_split!r}")
        if self.keep_fp32 < 1:
            raise ConfigError(f"quantize: keep_fp32 must be >= 1, got {self.keep_fp32}")
        if any(k < 1 for k in self.mixed_k):
            raise ConfigError(f"quantize: mixed_k values must be >= 1, got {list(self.mixed_k)}")


def _fp32_onnx(model: ModelArtifact, cfg: QuantizeConfig, scratch: Path) -> tuple[Path, Path]:
    """(FP32 .onnx, folder holding the tokenizer/config) for an ONNX artifact, or an HF one exported to ONNX."""
    from ..runtime.onnx_rt import onnx_file

    if model.format == "onnx":
        path = onnx_file(model)
        if not path.is_file():
            raise StepError(f"quantize: {path} not found in the ONNX artifact {model.path}")
        return path, Path(model.extra.get("tokenizer_dir", model.path))
    if model.format == "hf":
        from ..models.hf import artifact_kind, load_model
        from ..runtime.onnx_export import export_text_model_to_onnx

        kind = artifact_kind(model) or "classification"
        if kind not in ("classification", "regression"):
            raise StepError(f"quantize supports text classification/regression models so far, not {kind!r}")
        out = scratch / "exported.onnx"
        export_text_model_to_onnx(load_model(model.path, kind), out, cfg.opset)
        return out, Path(model.path)
    raise StepError(f"quantize takes an ONNX (or HF) artifact, got format {model.format!r}; "
                    "export it to ONNX first (step export.onnx)")


def _task_name(model: ModelArtifact, ctx: RunContext) -> str | None:
    return ctx.task or model.task


def _log(ctx: RunContext):
    from ..progress import progress_line

    return lambda msg: progress_line(f"quantize: {msg}", ctx.quiet)


def selection_split(task: Any, requested: str) -> tuple[str, str]:
    """(split to choose on, the note the report carries): `requested`, or "dev" when it is "val" and the task has
    no val split."""
    if requested == "val" and "val" not in task.splits:
        return "dev", (f"selection: dev ({task.name} has no val split), so the dev numbers of the chosen model are "
                       "optimistic")
    if requested == "val":
        return "val", "selection: val (carved from train), dev: reporting only"
    if requested == "dev":
        return "dev", "selection: dev, dev: selection and reporting, so its numbers are optimistic"
    return requested, f"selection: {requested}, dev: reporting only"


@register_step("quantize", QuantizeConfig, accepts=("onnx", "hf"), produces="onnx",
               backends=("onnx", "onnxruntime"))
def quantize(model: ModelArtifact, cfg: QuantizeConfig, ctx: RunContext) -> ModelArtifact:
    """Quantize an FP32 ONNX (or HF) artifact; `auto` returns the fastest candidate within max_drop on val."""
    from ..models.hf import load_tokenizer
    from ..training.calibration import calibration_batches
    from .onnx_schemes import check_float_model, matmul_groups, parse_scheme, preprocess, scratch_dir
    from .scoring import OnnxScorer, seeded_subset
    from ..tasks.base import get_task
    from ..models.hf import copy_sidecar_files

    log = _log(ctx)
    if model.extra.get("precision", "fp32") not in ("fp32", None):
        raise StepError(f"quantize: the model is already {model.extra['precision']} ({model.path}); "
                        "quantize its FP32 parent artifact instead")
    task_name = _task_name(model, ctx)
    needs_task = cfg.scheme in ("auto", "mixed") or cfg.scheme.startswith("static") or cfg.evaluate
    if needs_task and not task_name:
        raise ConfigError("quantize needs a task for calibration and scoring: pass --task or set `task:` in the "
                          "recipe (or use scheme dynamic/fp16 with evaluate: false)")
    with scratch_dir() as scratch:
        # scratch (system temp): the FP32 ONNX, its pre-processed copy and each candidate, each <= the model's size
        require_disk(scratch, model.size_bytes * (10 if cfg.scheme in ("auto", "mixed") else 3),
                     "quantize (scratch files in the system temp folder)")
        src, tok_dir = _fp32_onnx(model, cfg, scratch)
        check_float_model(src)
        pre = preprocess(src, scratch / "fp32-pre.onnx")
        groups = matmul_groups(pre)
        task = get_task(task_name) if task_name else None
        tok = load_tokenizer(tok_dir) if task else None
        calib: list[dict[str, Any]] = []
        if task and (cfg.scheme in ("auto", "mixed") or cfg.scheme.startswith("static")):
            calib = calibration_batches(task, tok, cfg.calibration_size, ctx.seed, max_length=cfg.max_length,
                                        split=cfg.calibration_split, settings=ctx.settings)
        scorer, note = None, ""
        if task:
            dev = task.load("dev", ctx.settings)
            sets: dict[str, Any] = {"dev": dev}
            splits = {"dev": "dev"}
            if cfg.scheme in ("auto", "mixed"):       # these choose something: on the select split, never on dev
                select, note = selection_split(task, cfg.select_split)
                pool = dev if select == "dev" else task.load(select, ctx.settings)
                sets.update(select=pool, screen=seeded_subset(pool, cfg.screen_size, ctx.seed))
                splits.update(select=select, screen=select)
            scorer = OnnxScorer(task, tok, sets, batch_size=cfg.eval_batch_size, max_length=cfg.max_length,
                                threads=ctx.threads, splits=splits)
        prediction = _predict(model, tok_dir, cfg, ctx)
        if prediction:
            log(prediction.verdict())
        report: dict[str, Any] = {"prediction": prediction.to_dict() if prediction else None}
        files: dict[str, str] = {}
        if cfg.scheme == "auto":
            result = _run_search(pre, scorer, cfg, scratch, calib, groups, tok, note, log)
            chosen = result.chosen
            scheme, qpath = chosen.scheme, chosen.path
            metrics = {f"{task.name}/{select}": {task.primary: chosen.select_metric,
                                                 "fp32": result.fp32["select_metric"],
                                                 "drop_points": chosen.select_drop, "eval": scorer.describe("select"),
                                                 "note": note},
                       "speedup_vs_fp32": chosen.speedup, "latency_p50_ms": chosen.latency_p50_ms}
            if select != "dev":
                metrics[f"{task.name}/dev"] = {task.primary: chosen.dev_metric, "fp32": result.fp32["dev_metric"],
                                               "drop_points": chosen.dev_drop, "eval": scorer.describe("dev"),
                                               "note": note}
            log(f"chosen {scheme.name}: {select} {task.primary} {chosen.select_metric:.4f} (drop "
                f"{chosen.select_drop:+.2f}), dev {chosen.dev_metric:.4f} (drop {chosen.dev_drop:+.2f}), "
                f"{chosen.speedup:.2f}x")
            report["search"] = result.to_dict()
            files["quantize_report.md"] = result.to_markdown()
            sens = result.sensitivity
            if prediction:
                dyn = [c for c in result.candidates if c.scheme.name == "int8-dynamic"]
                if dyn and prediction.scheme_kind == "dynamic":
                    report["prediction_check"] = {"predicted": prediction.predicted_speedup,
                                                  "measured": dyn[0].speedup,
                                                  "agree": prediction.faster == (dyn[0].speedup > 1.05)}
        else:
            from .onnx_schemes import quantize_onnx
            from .sensitivity import analyse_sensitivity

            sens = None
            pad = (tok.pad_token_id or 0) if tok is not None else 0
            if cfg.scheme == "mixed":
                base = dataclasses.replace(parse_scheme(cfg.mixed_base, per_channel=cfg.per_channel),
                                           embeddings=cfg.embeddings)
                scorer.examples["sensitivity"] = list(scorer.examples["screen"])[:cfg.sensitivity_size]
                scorer.splits["sensitivity"] = scorer.splits["screen"]
                log(f"sensitivity of {len(groups)} groups under {base.name} ...")
                sens = analyse_sensitivity(pre, base, scorer, "sensitivity", groups, scratch, calibration=calib,
                                           cache_dir=scratch / "cache", pad_id=pad)
                scheme = dataclasses.replace(base, exclude=tuple(sens.ranking()[:cfg.keep_fp32]))
            else:
                scheme = dataclasses.replace(parse_scheme(cfg.scheme, per_channel=cfg.per_channel),
                                             embeddings=cfg.embeddings, exclude=cfg.exclude)
            qpath = quantize_onnx(pre, scratch / "quantized.onnx", scheme, calibration=calib, groups=groups,
                                  cache_dir=scratch / "cache", pad_id=pad)
            metrics = {}
            if scorer and cfg.evaluate:
                m32, mq = scorer.metric(pre, "dev"), scorer.metric(qpath, "dev")
                metrics[f"{task.name}/dev"] = {task.primary: mq, "fp32": m32, "drop_points": round((m32 - mq) * 100, 4),
                                               "sqnr_db": round(scorer.sqnr(pre, qpath, "dev"), 3),
                                               "eval": scorer.describe("dev"), **({"note": note} if note else {})}
                log(f"{scheme.name}: dev {task.primary} {mq:.4f} (FP32 {m32:.4f})")
        if sens is not None:
            report["sensitivity"] = sens.to_dict()
            files["sensitivity.md"] = sens.to_markdown()
        with atomic_dir(ctx.out_dir) as tmp:
            shutil.copy2(qpath, tmp / "model.onnx")
            copy_sidecar_files(tok_dir, tmp)
            write_json(tmp / "quantize_report.json", report)
            for name, text in files.items():
                write_text(tmp / name, text)
            if sens is not None:
                try:
                    sens.plot(tmp / "sensitivity.png")
                except Exception as exc:  # noqa: BLE001 - a missing plot must not lose the model
                    log(f"sensitivity plot skipped: {exc}")
    step_config = {"scheme": scheme.to_dict(), "requested": cfg.scheme, "max_drop": str(cfg.max_drop),
                   "calibration": {"examples": len(calib), "split": cfg.calibration_split, "seed": ctx.seed,
                                   "batch_size": 1} if calib else None,
                   "engine": "onnxruntime.quantization"}
    extra = {**{k: v for k, v in model.extra.items() if k in ("kind", "labels")}, "precision": scheme.precision,
             "file": "model.onnx"}
    return ModelArtifact.create(ctx.out_dir, "onnx", parent=model, step="quantize", step_config=step_config,
                                metrics=metrics, extra=extra)


def _predict(model: ModelArtifact, tok_dir: Path, cfg: QuantizeConfig, ctx: RunContext):
    """Speed-up prediction if the model's config.json is reachable; None (with the reason logged) otherwise."""
    from ..errors import EdgeslimError
    from .predict import predict_int8_speedup

    src = Path(tok_dir) if (Path(tok_dir) / "config.json").is_file() else None
    if src is None:
        return None
    # ops in INT8: dynamic = weight matmuls; static and dynamic-attn also the attention matmuls
    kind = "fp16" if cfg.scheme == "fp16" else ("dynamic" if cfg.scheme in ("auto", "dynamic", "dynamic-pertensor")
                                                else "static")
    try:
        return predict_int8_speedup(src, cfg.target, scheme_kind=kind, seq_len=cfg.latency_seq_len,
                                    threads=ctx.threads)
    except EdgeslimError as exc:
        _log(ctx)(f"speed-up prediction skipped: {exc}")
        return None


def _run_search(pre: Path, scorer: Any, cfg: QuantizeConfig, scratch: Path, calib: list, groups: list, tok: Any,
                note: str, log: Any):
    from .search import SearchSettings, parse_goal, search_quantized

    settings = SearchSettings(goal=parse_goal(cfg.max_drop), schemes=cfg.candidates, mixed_k=cfg.mixed_k,
                              latency_seq_len=cfg.latency_seq_len, per_channel=cfg.per_channel,
                              sensitivity_size=cfg.sensitivity_size, select_all=cfg.select_all,
                              embeddings=cfg.embeddings, speed_tie=cfg.speed_tie)
    return search_quantized(pre, scorer, settings, scratch / "search", calibration=calib, groups=groups,
                            vocab_hint=len(tok), pad_id=tok.pad_token_id or 0, selection=note, log=log)
