"""What every export target shares: the source model loaded once, example inputs, static-shape rules,
validation against the PyTorch reference, the dev-set metric, and writing the artifact atomically.

A target module provides one `convert(job, precision, out_file, cfg)` function; `export_target` does the rest.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..artifact import ModelArtifact
from ..context import RunContext
from ..errors import ConfigError, StepError
from ..fileio import atomic_dir
from ..registry import Registry, register_step
from ..runtime.onnx_export import text_module
from ..runtime.static import TEXT_INPUTS
from .validate import ExportCheck, check_export, run_batches, sample_batches, tolerance_for

DIMENSIONS = ("batch", "sequence")


@dataclass(frozen=True)
class TargetInfo:
    """What a target writes and what it can take."""

    name: str              # onnx | litert | executorch | coreml
    format: str            # artifact format
    filename: str          # file (or folder) written inside the artifact
    precisions: tuple[str, ...]
    dynamic_ok: tuple[str, ...]   # dimensions the target can leave dynamic
    runs_here: bool        # whether its runtime runs on this kind of machine (Linux x86)
    extra: str             # pip extra that installs it
    backends: tuple[str, ...] = ()       # Python modules the converter needs (checked before a recipe runs)
    convert: Any = None                  # Converter: (job, precision, out_file, cfg) -> facts for `extra`
    config_cls: Any = None               # the per-target step's config class (TargetConfig or a subclass)
    step: Any = None                     # the registered `export.<name>` step function


# Each module of this package that defines a target registers it with `register_target`; nothing else lists them.
TARGETS: Registry[TargetInfo] = Registry("export target", discover="edgeslim.export")


def register_target(info: TargetInfo, convert: "Converter", config_cls: type | None = None) -> TargetInfo:
    """Register an export target and its `export.<name>` step (config `config_cls`, default TargetConfig)."""
    target = dataclasses.replace(info, convert=convert, config_cls=config_cls or TargetConfig)

    def step(model: ModelArtifact, cfg: TargetConfig, ctx: RunContext) -> ModelArtifact:
        job = ExportJob.open(model, cfg, ctx)
        return export_target(job, target, cfg, ctx.out_dir)

    step.__doc__ = (f"Export an HF text model to {info.name} ({info.filename}), validated against PyTorch "
                    f"where its runtime runs.")
    step.__name__ = f"export_{info.name}"
    step = register_step(f"export.{info.name}", target.config_cls, accepts=("hf",), produces=info.format,
                         backends=("torch", "transformers") + tuple(info.backends))(step)
    return TARGETS.add(info.name, dataclasses.replace(target, step=step))


@dataclass(frozen=True)
class TargetConfig:
    """Options every export target takes (the per-target steps and the umbrella `export` step share them)."""

    precision: str = ""                 # "" = the target's first precision (fp32; fp16 for Core ML)
    seq_len: int = 128                  # static sequence length (= eval max_length); inputs are right-padded to it
    batch: int = 1                      # static batch size of the exported file
    dynamic: tuple[str, ...] | None = None  # dimensions left dynamic; None = the target's default
    int8_scheme: str = "static"         # "static": PT2E calibrated activations | "dynamic": per-batch activation scales
    validate_n: int = 64                # real task inputs compared with the PyTorch reference
    calibration_n: int = 128            # train examples used to calibrate static INT8
    eval_split: str | None = "dev"      # score the export on this whole split where its runtime runs; None = skip
    max_abs_diff: float | None = None   # override the stated max-abs-diff tolerance of the precision

    def __post_init__(self) -> None:
        if not 8 <= self.seq_len <= 512:
            raise ConfigError(f"export: seq_len must be in 8..512, got {self.seq_len}")
        if not 1 <= self.batch <= 256:
            raise ConfigError(f"export: batch must be in 1..256, got {self.batch}")
        if self.dynamic is not None:
            object.__setattr__(self, "dynamic", tuple(self.dynamic))
            for d in self.dynamic:
                if d not in DIMENSIONS:
                    from ..registry import suggest

                    raise ConfigError(f"export: unknown dimension {d!r} in dynamic.{suggest(d, DIMENSIONS)}")
        if self.int8_scheme not in ("static", "dynamic"):
            raise ConfigError(f"export: int8_scheme must be 'static' or 'dynamic', got {self.int8_scheme!r}")
        if self.validate_n < 1:
            raise ConfigError(f"export: validate_n must be >= 1, got {self.validate_n}")
        if self.calibration_n < 1:
            raise ConfigError(f"export: calibration_n must be >= 1, got {self.calibration_n}")
        if self.precision and self.precision not in ("fp32", "fp16", "int8"):
            raise ConfigError(f"export: precision must be fp32, fp16 or int8, got {self.precision!r}")


def check_target_options(target: TargetInfo, cfg: TargetConfig) -> tuple[str, tuple[str, ...]]:
    """The precision and dynamic dimensions to use for `target`; errors name what the target cannot take."""
    precision = cfg.precision or target.precisions[0]
    if precision not in target.precisions:
        raise ConfigError(f"export.{target.name}: precision {precision!r} is not available; "
                          f"{target.name} exports {', '.join(target.precisions)}")
    dynamic = target.dynamic_ok if cfg.dynamic is None else cfg.dynamic
    for dim in dynamic:
        if dim not in target.dynamic_ok:
            raise ConfigError(
                f"export.{target.name}: dimension {dim!r} cannot be dynamic: {target.name} files here take static "
                f"shapes [batch={cfg.batch}, sequence={cfg.seq_len}]. Remove {dim!r} from `dynamic` and set "
                f"{'seq_len' if dim == 'sequence' else 'batch'} to the largest input you will feed "
                "(shorter inputs are padded)")
    return precision, tuple(dynamic)




def static_example(batch: int, seq_len: int) -> dict[str, Any]:
    """Example inputs of the static export shape [batch, seq_len] (int64), in TEXT_INPUTS order."""
    import torch

    ids = torch.ones((batch, seq_len), dtype=torch.long)
    mask = torch.ones((batch, seq_len), dtype=torch.long)
    mask[:, seq_len // 2:] = 0  # exercise the padding path
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros((batch, seq_len), dtype=torch.long)}


def to_static(batches: list[dict[str, Any]], batch: int, seq_len: int, pad_id: int) -> list[dict[str, Any]]:
    """Re-cut padded batches into exact [batch, seq_len] int64 tensors (for calibrating a static graph)."""
    import torch

    rows: list[dict[str, Any]] = []
    for b in batches:
        n, width = b["input_ids"].shape
        for r in range(n):
            rows.append({k: torch.as_tensor(b[k][r, :min(width, seq_len)]) for k in TEXT_INPUTS})
    out = []
    for s in range(0, len(rows) - batch + 1, batch):
        chunk = rows[s:s + batch]
        t = {}
        for k in TEXT_INPUTS:
            full = torch.full((batch, seq_len), pad_id if k == "input_ids" else 0, dtype=torch.long)
            for i, row in enumerate(chunk):
                full[i, :row[k].shape[0]] = row[k]
            t[k] = full
        out.append(t)
    return out


@dataclass
class ExportJob:
    """One source model being exported: loaded once, with its reference outputs, calibration data and dev score."""

    model: ModelArtifact
    ctx: RunContext
    seq_len: int
    batch: int
    validate_n: int
    calibration_n: int
    task: str | None
    net: Any = None
    tokenizer: Any = None
    _cache: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def open(cls, model: ModelArtifact, cfg: TargetConfig, ctx: RunContext) -> "ExportJob":
        """Load the HF model and tokenizer of `model` (the one input format every exporter takes)."""
        from ..models.hf import artifact_kind, load_model, load_tokenizer

        if model.format != "hf":
            raise StepError(f"export takes an HF PyTorch artifact, got format {model.format!r} ({model.path})")
        kind = artifact_kind(model) or "classification"
        if kind not in ("classification", "regression"):
            raise StepError(f"export supports sequence classification/regression models so far, not {kind!r}")
        model.verify()   # every byte checked before it ships to a device (ModelError names a changed file)
        import torch

        torch.set_num_threads(ctx.threads)
        job = cls(model=model, ctx=ctx, seq_len=cfg.seq_len, batch=cfg.batch, validate_n=cfg.validate_n,
                  calibration_n=cfg.calibration_n, task=ctx.task or model.task)
        job.net = load_model(model.path, kind)
        job.tokenizer = load_tokenizer(model.path)
        return job

    @property
    def pad_id(self) -> int:
        return int(self.tokenizer.pad_token_id or 0)

    @property
    def module(self) -> Any:
        """The model as forward(input_ids, attention_mask, token_type_ids) -> logits."""
        if "module" not in self._cache:
            self._cache["module"] = text_module(self.net)
        return self._cache["module"]

    def example(self) -> dict[str, Any]:
        return static_example(self.batch, self.seq_len)

    def validation(self) -> tuple[list[dict[str, Any]], Any, str]:
        """Validation batches (real task inputs), the reference outputs on them, and where they came from."""
        if "validation" not in self._cache:
            from ..runtime.torch_rt import torch_forward

            batches, where = sample_batches(self.tokenizer, self.task, n=self.validate_n, max_length=self.seq_len,
                                            settings=self.ctx.settings, seed=self.ctx.seed)
            self._cache["validation"] = (batches, run_batches(torch_forward(self.net), batches), where)
        return self._cache["validation"]

    def calibration(self) -> list[dict[str, Any]]:
        """Static-shape calibration batches from the train split (random tokens without a task)."""
        if "calibration" not in self._cache:
            if self.task:
                from ..training.calibration import calibration_batches

                batches = calibration_batches(self.task, self.tokenizer, n=self.calibration_n, seed=self.ctx.seed,
                                              max_length=self.seq_len, settings=self.ctx.settings)
                self._cache["calibration_source"] = f"{self.task} train, {self.calibration_n} examples"
            else:
                batches, _ = sample_batches(self.tokenizer, None, n=self.calibration_n, max_length=self.seq_len,
                                            seed=self.ctx.seed + 1)
                self._cache["calibration_source"] = f"{self.calibration_n} random token sequences (no task)"
            self._cache["calibration"] = to_static(batches, self.batch, self.seq_len, self.pad_id)
        return self._cache["calibration"]

    def reference_metrics(self, split: str) -> dict[str, Any]:
        """The PyTorch FP32 model's metrics on `split` (same max_length as the exports), computed once."""
        key = f"ref:{split}"
        if key not in self._cache:
            from ..evaluate.step import EvaluateConfig, evaluate_artifact

            self._cache[key] = evaluate_artifact(self.model, self.task, EvaluateConfig(split=split,
                                                 max_length=self.seq_len), self.ctx)
        return self._cache[key]


