"""The Python API: every step as a function, artifact in, artifact out, mirroring the CLI.

    import edgeslim as es
    t = es.finetune(es.load("minilm-l6"), task="sst2", max_minutes=5)
    q = es.quantize(t, scheme="auto", max_drop=0.5)
    m = es.evaluate(q, split="dev")          # a metrics dict; nothing is written into q's folder

Step options are keywords, validated exactly as in a recipe (`StepSpec.make_config`). `edgeslim/__init__.py`
loads this module on first use, so `import edgeslim` stays light.
"""
from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
from pathlib import Path
from typing import Any, Callable

from .artifact import ModelArtifact, run_key
from .context import RunContext
from .errors import ConfigError, StepError
from .registry import STEPS
from .settings import get_settings

__all__ = ["load", "steps", "run_step", "run_recipe",
           "finetune", "evaluate", "profile", "distill", "prune", "quantize", "export", "validate", "optimize",
           "report", "serve"]


def load(model: str | Path | ModelArtifact) -> ModelArtifact:
    """Adopt a packaged model name (e.g. "minilm-l6"), a Hugging Face folder or an artifact folder."""
    if isinstance(model, ModelArtifact):
        return model
    from .pipeline import source_artifact

    return source_artifact(str(model))


def steps() -> list[str]:
    """Names of every registered step; `run_step(name, model, **options)` runs any of them."""
    return STEPS.names()


def default_out(step: str, model: ModelArtifact, cfg: Any, task: str | None, seed: int) -> Path:
    """runs/api/<step>-<input hash>-<key of options, task and seed>: calls differing only in options never share
    (and overwrite) a folder, and the same call re-uses its folder (fine-tuning resumes from its checkpoint)."""
    key = run_key(step, dataclasses.asdict(cfg), model.content_hash, task, seed)[:8]
    return get_settings().runs_dir / "api" / f"{step}-{model.short_hash}-{key}"


def _evaluate(model: ModelArtifact, cfg: Any, ctx: RunContext) -> dict[str, Any]:
    from .evaluate.step import evaluate_artifact

    if not ctx.task:
        raise ConfigError(f"{model.path} records no task; pass task=... (e.g. task='sst2')")
    return evaluate_artifact(model, ctx.task, cfg, ctx)


def _profile(model: ModelArtifact, cfg: Any, ctx: RunContext) -> dict[str, Any]:
    from .profile.step import profile_artifact

    return profile_artifact(model, cfg, threads=ctx.threads, plot_dir=Path(ctx.out_dir) if cfg.plot else None)


def _validate(model: ModelArtifact, cfg: Any, ctx: RunContext) -> dict[str, Any]:
    from .validate.step import resolve_baseline, validate_artifact

    return validate_artifact(model, resolve_baseline(cfg, ctx), cfg, ctx)


# Analysis steps measure their input: the API returns what they measure and writes nothing into the input.
ANALYSES: dict[str, Callable[[ModelArtifact, Any, RunContext], dict[str, Any]]] = {"eval": _evaluate,
                                                                                   "profile": _profile,
                                                                                   "validate": _validate}


def run_step(name: str, model: str | Path | ModelArtifact, *, task: str | None = None, out: str | Path | None = None,
             seed: int = 0, threads: int = 2, quiet: bool = True, **options: Any) -> Any:
    """Run registered step `name` on `model` with `options` checked as in a recipe; returns the new artifact
    (for an analysis step such as eval or profile: the metrics or report dict)."""
    spec = STEPS.get(name)
    cfg = spec.make_config(options)   # bad options fail before the model is even read
    art = load(model)
    task = task or art.task
    if task:
        from .tasks import get_task

        task = get_task(task).name
    ctx = RunContext(out_dir=Path(out) if out is not None else default_out(name, art, cfg, task, seed),
                     task=task, seed=seed, threads=threads, quiet=quiet)
    if spec.analysis:
        if name not in ANALYSES:
            raise StepError(f"analysis step {name!r} has no Python API yet; run it in a recipe")
        return ANALYSES[name](art, cfg, ctx)
    new = spec.fn(art, cfg, ctx)
    if not isinstance(new, ModelArtifact):
        raise StepError(f"step {name!r} returned {type(new).__name__}, not a ModelArtifact")
    return new


