"""Reading files a user hands edgeslim (recipes, profiles, data, model configs): text, YAML and JSON.

Each reader raises the caller's EdgeslimError subclass naming the file, the place (line, column) and the fix, so a
missing file, a folder, non-UTF-8 bytes or a syntax error never surfaces as an OSError, UnicodeDecodeError or a
yaml/json exception. Checking the parsed document's shape stays with each reader (it knows its keys).
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import DataError, EdgeslimError, ModelError

UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def read_user_text(path: str | Path, what: str, error: type[EdgeslimError] = DataError) -> str:
    """The UTF-8 text of a user file (a BOM allowed); a missing file, a folder or other bytes raise `error`."""
    path = Path(path)
    if path.is_dir():
        raise error(f"{path} is a folder where the {what} should be; fix: pass the file itself")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise error(f"{what} not found: {path}; fix: check the path") from None
    except (OSError, ValueError) as exc:   # ValueError: a path with a NUL character
        raise error(f"cannot read {what} {path}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        seen = "UTF-16 text" if raw[:2] in UTF16_BOMS else f"byte {raw[exc.start:exc.start + 1]!r} is not UTF-8"
        raise error(f"{path}:{line}: {what} must be UTF-8 text ({seen}); fix: save it as UTF-8") from None


def load_user_yaml(path: str | Path, what: str, error: type[EdgeslimError] = DataError) -> Any:
    """Parse a user YAML file; a syntax error names its line and column."""
    import yaml

    text = read_user_text(path, what, error)
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        place = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise error(f"{path}: not valid YAML{place} ({exc.problem or exc.context}); fix: correct the YAML there "
                    "(indentation, a missing ':', an unclosed quote or bracket)") from None
    except (yaml.YAMLError, ValueError, OverflowError, RecursionError) as exc:
        # PyYAML raises ValueError for scalars it cannot convert, e.g. the date 2024-13-45
        raise error(f"{path}: not valid YAML ({type(exc).__name__}: {exc}); fix: quote or correct that value") from None


def load_user_json(path: str | Path, what: str, error: type[EdgeslimError] = DataError) -> Any:
    """Parse a user JSON file; a syntax error names its line and column."""
    import json

    text = read_user_text(path, what, error)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{path}: not valid JSON at line {exc.lineno}, column {exc.colno} ({exc.msg}); fix: correct "
                    f"the JSON there or restore the {what}") from None
    except (ValueError, RecursionError) as exc:   # nesting too deep, a number too long to convert
        raise error(f"{path}: not valid JSON ({type(exc).__name__}: {exc}); fix: restore the {what}") from None


def type_name(value: Any) -> str:
    """How a message names a parsed value's type: a mapping, a list, a string, a number, true/false, null."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    return {dict: "a mapping", list: "a list", str: "a string", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__)


@contextlib.contextmanager
def foreign_loader(path: str | Path, what: str, fix: str, error: type[EdgeslimError] = ModelError) -> Iterator[None]:
    """Turn what a third-party loader raises on a bad file into `error` naming the file and the fix.

    safetensors, tokenizers, ONNX Runtime, LiteRT and ExecuTorch raise plain Exception subclasses (SafetensorError,
    InvalidProtobuf, ...) for a truncated or foreign file, so nothing narrower catches them. Our own errors and
    MemoryError pass through unchanged.
    """
    try:
        yield
    except (EdgeslimError, MemoryError):
        raise
    except Exception as exc:   # see above: the loaders' errors have no common base narrower than this
        detail = (str(exc).strip().splitlines() or [""])[0][:300]
        raise error(f"cannot load {what} {path} ({type(exc).__name__}: {detail}); fix: {fix}") from exc
