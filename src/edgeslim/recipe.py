"""YAML recipe -> validated list of steps. The recipe is checked as a whole before any work starts: top-level keys,
every step's option types (from its config's field annotations) and ranges (its `__post_init__`), the artifact
format flowing through the steps (each step must accept what the one before produces), and the installed extras.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .artifact import FORMATS, MANIFEST
from .errors import ConfigError, RecipeError
from .registry import STEPS, StepSpec, build_config, suggest

TOP_KEYS = ("task", "model", "seed", "out", "steps", "threads", "description")

# artifact format -> how a message names it
FORMAT_NAMES = {"hf": "an hf (PyTorch)", "onnx": "an onnx (ONNX Runtime)", "tflite": "a tflite (LiteRT)",
                "pte": "a pte (ExecuTorch)", "mlpackage": "an mlpackage (Core ML)"}


@dataclass(frozen=True)
class RecipeSettings:
    """The top-level keys of a recipe besides `steps`; types come from these annotations, as for step options."""

    model: str                  # a packaged model name (edgeslim models) or a folder
    task: str | None = None
    seed: int = 0
    threads: int = 2            # CPU threads each step uses
    out: str | None = None      # run folder; default runs/<recipe name>
    description: str = ""

    def __post_init__(self) -> None:
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"seed must be in 0..{2**32 - 1}, got {self.seed}")
        if self.threads < 1:
            raise ConfigError(f"threads must be >= 1 (CPU threads each step uses), got {self.threads}")


@dataclass(frozen=True)
class RecipeStep:
    """One validated step: registered name plus its built config."""

    name: str
    config: Any

    @property
    def options(self) -> dict[str, Any]:
        return dataclasses.asdict(self.config)


@dataclass(frozen=True)
class Recipe:
    """A whole recipe: source model, task, seed, output folder and the steps in order."""

    model: str
    task: str | None
    steps: tuple[RecipeStep, ...]
    seed: int = 0
    threads: int = 2
    out: str | None = None
    description: str = ""
    source: dict[str, Any] = field(default_factory=dict)


def parse_recipe(data: Any, where: str = "recipe") -> Recipe:
    """Validate a recipe mapping (already parsed from YAML) into a Recipe; the first problem raises RecipeError."""
    if not isinstance(data, dict):
        raise RecipeError(f"{where}: a recipe is a mapping with keys {', '.join(TOP_KEYS)}")
    for key in data:
        if key not in TOP_KEYS:
            raise RecipeError(f"{where}: unknown key {key!r}.{suggest(key, TOP_KEYS)}")
    if "model" not in data:
        raise RecipeError(f"{where}: missing `model:` (a packaged model name such as minilm-l6, or a folder)")
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise RecipeError(f"{where}: `steps:` must be a non-empty list, e.g. `- finetune: {{max_minutes: 10}}`")
    try:
        settings = build_config(RecipeSettings, {k: v for k, v in data.items() if k != "steps"}, where=where,
                                what="key")
    except ConfigError as exc:
        raise RecipeError(str(exc)) from None
    steps = tuple(parse_step(i, item, where) for i, item in enumerate(raw_steps, start=1))
    task = settings.task
    if task is not None:
        from .tasks import get_task

        try:
            task = get_task(task).name
        except ConfigError as exc:
            raise RecipeError(f"{where}: {exc}") from None
    check_step_order(steps, settings.model, where)
    return Recipe(model=settings.model, task=task, steps=steps, seed=settings.seed, threads=settings.threads,
                  out=settings.out, description=settings.description, source=data)


def parse_step(i: int, item: Any, where: str) -> RecipeStep:
    """Step `i` of a recipe: its name, options (types, then ranges) and the extras it needs."""
    if isinstance(item, str):
        item = {item: {}}
    if not isinstance(item, dict) or len(item) != 1:
        raise RecipeError(f"{where}: step {i} must be a one-key mapping `- name: {{options}}`, got {item!r}")
    (name, opts), = item.items()
    if opts is None:
        opts = {}
    if not isinstance(opts, dict):
        raise RecipeError(f"{where}: step {i} ({name}) options must be a mapping such as {{key: value}}, got {opts!r}")
    try:
        spec = STEPS.get(str(name))
    except ConfigError as exc:
        raise RecipeError(f"{where}: step {i}: {exc}") from None
    try:
        cfg = spec.make_config(opts, where=f"{where}: step {i} ({name})")
    except ConfigError as exc:
        raise RecipeError(str(exc)) from None
    check_backends(i, spec, cfg, where)
    return RecipeStep(spec.name, cfg)


def check_backends(i: int, spec: StepSpec, cfg: Any, where: str) -> None:
    """Fail if a Python module step `i` imports is not installed, naming the pip extra that installs it."""
    from ._compat import BACKENDS

    missing = spec.missing_backends(cfg)
    if missing:
        names = [BACKENDS.get(m.split(".")[0], (m, "all"))[0] for m in missing]
        extras = ",".join(dict.fromkeys(BACKENDS.get(m.split(".")[0], (m, "all"))[1] for m in missing))
        raise RecipeError(f"{where}: step {i} ({spec.name}) needs {', '.join(names)}, which is not installed; "
                          f"fix: pip install 'edgeslim[{extras}]'")


def source_format(model: str, where: str) -> str:
    """The artifact format of the recipe's source model, read cheaply: a packaged name or an HF folder is "hf", an
    edgeslim artifact folder has its format in its manifest (not hashed, not loaded)."""
    from .models.zoo import PACKAGED_MODELS

    if model in PACKAGED_MODELS:
        return "hf"
    path = Path(model).expanduser()
    manifest = path / MANIFEST
    if manifest.is_file():
        try:
            fmt = json.loads(manifest.read_text()).get("format")
        except (OSError, ValueError, AttributeError) as exc:
            raise RecipeError(f"{where}: model {model!r}: unreadable manifest {manifest} ({exc}); "
                              "fix: delete it to re-adopt the folder") from None
        if fmt not in FORMATS:
            raise RecipeError(f"{where}: model {model!r}: manifest format {fmt!r} is not one of {', '.join(FORMATS)}")
        return fmt
    if (path / "config.json").is_file():
        return "hf"
    if path.exists():
        raise RecipeError(f"{where}: model {model!r} is not a model: no {MANIFEST} and no config.json; fix: pass an "
                          "edgeslim artifact folder or a Hugging Face model folder")
    raise RecipeError(f"{where}: model {model!r} is neither a local folder nor a packaged model."
                      f"{suggest(model, PACKAGED_MODELS)} fix: pass a local folder or a name from `edgeslim models` "
                      "(edgeslim never downloads from a hub)")


def check_step_order(steps: tuple[RecipeStep, ...], model: str, where: str) -> None:
    """Follow the artifact format from the source model through the steps; a step that cannot take the format the
    step before it produces fails, naming both. Analysis steps (eval, profile) keep the format."""
    fmt = source_format(model, where)
    made_by: tuple[int, str] | None = None   # (step number, name) that produced `fmt`; None = the source model
    for i, step in enumerate(steps, start=1):
        spec = STEPS.get(step.name)
        if spec.accepts and fmt not in spec.accepts:
            takes = " or ".join(FORMAT_NAMES.get(f, f) for f in spec.accepts)
            if made_by is None:
                raise RecipeError(f"{where}: step {i} ({step.name}) takes {takes} model, but the source model "
                                  f"{model!r} is {fmt}; fix: start from the PyTorch (hf) model it was made from")
            j, maker = made_by
            raise RecipeError(f"{where}: step {i} ({step.name}) takes {takes} model, but step {j} ({maker}) produces "
                              f"{fmt}; fix: move {step.name} before {maker}")
        if not spec.analysis:
            new = spec.output_format(step.config, fmt)
            if new != fmt:
                made_by, fmt = (i, step.name), new


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a YAML recipe file."""
    from .inputs import load_user_yaml

    path = Path(path)
    return parse_recipe(load_user_yaml(path, "recipe file", RecipeError), where=str(path))