def run_recipe(recipe: str | Path | dict[str, Any], out: str | Path | None = None, *,
               quiet: bool = True) -> list[dict[str, Any]]:
    """Validate and run a recipe (a YAML file or a mapping); returns the lineage, one record per step.

    `out` defaults to the recipe's `out:`, else runs/<file name> (like `edgeslim run`) or runs/api/recipe-<hash>.
    """
    from .pipeline import run_recipe as run_pipeline
    from .recipe import load_recipe, parse_recipe

    if isinstance(recipe, dict):
        r = parse_recipe(recipe)
        fallback = f"api/recipe-{run_key(recipe)[:12]}"
    else:
        r = load_recipe(recipe)
        fallback = Path(recipe).stem
    return run_pipeline(r, Path(out or r.out or get_settings().runs_dir / fallback), quiet=quiet)


def options_doc(config_cls: type) -> str:
    """One line per option of a step config: name, type, default, and the comment beside it in the source."""
    comments: dict[str, str] = {}
    for cls in reversed(config_cls.__mro__):   # a subclass's comment wins
        try:
            source = inspect.getsource(cls)
        except (OSError, TypeError):
            continue
        comments.update(re.findall(r"^    (\w+):[^\n#]*#\s*(.+)$", source, re.M))
    lines = []
    for f in dataclasses.fields(config_cls):
        if f.default is not dataclasses.MISSING:
            default = f" = {f.default!r}"
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f" = {f.default_factory()!r}"  # type: ignore[misc]
        else:
            default = " (required)"
        note = f"  # {comments[f.name]}" if f.name in comments else ""
        lines.append(f"    {f.name}: {f.type}{default}{note}")
    return "\n".join(lines)


COMMON = ("task", "out", "seed", "threads", "quiet")


class _PackageFunction:
    """A function sharing its name with a subpackage (`edgeslim.prune`, `edgeslim.optimize`, ...): attributes it
    lacks are read from that package, so `edgeslim.optimize.Goal` and `import edgeslim.prune.step` keep working."""

    package = ""

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return getattr(importlib.import_module(f"edgeslim.{self.package}"), attr)

    def __repr__(self) -> str:
        return f"<edgeslim function {self.package}>"


class StepFunction(_PackageFunction):
    """One step as a function: `prune(model, heads=0.5)` is `run_step("prune", model, heads=0.5)`.

    Each shares its name with a subpackage (`edgeslim.prune` is also the package edgeslim/prune/), so an attribute
    it lacks is read from that package: `import edgeslim.prune.step as s` and `edgeslim.prune.step` keep working.
    """

    def __init__(self, name: str, step: str, summary: str):
        self.__name__ = self.__qualname__ = self.package = name
        self.__module__ = "edgeslim"
        self._step = step
        self._summary = summary

    def __call__(self, model: str | Path | ModelArtifact, *, task: str | None = None, out: str | Path | None = None,
                 seed: int = 0, threads: int = 2, quiet: bool = True, **options: Any) -> Any:
        return run_step(self._step, model, task=task, out=out, seed=seed, threads=threads, quiet=quiet, **options)

    @property  # type: ignore[override]
    def __doc__(self) -> str:  # built on first use: reading the registry imports every step module
        spec = STEPS.get(self._step)
        return (f"{self._summary}\n\nCommon keywords: task (default: the model's), out (default: a folder under "
                f"runs/api/), seed, threads, quiet.\nOptions of step {self._step!r} (checked as in a recipe):\n"
                f"{options_doc(spec.config_cls)}")

    @property
    def __signature__(self) -> inspect.Signature:
        """The call signature with every option of the step's config as a keyword."""
        kw = inspect.Parameter.KEYWORD_ONLY
        own = list(inspect.signature(StepFunction.__call__).parameters.values())[1:-1]   # no self, no **options
        fields = dataclasses.fields(STEPS.get(self._step).config_cls)
        return inspect.Signature(own + [
            inspect.Parameter(f.name, kw, annotation=f.type,
                              default=f.default if f.default is not dataclasses.MISSING else inspect.Parameter.empty)
            for f in fields if f.name not in COMMON])

    def __get__(self, obj: Any, objtype: Any = None) -> "StepFunction":
        return self   # a method descriptor to inspect/pydoc, so help() shows it as a function with its signature

    def __repr__(self) -> str:
        return f"<edgeslim step function {self.__name__} (step {self._step!r})>"


finetune = StepFunction("finetune", "finetune", "Fine-tune a model on its task's training split (time budget, "
                                                "resumable); returns the fine-tuned artifact.")
