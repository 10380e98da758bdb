"""YAML recipe -> validated list of steps; every error surfaces before any work starts."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, RecipeError
from .registry import STEPS, suggest

TOP_KEYS = ("task", "model", "seed", "out", "steps", "threads", "description")


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
    """Validate a recipe mapping (already parsed from YAML) into a Recipe."""
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
    steps = []
    for i, item in enumerate(raw_steps, start=1):
        if isinstance(item, str):
            item = {item: {}}
        if not isinstance(item, dict) or len(item) != 1:
            raise RecipeError(f"{where}: step {i} must be a one-key mapping `- name: {{options}}`, got {item!r}")
        (name, opts), = item.items()
        if opts is None:
            opts = {}
        if not isinstance(opts, dict):
            raise RecipeError(f"{where}: step {i} ({name}) options must be a mapping, got {opts!r}")
        try:
            spec = STEPS.get(name)
            cfg = spec.make_config(opts)
        except ConfigError as exc:
            raise RecipeError(f"{where}: step {i}: {exc}") from None
        steps.append(RecipeStep(name, cfg))
    seed = data.get("seed", 0)
    if not isinstance(seed, int):
        raise RecipeError(f"{where}: seed must be an integer, got {seed!r}")
    task = data.get("task")
    if task is not None:
        from .tasks import get_task

        try:
            task = get_task(str(task)).name
        except ConfigError as exc:
            raise RecipeError(f"{where}: {exc}") from None
    return Recipe(model=str(data["model"]), task=task, steps=tuple(steps), seed=seed,
                  threads=int(data.get("threads", 2)), out=data.get("out"),
                  description=str(data.get("description", "")), source=data)


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a YAML recipe file."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"recipe file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: not valid YAML: {exc}") from exc
    return parse_recipe(data, where=str(path))
