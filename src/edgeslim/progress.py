"""Progress for people and for logs; nothing at all when quiet.

On a terminal, long loops show rich progress bars. When the progress stream is not a terminal (`make demo > log`,
CI) or EDGESLIM_PROGRESS=plain, they print plain, flushed lines instead: a heartbeat every
EDGESLIM_PROGRESS_SECONDS (default 30) with the count, the loop's info (e.g. the loss), time elapsed and an estimate
of the time left, and one line when the loop ends. `progress_line` prints one such line in every mode (the
pipeline's step start/end lines, the quantize search's phases). Lines go to stdout, or to stderr once
`progress_to_stderr()` is on (the CLI turns it on for commands that print --json on stdout).
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import Iterator, TextIO

from .errors import ConfigError

MODE_ENV = "EDGESLIM_PROGRESS"             # auto (default: rich on a terminal, plain otherwise) | plain | rich
SECONDS_ENV = "EDGESLIM_PROGRESS_SECONDS"  # plain mode: seconds between heartbeat lines
MODES = ("auto", "plain", "rich")
DEFAULT_SECONDS = 30.0

_to_stderr = False                         # process-wide: progress goes to stderr (stdout carries JSON)


def progress_to_stderr(on: bool = True) -> None:
    """Send progress (bars and lines) to stderr instead of stdout, e.g. while stdout carries JSON."""
    global _to_stderr
    _to_stderr = on


def progress_stream() -> TextIO:
    """Where progress goes now (looked up on each call, so redirected or captured streams are honoured)."""
    return sys.stderr if _to_stderr else sys.stdout


def progress_mode(quiet: bool = False) -> str:
    """"off" (quiet), "rich" (bars on a terminal) or "plain" (flushed lines); EDGESLIM_PROGRESS overrides auto."""
    if quiet:
        return "off"
    mode = os.environ.get(MODE_ENV, "auto").strip().lower() or "auto"
    if mode not in MODES:
        raise ConfigError(f"{MODE_ENV} must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "auto":
        stream = progress_stream()
        return "rich" if getattr(stream, "isatty", lambda: False)() else "plain"
    return mode


def heartbeat_seconds() -> float:
    """Seconds between plain heartbeat lines (EDGESLIM_PROGRESS_SECONDS, default 30)."""
    raw = os.environ.get(SECONDS_ENV, "").strip()
    if not raw:
        return DEFAULT_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise ConfigError(f"{SECONDS_ENV} must be a number of seconds > 0, got {raw!r}")
    return value


def progress_line(text: str, quiet: bool = False) -> None:
    """Print one flushed progress line (stdout, or stderr under progress_to_stderr); nothing when quiet."""
    if progress_mode(quiet) != "off":
        print(text, file=progress_stream(), flush=True)


def duration(seconds: float) -> str:
    """A duration a person reads at a glance: '42 s', '9 min 01 s', '2 h 05 min'."""
    s = round(max(seconds, 0.0))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


@contextlib.contextmanager
def progress_bar(description: str, total: float | None, quiet: bool = False, *, completed: float = 0,
                 time_budget: float | None = None, unit: str = "steps") -> Iterator[_Bar]:
    """A progress bar with `advance(n)` and `set(info)`: rich on a terminal, heartbeat lines in a log, nothing
    when quiet. `completed` is where a resumed loop starts; `time_budget` (seconds from now) caps the estimate
    of the time left for loops that also stop on time."""
    mode = progress_mode(quiet)
    if mode == "off":
        yield _Bar()
        return
    if mode == "plain":
        bar = _PlainBar(description, total, completed, time_budget, unit, heartbeat_seconds())
        yield bar
        bar.finish()
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[info]}"), transient=False,
                  console=Console(file=progress_stream())) as prog:
        tid = prog.add_task(description, total=total, completed=completed, info="")
        yield _RichBar(prog, tid)


class _Bar:
    """The quiet bar: does nothing."""

    def advance(self, n: float = 1) -> None:
        pass

    def set(self, info: str) -> None:
        pass


class _RichBar(_Bar):
    def __init__(self, prog, tid):
        self._prog, self._tid = prog, tid

    def advance(self, n: float = 1) -> None:
        self._prog.advance(self._tid, n)

    def set(self, info: str) -> None:
        self._prog.update(self._tid, info=info)


class _PlainBar(_Bar):
    """Prints a heartbeat line every `interval` seconds of work, and a last line at the end."""

    def __init__(self, description: str, total: float | None, completed: float, time_budget: float | None,
                 unit: str, interval: float):
        self.description, self.total, self.unit, self.interval = description, total, unit, interval
        self.done = self.start_done = completed
        self.time_budget, self.info = time_budget, ""
        self.t0 = self.last = time.perf_counter()

    def advance(self, n: float = 1) -> None:
        self.done += n
        now = time.perf_counter()
        if now - self.last >= self.interval:
            self.last = now
            print(f"  {self.description}: {self._status(now)}", file=progress_stream(), flush=True)

    def set(self, info: str) -> None:
        self.info = info

    def time_left(self, now: float) -> tuple[float | None, bool]:
        """(estimated seconds left, whether the time budget is what limits it)."""
        elapsed = now - self.t0
        left, by_budget = None, False
        rate = (self.done - self.start_done) / elapsed if elapsed > 0 else 0.0
        if self.total is not None and rate > 0:
            left = max(self.total - self.done, 0) / rate
        if self.time_budget is not None and (left is None or self.time_budget - elapsed < left):
            left, by_budget = max(self.time_budget - elapsed, 0.0), True
        return left, by_budget

    def _count(self) -> str:
        done = f"{self.done:g}"
        if self.total is None:
            return f"{done} {self.unit}"
        return f"{done}/{self.total:g} {self.unit} ({100 * self.done / self.total:.0f}%)" if self.total else \
            f"{done} {self.unit}"

    def _status(self, now: float) -> str:
        left, by_budget = self.time_left(now)
        parts = [self._count()] + ([self.info] if self.info else []) + [f"{duration(now - self.t0)} elapsed"]
        if left is not None:
            parts.append(f"~{duration(left)} left" + (" (time budget)" if by_budget else ""))
        return ", ".join(parts)

    def finish(self) -> None:
        info = f", {self.info}" if self.info else ""
        print(f"  {self.description}: finished {self._count()} in {duration(time.perf_counter() - self.t0)}{info}",
              file=progress_stream(), flush=True)
