"""Tiny name -> (config class, function) registries, with close-match hints on unknown names.

Every optimisation step is a frozen config dataclass plus a function registered for it:

    @register_step("prune.heads", PruneHeadsConfig)
    def prune_heads(model: ModelArtifact, cfg: PruneHeadsConfig, ctx: RunContext) -> ModelArtifact: ...
"""
from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import functools
import importlib
import importlib.util
import pkgutil
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .errors import ConfigError

T = TypeVar("T")


def suggest(name: str, choices: typing.Iterable[str]) -> str:
    """' Did you mean x?' for the closest choice, or a list of all choices."""
    choices = sorted(choices)
    close = difflib.get_close_matches(str(name), choices, n=3, cutoff=0.5)   # str: a YAML key may be a number
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
    disk_factor: float = 2.0   # outputs + checkpoints + scratch, as a multiple of the input model's size

    def make_config(self, options: dict[str, Any] | None, where: str | None = None) -> Any:
        """Build the config dataclass from plain options; unknown keys, bad types and ranges fail with a hint."""
        return build_config(self.config_cls, options or {}, where=f"step {self.name!r}" if where is None else where)

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

    def disk_need(self, model: Any, cfg: Any) -> int:
        """Bytes of disk the step may write for `model` (a config's `disk_factor()` overrides the step's)."""
        factor = getattr(cfg, "disk_factor", None)
        return int(model.size_bytes * (factor() if callable(factor) else self.disk_factor))

    def missing_backends(self, cfg: Any) -> tuple[str, ...]:
        """The modules of `required_backends(cfg)` that are not installed (found without importing them)."""
        return tuple(m for m in self.required_backends(cfg) if not backend_installed(m))


def backend_installed(module: str) -> bool:
    """Whether `module` could be imported, without importing it (only its top-level package is looked up)."""
    try:
        return importlib.util.find_spec(module.split(".")[0]) is not None
    except (ImportError, ValueError):
        return False


# Every module of the package may register steps; the CLI (which imports typer) is not searched.
STEPS: Registry[StepSpec] = Registry("step", discover="edgeslim", skip=("edgeslim.cli",))


