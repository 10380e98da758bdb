"""Run a recipe's steps in order; each step's output is cached by a key of its inputs, so a re-run
after a crash resumes at the first step that has not finished."""
from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from .artifact import MANIFEST, ModelArtifact, run_key
from .context import RunContext
from .errors import StepError
from .fileio import write_json
from .progress import duration, progress_line
from .recipe import Recipe, RecipeStep
from .registry import STEPS


# Bumped when what a step reads changes without its options changing (e.g. "val" carved out of "train"), so a run
# folder made before never resumes from outputs trained on other data.
DATA_RULES = "val-carved-from-train-1"


def step_key(step: RecipeStep, source: ModelArtifact, task: str | None, seed: int) -> str:
    """Hash of everything a step's output depends on."""
    return run_key(step.name, step.options, source.content_hash, task, seed, DATA_RULES)


def pending_file(folder: Path) -> Path:
    """Where the pipeline notes the key of a step it has started (`.<NN-step>.pending`, beside its folder)."""
    return folder.with_name(f".{folder.name}.pending")


def cached_output(folder: Path, key: str, source: ModelArtifact | None = None) -> ModelArtifact | None:
    """The artifact a previous run left in `folder` for the same key, if any.

    A step that finished but was killed before the pipeline stamped its key into the manifest is adopted too
    (its pending note has the key, and the artifact descends from `source` and was made after the note), so its
    work is not redone.
    """
    if not (folder / MANIFEST).is_file():
        return None
    art = ModelArtifact.load(folder)
    if art.extra.get("run_key") == key:
        return art
    pending = pending_file(folder)
    note = json.loads(pending.read_text()) if pending.is_file() else {}
    if source is not None and "run_key" not in art.extra and note.get("run_key") == key \
            and art.parent_hash == source.content_hash and art.created >= note.get("started", float("inf")):
        art = dataclasses.replace(art, extra={**art.extra, "run_key": key})
        art.save_manifest()
        pending.unlink(missing_ok=True)
        return art
    return None


METRICS_FILE = "metrics.json"


def run_analysis_step(spec: Any, step: RecipeStep, art: ModelArtifact, ctx: RunContext, key: str,
                      before_run: Callable[[], None] = lambda: None) -> tuple[ModelArtifact, bool]:
    """Run (or reuse) an analysis step: the model is unchanged; the metrics it adds go to the step's folder in the
    run (`NN-<step>/metrics.json`), never into the input's folder. Returns the artifact with them and `cached`.
    `before_run` is called only when the step really runs (not when its metrics are reused)."""
    out = Path(ctx.out_dir) / METRICS_FILE
    if out.is_file():
        saved = json.loads(out.read_text())
        if saved.get("run_key") == key:
            return dataclasses.replace(art, metrics={**art.metrics, **saved["metrics"]}), True
    before_run()
    new = spec.fn(art, step.config, ctx)
    if not isinstance(new, ModelArtifact) or new.content_hash != art.content_hash:
        raise StepError(f"analysis step {step.name!r} must return its input artifact with metrics added")
    added = {k: v for k, v in new.metrics.items() if art.metrics.get(k) != v}
    write_json(out, {"run_key": key, "step": step.name, "options": step.options, "model": str(art.path),
                     "model_hash": art.content_hash, "metrics": added})
    return new, False


def source_artifact(model: str) -> ModelArtifact:
    """Adopt a packaged model name, HF folder or artifact folder as the pipeline's input."""
    from .models.zoo import resolve_model_source

    return ModelArtifact.load(resolve_model_source(model))


def run_recipe(recipe: Recipe, out_dir: str | Path, *, quiet: bool = False,
               on_step: Callable[[int, RecipeStep, ModelArtifact, bool, float], None] | None = None) -> list[dict[str, Any]]:
    """Run every step; returns the lineage (one record per step) and writes it to out_dir/lineage.json.

    Unless quiet, each step prints `[i/n] name: start` and `[i/n] name: done in ...` (or `cached`, or `failed
    after ...`) as flushed lines (edgeslim.progress), so a log shows where a long run is.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    art = source_artifact(recipe.model)
    lineage: list[dict[str, Any]] = [{"step": "source", "path": str(art.path), "hash": art.content_hash,
                                      "metrics": art.metrics}]
    for i, step in enumerate(recipe.steps, start=1):
        folder = out_dir / f"{i:02d}-{step.name}"
        key = step_key(step, art, recipe.task, recipe.seed)
        spec = STEPS.get(step.name)
        t0 = time.perf_counter()
        ctx = RunContext(out_dir=folder, task=recipe.task, seed=recipe.seed, threads=recipe.threads, quiet=quiet,
                         lineage=list(lineage))
        tag = f"[{i}/{len(recipe.steps)}] {step.name}"
        try:
            if spec.analysis:
                new, cached = run_analysis_step(spec, step, art, ctx, key,
                                                before_run=lambda tag=tag: progress_line(f"{tag}: start", quiet))
            else:
                new = cached_output(folder, key, art)
                cached = new is not None
                if new is None:
                    progress_line(f"{tag}: start", quiet)
                    write_json(pending_file(folder), {"run_key": key, "step": step.name, "started": time.time()})
                    new = spec.fn(art, step.config, ctx)
                    if not isinstance(new, ModelArtifact):
                        raise StepError(f"step {step.name!r} returned {type(new).__name__}, not a ModelArtifact")
                    if Path(new.path) != folder:
                        raise StepError(f"step {step.name!r} wrote to {new.path}, expected {folder}")
                    new = dataclasses.replace(new, extra={**new.extra, "run_key": key})
                    new.save_manifest()
                    pending_file(folder).unlink(missing_ok=True)
        except BaseException:
            progress_line(f"{tag}: failed after {duration(time.perf_counter() - t0)}", quiet)
            raise
        if not spec.analysis:   # the artifact is complete: a kill just before the step removed its checkpoints
            shutil.rmtree(ctx.checkpoint_dir, ignore_errors=True)
        seconds = time.perf_counter() - t0
        progress_line(f"{tag}: cached" if cached else f"{tag}: done in {duration(seconds)}", quiet)
        lineage.append({"step": step.name, "options": step.options, "path": str(new.path), "hash": new.content_hash,
                        "parent": new.parent_hash, "metrics": new.metrics, "cached": cached,
                        "seconds": round(seconds, 1)})
        write_json(out_dir / "lineage.json", lineage)
        if on_step:
            on_step(i, step, new, cached, seconds)
        art = new
    return lineage
