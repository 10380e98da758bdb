"""The `eval` step: score an artifact on its task in the runtime of its format."""
from __future__ import annotations

import time
from pathlib import Path
from dataclasses import asdict, dataclass

from ..artifact import ModelArtifact
from ..context import RunContext
from ..errors import ConfigError
from ..registry import register_step
from ..tasks.base import get_task


@dataclass(frozen=True)
class EvaluateConfig:
    """Evaluate on a split; batch size and padding are recorded with the metric."""

    split: str = "dev"
    batch_size: int = 32
    max_length: int = 128
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"eval: batch_size must be >= 1, got {self.batch_size}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"eval: limit must be >= 1, got {self.limit}")


def evaluate_artifact(art: ModelArtifact, task_name: str, cfg: EvaluateConfig, ctx: RunContext) -> dict:
    """Metrics of `art` on `task_name`, with how they were measured."""
    from ..runtime import load_forward
    from .text import EvalSettings, predict_text, score

    task = get_task(task_name)
    if task.kind == "qa":
        from .qa import evaluate_qa_artifact

        return evaluate_qa_artifact(art, task, cfg, ctx)
    if task.kind == "image-classification":
        from ..models.hf import read_config
        from .vision import evaluate_image_forward

        split = cfg.split if cfg.split in task.files else next(iter(task.files))
        examples = task.load(split, ctx.settings, limit=cfg.limit)
        res = evaluate_image_forward(load_forward(art, ctx.threads), task, examples, Path(art.path),
                                     read_config(art.extra.get("config_dir", art.path)), cfg.batch_size, art.format)
        res["eval"]["split"] = split
        return res
    if task.kind not in ("classification", "regression"):
        raise ConfigError(f"eval of {task.kind!r} tasks is not supported for {art.format} artifacts yet")
    from ..models.hf import load_tokenizer

    tok_dir = art.extra.get("tokenizer_dir", art.path)
    tok = load_tokenizer(tok_dir)
    settings = EvalSettings(cfg.split, cfg.batch_size, cfg.max_length, limit=cfg.limit)
    examples = task.load(cfg.split, ctx.settings, limit=cfg.limit)
    forward = load_forward(art, ctx.threads)
    t0 = time.perf_counter()
    outputs = predict_text(forward, tok, examples, settings)
    result = score(task, outputs, [e.label for e in examples])
    result["eval"] = {**asdict(settings), "n": len(examples), "runtime": art.format,
                      "seconds": round(time.perf_counter() - t0, 2)}
    return result


@register_step("eval", EvaluateConfig, analysis=True)
def evaluate(model: ModelArtifact, cfg: EvaluateConfig, ctx: RunContext) -> ModelArtifact:
    """Evaluate `model` on the run's task and record the metrics on the artifact."""
    task = ctx.task or model.task
    if not task:
        raise ConfigError("eval needs a task: pass --task or set `task:` in the recipe")
    metrics = evaluate_artifact(model, task, cfg, ctx)
    return model.with_metrics(**{f"{get_task(task).name}/{cfg.split}": metrics})
