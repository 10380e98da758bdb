"""Rich progress bars that go quiet for scripts (quiet=True or a non-terminal in CI)."""
from __future__ import annotations

import contextlib
from typing import Iterator


@contextlib.contextmanager
def progress_bar(description: str, total: float | None, quiet: bool = False) -> Iterator["_Bar"]:
    """A progress bar with `advance(n)` and `set(text)`; does nothing when quiet."""
    if quiet:
        yield _Bar(None, None)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[info]}"), transient=False) as prog:
        tid = prog.add_task(description, total=total, info="")
        yield _Bar(prog, tid)


class _Bar:
    def __init__(self, prog, tid):
        self._prog, self._tid = prog, tid

    def advance(self, n: float = 1) -> None:
        if self._prog is not None:
            self._prog.advance(self._tid, n)

    def set(self, info: str) -> None:
        if self._prog is not None:
            self._prog.update(self._tid, info=info)