Converter = Callable[[ExportJob, str, Path, TargetConfig], dict[str, Any]]  # returns facts for `extra`


def export_target(job: ExportJob, target: TargetInfo, cfg: TargetConfig,
                  out_dir: Path, *, parent: ModelArtifact | None = None,
                  step_config: dict[str, Any] | None = None) -> ModelArtifact:
    """Convert, validate against PyTorch, score on the dev split where the runtime runs, write the artifact."""
    from ..runtime import load_forward
    from ..models.hf import copy_sidecar_files

    precision, dynamic = check_target_options(target, cfg)
    metrics: dict[str, Any] = {}
    with atomic_dir(out_dir) as tmp:
        t0 = time.perf_counter()
        facts = target.convert(job, precision, tmp / target.filename, cfg) or {}
        metrics["export_seconds"] = round(time.perf_counter() - t0, 1)
        copy_sidecar_files(job.model.path, tmp)
        extra = {"kind": "classification", **{k: v for k, v in job.model.extra.items() if k in ("kind", "labels")},
                 "precision": precision, "file": target.filename, "target": target.name,
                 "inputs": list(TEXT_INPUTS), "pad_id": job.pad_id,
                 "static_shape": None if set(dynamic) == set(DIMENSIONS)
                 else {"batch": job.batch, "sequence": job.seq_len}, "dynamic": list(dynamic), **facts}
        draft = ModelArtifact(path=tmp, format=target.format, task=job.task, extra=extra)
        batches, ref, where = job.validation()
        if target.runs_here or _can_run(target):
            forward = load_forward(draft, job.ctx.threads)
            check: ExportCheck = check_export(ref, forward, batches, precision,
                                              what=f"{target.name} {precision} export of {job.model.path}",
                                              tolerance=tolerance_for(precision, cfg.max_abs_diff), inputs=where)
            metrics["validation"] = check.to_dict()
            if cfg.eval_split and job.task:
                from ..evaluate.step import EvaluateConfig, evaluate_artifact

                ref_m = job.reference_metrics(cfg.eval_split)
                got = evaluate_artifact(draft, job.task, EvaluateConfig(split=cfg.eval_split, max_length=job.seq_len),
                                        job.ctx)
                from ..tasks.base import get_task

                primary = get_task(job.task).primary
                got["reference"] = {primary: ref_m[primary], "runtime": ref_m["eval"]["runtime"]}
                got["delta_points"] = round(100 * (got[primary] - ref_m[primary]), 3)
                metrics[f"{get_task(job.task).name}/{cfg.eval_split}"] = got
        else:
            metrics["validation"] = {"skipped": facts.get("prediction", "runtime does not run on this machine"),
                                     "spec": facts.get("spec_check", {})}
    return ModelArtifact.create(out_dir, target.format, task=job.task, parent=parent or job.model,
                                step=f"export.{target.name}",
                                step_config=step_config or {"precision": precision, "seq_len": job.seq_len,
                                                            "batch": job.batch, "dynamic": list(dynamic)},
                                metrics=metrics, extra=extra)


def _can_run(target: TargetInfo) -> bool:
    if target.name == "coreml":
        from ..runtime.coreml_rt import coreml_can_predict

        return coreml_can_predict()[0]
    return False


def validate_artifact(art: ModelArtifact, source: ModelArtifact, ctx: RunContext, *, n: int = 64) -> ExportCheck:
    """Re-check an export already on disk against the HF model it came from; raises ExportMismatchError if off."""
    from ..runtime import load_forward

    shape = art.extra.get("static_shape") or {}
    cfg = TargetConfig(seq_len=int(shape.get("sequence", 128)), batch=int(shape.get("batch", 1)), validate_n=n)
    job = ExportJob.open(source, cfg, ctx)
    batches, ref, where = job.validation()
    precision = art.extra.get("precision", "fp32")
    return check_export(ref, load_forward(art, ctx.threads), batches, precision,
                        what=f"{art.format} export {art.path}", tolerance=tolerance_for(precision), inputs=where)
