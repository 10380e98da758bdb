"""Tiny name -> (config class, function) registries, with close-match hints on unknown names.

Every optimisation step is a frozen config dataclass plus a function registered for it:

    @register_step("prune.heads", PruneHeadsConfig)
    def prune_heads(model: ModelArtifact, cfg: PruneHeadsConfig, ctx: RunContext) -> ModelArtifact: ...
"""
from __future__ import annotations

import dataclasses
import difflib
import importlib
import pkgutil
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


def discover(package: str, *, skip: typing.Iterable[str] = ()) -> None:
    """Import every module under `package` (except those under `skip`), so their registrations run.

    Modules keep heavy backends inside functions, so this stays light (a test checks that no torch loads).
    """
    skip = tuple(skip)
    pkg = importlib.import_module(package)
    for info in pkgutil.walk_packages(pkg.__path__, prefix=package + "."):
        if info.name.endswith("__main__") or any(info.name == s or info.name.startswith(s + ".") for s in skip):
            continue
        importlib.import_module(info.name)


class Registry(Generic[T]):
    """A named mapping that fails with a close-match hint on unknown names.

    With `discover`, the first lookup imports every module of that package, so adding an entry is adding a
    module that registers it; no list to edit elsewhere.
    """

    def __init__(self, kind: str, *, discover: str | None = None, skip: typing.Iterable[str] = ()):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._discover = discover
        self._skip = tuple(skip)
        self._discovered = discover is None

    def _load(self) -> None:
        if not self._discovered:
            self._discovered = True   # set first: modules being imported may look the registry up
            discover(self._discover, skip=self._skip)  # type: ignore[arg-type]

    def add(self, name: str, item: T) -> T:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = item
        return item

    def get(self, name: str) -> T:
        self._load()
        try:
            return self._items[name]
        except KeyError:
            raise ConfigError(f"unknown {self.kind} {name!r}.{suggest(name, self._items)}") from None

    def names(self) -> list[str]:
        self._load()
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        self._load()
        return name in self._items

    def __iter__(self) -> typing.Iterator[str]:
        return iter(self.names())


@dataclass(frozen=True)
class StepSpec:
    """A registered optimisation step: its name, config class and function, and what it takes and gives.

    `accepts`: artifact formats the step can take (empty = any). `produces`: the format it returns (None = the
    input's format). `analysis`: it measures its input and returns it unchanged, with metrics added in memory
    (the pipeline writes those metrics into the run folder, never into the input). `backends`: Python modules it
    imports (each maps to a pip extra in `_compat.BACKENDS`); a config may add more with a `backends()` method.
    """

    name: str
    config_cls: type
    fn: Callable[..., Any]
    doc: str
    accepts: tuple[str, ...] = ()
    produces: str | None = None
    analysis: bool = False
    backends: tuple[str, ...] = ()

    def make_config(self, options: dict[str, Any] | None) -> Any:
        """Build the config dataclass from plain options; unknown keys fail with a hint."""
        return build_config(self.config_cls, options or {}, where=f"step {self.name!r}")

    def output_format(self, cfg: Any, input_format: str) -> str:
        """The format this step returns for `cfg` given an input of `input_format`."""
        dynamic = getattr(cfg, "output_format", None)
        if callable(dynamic):
            return dynamic()
        return self.produces or input_format

    def required_backends(self, cfg: Any) -> tuple[str, ...]:
        """Python modules this step needs for `cfg`."""
        extra = getattr(cfg, "backends", None)
        return tuple(dict.fromkeys(self.backends + (tuple(extra()) if callable(extra) else ())))


# Every module of the package may register steps; the CLI (which imports typer) is not searched.
STEPS: Registry[StepSpec] = Registry("step", discover="edgeslim", skip=("edgeslim.cli",))


def register_step(name: str, config_cls: type, *, accepts: typing.Iterable[str] = (), produces: str | None = None,
                  analysis: bool = False, backends: typing.Iterable[str] = ()
                  ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register `fn(model, cfg, ctx) -> ModelArtifact` under `name` with its config dataclass."""
    if not dataclasses.is_dataclass(config_cls):
        raise TypeError(f"config for step {name!r} must be a dataclass")

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        doc = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        STEPS.add(name, StepSpec(name, config_cls, fn, doc, tuple(accepts), produces, analysis, tuple(backends)))
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