evaluate = StepFunction("evaluate", "eval", "Score a model on a task split in the runtime of its format; returns "
                                            "the metrics dict and writes nothing.")
profile = StepFunction("profile", "profile", "Cost, roofline verdict and latency/energy per hardware profile, plus "
                                             "latency measured here; returns the report dict.")
distill = StepFunction("distill", "distill", "Distil a fine-tuned teacher into a smaller student (general, then "
                                             "task stage); returns the student.")
prune = StepFunction("prune", "prune", "Remove the least important heads, FFN neurons, layers and unused vocabulary, "
                                       "then recover; returns the pruned artifact.")
quantize = StepFunction("quantize", "quantize", "Quantize with ONNX Runtime (scheme='auto': the fastest within "
                                                "max_drop); returns the ONNX artifact.")
export = StepFunction("export", "export", "Export to several runtimes and precisions, each validated against "
                                          "PyTorch; returns the bundle artifact.")
validate = StepFunction("validate", "validate", "Validate a final model against its teacher (baseline=<teacher "
                                                "folder>): dev metric at batch 1 and N, size, interleaved host "
                                                "latency, predictions; returns the report dict.")


class _Optimize(_PackageFunction):
    """`optimize(model, task=, target=, deadline_ms=, max_drop=, out=, ...)`: the `edgeslim optimize` command.

    Plans a recipe from the goal, runs it, checks the goal against the validate step and writes the report;
    returns an OptimizeResult (`.met`, `.outcome`, `.plan`, `.report`). Raises GoalImpossible when the predictor
    rules the goal out before training. Other attributes come from the package `edgeslim.optimize`.
    """

    __name__ = __qualname__ = package = "optimize"
    __module__ = "edgeslim"

    def __call__(self, model: str | Path, *, task: str, target: str, deadline_ms: float, max_drop: float,
                 out: str | Path, max_size_mb: float | None = None, budget_minutes: float | None = None,
                 seq_len: int = 128, quick: bool = False, runtime: str | None = None, seed: int = 0,
                 threads: int = 2, quiet: bool = True, plan_only: bool = False) -> Any:
        from .optimize import Goal, optimize as run

        goal = Goal(model=str(model), task=task, target=target, deadline_ms=deadline_ms, max_drop=max_drop,
                    max_size_mb=max_size_mb, budget_minutes=budget_minutes, seq_len=seq_len, quick=quick,
                    runtime=runtime, seed=seed, threads=threads)
        return run(goal, out, quiet=quiet, plan_only=plan_only)


optimize = _Optimize()


class _Report(_PackageFunction):
    """`report(run_dir)`: the `edgeslim report` command. Writes DIR/report.html (one self-contained file) and
    DIR/report.md (PNGs in DIR/report-files/); returns {"html", "md", "files", "headline", "notes"}, the headline
    (teacher -> final) being None for a run without a validate step. Other attributes come from the package
    `edgeslim.report`.
    """

    __name__ = __qualname__ = package = "report"
    __module__ = "edgeslim"

    def __call__(self, run_dir: str | Path) -> dict[str, Any]:
        from .report.build import build_report

        return build_report(run_dir)


report = _Report()


class _Serve(_PackageFunction):
    """`serve(model, deadline_ms=, ...)`: the `edgeslim serve` command. Loads the model in its runtime, measures its
    batch latency curve here, plans batching, and serves HTTP until SIGINT/SIGTERM (POST /predict, GET /health,
    GET /metrics). With plan_only=True returns {"model", "plan", "curve"} without serving. Keywords are the fields
    of ServeConfig (host, port, threads, max_batch, max_wait_ms, batching, max_queue, max_body_bytes, max_tokens,
    typical_tokens, margin_ms, ...). Other attributes come from the package `edgeslim.serve`.
    """

    __name__ = __qualname__ = package = "serve"
    __module__ = "edgeslim"

    def __call__(self, model: str | Path, *, deadline_ms: float, plan_only: bool = False,
                 **options: Any) -> dict[str, Any] | None:
        from .serve import ServeConfig
        from .serve.app import build_server, run_server

        server = build_server(ServeConfig(model=str(model), deadline_ms=deadline_ms, **options))
        if plan_only:
            return {"model": server.engine.info, "plan": server.plan.to_dict(), "curve": server.curve.to_dict()}
        run_server(server)
        return None


serve = _Serve()