def register_step(name: str, config_cls: type, *, accepts: typing.Iterable[str] = (), produces: str | None = None,
                  analysis: bool = False, backends: typing.Iterable[str] = (), disk_factor: float = 2.0
                  ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register `fn(model, cfg, ctx) -> ModelArtifact` under `name` with its config dataclass.

    An artifact step (not `analysis`) is wrapped so that it first checks the disk: less free space beside
    `ctx.out_dir` than `disk_factor` x the input model's size fails with ResourceError before any work.
    """
    if not dataclasses.is_dataclass(config_cls):
        raise TypeError(f"config for step {name!r} must be a dataclass")

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        doc = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        spec = StepSpec(name, config_cls, fn, doc, tuple(accepts), produces, analysis, tuple(backends), disk_factor)
        if analysis:
            STEPS.add(name, spec)
            return fn

        @functools.wraps(fn)
        def checked(model: Any, cfg: Any, ctx: Any, *args: Any, **kwargs: Any) -> Any:
            from .fileio import require_disk

            require_disk(ctx.out_dir, spec.disk_need(model, cfg), f"step {name!r}")
            return fn(model, cfg, ctx, *args, **kwargs)

        STEPS.add(name, dataclasses.replace(spec, fn=checked))
        return checked

    return deco


def build_config(cls: type, options: dict[str, Any], where: str = "", what: str = "option") -> Any:
    """Instantiate dataclass `cls` from `options`: unknown or missing keys, then types (from the field
    annotations, before `__post_init__` runs), then the ranges `__post_init__` checks; every error names the key,
    what it takes, the value given and a fix. YAML lists become tuples where the field takes a tuple."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    prefix = f"{where}: " if where else ""
    for key in options:
        if key not in fields:
            raise ConfigError(f"{prefix}unknown {what} {key!r}.{suggest(key, fields)}")
    missing = [n for n, f in fields.items() if n not in options and field_default(f) is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{prefix}missing required {what}(s): {', '.join(missing)}")
    hints = type_hints(cls)
    values = {}
    for key, value in options.items():
        hint = hints.get(key, Any)
        if not matches(value, hint):
            raise ConfigError(f"{prefix}{type_error(key, value, hint, fields[key], what)}")
        values[key] = as_tuples(value, hint)
    try:
        return cls(**values)
    except (ConfigError, TypeError, ValueError) as exc:
        raise ConfigError(f"{prefix}{range_error(str(exc), values, fields)}") from exc


# ---------------------------------------------------------------- option types, from the field annotations
# Supported: int, float (an int is accepted), bool (never an int for a number or a number for a bool), str, None,
# unions (`int | tuple[int, ...] | None`), tuple[X, ...] (YAML lists accepted), list[X], dict[K, V], Literal, Any.

NoneType = type(None)
SEQUENCES = (tuple, list, set, frozenset)
MAPPINGS = (dict, collections.abc.Mapping)


@functools.cache
def type_hints(cls: type) -> dict[str, Any]:
    """The resolved field annotations of `cls` (they are strings under `from __future__ import annotations`)."""
    return typing.get_type_hints(cls)


def field_default(f: dataclasses.Field) -> Any:
    """The field's default value (from its default factory if it has one), or dataclasses.MISSING."""
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return dataclasses.MISSING


def union_arms(hint: Any) -> tuple[Any, ...]:
    """The alternatives of a union (`a | b`, Optional[a]); a plain type is its own single arm."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def matches(value: Any, hint: Any) -> bool:
    """Whether `value` (as YAML gives it) is acceptable for a field annotated `hint`."""
    if hint is Any:
        return True
    arms = union_arms(hint)
    if len(arms) > 1:
        return any(matches(value, a) for a in arms)
    if hint is None or hint is NoneType:
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return value in args
    if origin in SEQUENCES or hint in SEQUENCES:
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:   # fixed length: tuple[int, str]
            return len(value) == len(args) and all(matches(v, a) for v, a in zip(value, args))
        return not args or all(matches(v, args[0]) for v in value)
    if origin in MAPPINGS or hint in MAPPINGS:
        if not isinstance(value, dict):
            return False
        key_t, val_t = args or (Any, Any)
        return all(matches(k, key_t) and matches(v, val_t) for k, v in value.items())
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True   # an annotation this checker does not understand is not checked


def as_tuples(value: Any, hint: Any) -> Any:
    """A YAML list as a tuple where the field takes a tuple (configs are frozen, hashable records)."""
    if isinstance(value, list) and any(typing.get_origin(a) is tuple or a is tuple for a in union_arms(hint)):
        return tuple(value)
    return value


_PLURAL = {"an integer": "integers", "a number": "numbers", "true or false": "true/false values",
           "a string": "strings", "null": "nulls"}


def describe(hint: Any) -> str:
    """What a field annotated `hint` takes, in words: 'an integer, a list of integers or null'."""
    if hint is Any:
        return "any value"
    arms = union_arms(hint)
    if len(arms) > 1:
        words = [describe(a) for a in arms]
        return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"
    if hint is None or hint is NoneType:
        return "null"
    simple = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if hint in simple:
        return simple[hint]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in SEQUENCES or hint in SEQUENCES:
        if origin is tuple and args and args[-1] is not Ellipsis:
            return f"a list of {len(args)} ({', '.join(describe(a) for a in args)})"
        item = describe(args[0]) if args else "any value"
        return f"a list of {_PLURAL.get(item, item)}"
    if origin in MAPPINGS or hint in MAPPINGS:
        if len(args) != 2:
            return "a mapping"
        key, val = (describe(a).removeprefix("an ").removeprefix("a ") for a in args)
        return f"a mapping of {key} to {val}"
    return f"a {getattr(hint, '__name__', str(hint))}"


def shown(value: Any) -> str:
    """A value as the user wrote it in YAML: true/false/null for bool and None, repr otherwise."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return repr(value)


def yaml_value(value: Any) -> str:
    """A value written the way a recipe would write it (flow style): 32, 0.5, true, null, [a, b], {kl: 1.0}."""
    if isinstance(value, (bool, NoneType)):
        return shown(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(yaml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{yaml_value(k)}: {yaml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, str):
        plain = re.fullmatch(r"[A-Za-z_][\w.\-/%]*", value) and value.lower() not in YAML_WORDS
        return value if plain else repr(value)
    return repr(value)


YAML_WORDS = ("true", "false", "null", "yes", "no", "on", "off")   # plain scalars YAML would not read as text


def example(key: str, f: dataclasses.Field, hint: Any, value: Any = None) -> str | None:
    """A valid `key: value` line for the fix: the field's default, else a value of its first non-null type."""
    if isinstance(value, float) and value.is_integer() and int in union_arms(hint):
        return f"{key}: {int(value)}"
    default = field_default(f)
    if default is not dataclasses.MISSING and default is not None and matches(default, hint):
        return f"{key}: {yaml_value(default)}"
    for arm in union_arms(hint):
        sample = {int: 1, float: 1.0, bool: True}.get(arm)
        if sample is not None:
            return f"{key}: {yaml_value(sample)}"
    if default is None:
        return f"{key}: null (the default)"
    return None


def first_bad_item(value: Any, hint: Any) -> str | None:
    """For a list or mapping that fails `hint`, the first item that no list or mapping arm of `hint` takes."""
    for arm in union_arms(hint):
        origin, args = typing.get_origin(arm), typing.get_args(arm)
        if isinstance(value, (list, tuple)) and origin in SEQUENCES and args and (len(args) == 1 or args[-1] is ...):
            for i, v in enumerate(value, start=1):
                if not matches(v, args[0]):
                    return f"item {i} is {shown(v)}, {type(v).__name__}"
        if isinstance(value, dict) and origin in MAPPINGS and len(args) == 2:
            for k, v in value.items():
                if not matches(k, args[0]):
                    return f"key {shown(k)} is {type(k).__name__}"
                if not matches(v, args[1]):
                    return f"{k!r} is {shown(v)}, {type(v).__name__}"
    return None


def type_error(key: str, value: Any, hint: Any, f: dataclasses.Field, what: str = "option") -> str:
    """'option 'batch_size' must be an integer, got 3.5 (float); fix: e.g. batch_size: 32'."""
    got = shown(value) if value is None else f"{shown(value)} ({first_bad_item(value, hint) or type(value).__name__})"
    fix = example(key, f, hint, value)
    if isinstance(value, str) and float in union_arms(hint) \
            and re.fullmatch(r"[-+]?(\d+|\d*\.\d+)[eE][-+]?\d+", value.strip()):
        mantissa, exp = value.strip().lower().split("e")   # PyYAML reads 1e-4 (no dot) as a string
        fix = f"write {key}: {mantissa if '.' in mantissa else mantissa + '.0'}e{exp} (YAML reads {value.strip()} " \
              "without a dot as text)"
    elif fix:
        fix = f"e.g. {fix}"
    return f"{what} {key!r} must be {describe(hint)}, got {got}" + (f"; fix: {fix}" if fix else "")


def range_error(message: str, options: dict[str, Any], fields: dict[str, dataclasses.Field]) -> str:
    """A config's own check message without its 'finetune: ' prefix, plus a fix for the option it names."""
    m = re.match(r"([a-z][\w.]*): ", message)
    if m and m.group(1) not in fields:
        message = message[m.end():]
    if "fix:" in message or "Did you mean" in message:
        return message
    for key in options:
        if re.search(rf"(^|[\s(]){re.escape(key)}( values)?( must|: )", message):
            default = field_default(fields[key])
            if default is not dataclasses.MISSING and default is not None:
                return f"{message}; fix: e.g. {key}: {yaml_value(default)}"
            break
    return message
