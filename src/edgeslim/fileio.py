"""Atomic, durable file and folder writes: a crash never leaves a half-written model that looks whole.

Every write goes to a temp sibling named `.<name>.<pid>.<random>.tmp`, is fsynced, renamed onto the target, and
the parent folder is fsynced so the rename itself survives a power cut. Temp siblings a killed process left behind
(its pid no longer alive) are removed by the next write of the same target. A full disk (ENOSPC, EDQUOT, EFBIG)
raises ResourceError naming the target; the partial temp is removed, the old target (if any) is kept.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from .errors import ResourceError

# errno values that mean "the disk (or a quota, or a file-size limit) is full": reported as ResourceError
NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def fsync_path(path: str | os.PathLike) -> None:
    """fsync a file or folder (a folder's fsync makes the renames in it durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(folder: Path) -> None:
    """fsync every file and folder under `folder`, deepest first, then `folder` itself."""
    for root, _dirs, files in os.walk(folder, topdown=False):
        for name in files:
            p = os.path.join(root, name)
            if not os.path.islink(p):
                fsync_path(p)
        fsync_path(root)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(target: Path) -> list[Path]:
    """Remove the temp siblings (`.<name>.<pid>.*.tmp`, `.<name>.old`) of `target` whose writer is dead."""
    removed = []
    if not target.parent.is_dir():
        return removed
    for p in target.parent.glob(f".{target.name}.*"):
        parts = p.name[len(target.name) + 2:].split(".")
        stale = p.name == f".{target.name}.old" or (
            p.name.endswith(".tmp") and len(parts) >= 3 and parts[0].isdigit() and not _pid_alive(int(parts[0])))
        if stale:
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() and not p.is_symlink() else p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def _temp_prefix(target: Path) -> str:
    return f".{target.name}.{os.getpid()}."


def disk_full(exc: BaseException) -> str | None:
    """The reason if `exc` says the disk (quota, file-size limit) is full, else None. Writers that are not Python
    file objects (safetensors' Rust serializer, ONNX's protobuf writer) raise their own types with the OS message."""
    if isinstance(exc, OSError) and exc.errno in NO_SPACE:
        return exc.strerror or os.strerror(exc.errno)
    text = str(exc)
    return next((os.strerror(e) for e in NO_SPACE if os.strerror(e) in text or f"os error {e})" in text), None)


@contextlib.contextmanager
def _disk_full_is_resource_error(target: Path) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        why = disk_full(exc)
        if why is None or isinstance(exc, ResourceError):   # not a full disk, or already said (a nested write)
            raise
        raise ResourceError(f"out of disk space while writing {target} ({why}); nothing was written there. "
                            "Free space on that disk or choose another output folder") from exc


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp file path beside `target`; fsync and rename it onto `target` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(target), suffix=".tmp", dir=target.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())   # mkstemp makes 0600; the result gets the mode a plain open() would give
    tmp_path = Path(tmp)
    try:
        with _disk_full_is_resource_error(target):
            yield tmp_path
            fsync_path(tmp_path)
            os.replace(tmp_path, target)
            fsync_path(target.parent)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temp folder beside `target`; fsync it and swap it into place only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass overwrite=True or choose another output")
    remove_stale_temps(target)
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(target), suffix=".tmp", dir=target.parent))
    os.chmod(tmp, 0o777 & ~_umask())   # mkdtemp makes 0700; the result gets the mode a plain mkdir() would give
    try:
        with _disk_full_is_resource_error(target):
            yield tmp
            fsync_tree(tmp)
            if target.exists():
                # a crash between these two renames leaves only `.<name>.old`: no half model under the real name
                old = target.with_name(f".{target.name}.old")
                if old.exists():
                    shutil.rmtree(old)
                os.replace(target, old)
                os.replace(tmp, target)
                fsync_path(target.parent)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, target)
                fsync_path(target.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def free_bytes(folder: str | os.PathLike) -> int:
    """Bytes free for this user on the disk holding `folder` (or its nearest existing ancestor)."""
    p = Path(folder).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free


def require_disk(folder: str | os.PathLike, need: int, what: str) -> None:
    """Raise ResourceError before any work if the disk holding `folder` has less than `need` bytes free."""
    free = free_bytes(folder)
    if need > free:
        raise ResourceError(f"{what}: not enough disk space for its outputs in {folder}: needs about "
                            f"{need / 1e6:,.1f} MB, {free / 1e6:,.1f} MB free. Free space there or choose another "
                            "output folder (--out, or EDGESLIM_RUNS)")


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write text atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write JSON atomically, indented and key-sorted for stable diffs."""
    return write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
