"""Tiny name -> (config class, function) registries, with close-match hints on unknown names.

Every optimisation step is a frozen config dataclass plus a function registered for it:

    @register_step("prune.heads", PruneHeadsConfig)
    def prune_heads(model: ModelArtifact, cfg: PruneHeadsConfig, ctx: RunContext) -> ModelArtifact: ...
"""
from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

from .errors import ConfigError

T = TypeVar("T")


def suggest(name: str, choices: typing.Iterable[str]) -> str:
    """' Did you mean x?' for the closest choice, or a list of all choices."""
    choices = sorted(choices)
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    if close:
        return f" Did you mean {', '.join(repr(c) for c in close)}?"
    return f" Choose one of: {', '.join(choices)}." if choices else ""


class Registry(Generic[T]):
    """A named mapping that fails with a close-match hint on unknown names."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def add(self, name: str, item: T) -> T:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = item
        return item

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise ConfigError(f"unknown {self.kind} {name!r}.{suggest(name, self._items)}") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items


@dataclass(frozen=True)
class StepSpec:
    """A registered optimisation step: its name, config class and function."""

    name: str
    config_cls: type
    fn: Callable[..., Any]
    doc: str

    def make_config(self, options: dict[str, Any] | None) -> Any:
        """Build the config dataclass from plain options; unknown keys fail with a hint."""
        return build_config(self.config_cls, options or {}, where=f"step {self.name!r}")


STEPS: Registry[StepSpec] = Registry("step")


def register_step(name: str, config_cls: type) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register `fn(model, cfg, ctx) -> ModelArtifact` under `name` with its config dataclass."""
    if not dataclasses.is_dataclass(config_cls):
        raise TypeError(f"config for step {name!r} must be a dataclass")

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        STEPS.add(name, StepSpec(name, config_cls, fn, (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""))
        return fn

    return deco


def build_config(cls: type, options: dict[str, Any], where: str = "") -> Any:
    """Instantiate dataclass `cls` from `options`, naming unknown or missing keys and bad types."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    prefix = f"{where}: " if where else ""
    for key in options:
        if key not in fields:
            raise ConfigError(f"{prefix}unknown option {key!r}.{suggest(key, fields)}")
    missing = [
        n for n, f in fields.items()
        if n not in options and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING  # type: ignore[misc]
    ]
    if missing:
        raise ConfigError(f"{prefix}missing required option(s): {', '.join(missing)}")
    try:
        return cls(**options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{prefix}{exc}") from exc
