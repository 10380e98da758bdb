"""Command line: thin modules, one per command group, that parse arguments, call the library and print.

Every module of this package that defines `app` (a typer.Typer) has its commands and groups mounted on the main
app, so a new command group is one new module.
"""
from __future__ import annotations

import importlib
import pkgutil
import sys

import typer

from ..errors import EdgeslimError
from .common import STATE

app = typer.Typer(
    name="edgeslim", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Make a transformer small, fast and measured for edge devices.",
)


@app.callback()
def main_options(quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress (bars or lines).")) -> None:
    """edgeslim: profile, distill, prune, quantize, export and validate transformers for edge devices."""
    STATE["quiet"] = quiet


def mount_command_groups() -> None:
    """Mount the commands and sub-groups of every module of this package on the main app (once)."""
    if getattr(app, "_edgeslim_mounted", False):
        return
    for info in pkgutil.iter_modules(__path__, prefix=__name__ + "."):
        sub = getattr(importlib.import_module(info.name), "app", None)
        if isinstance(sub, typer.Typer) and sub is not app:
            app.registered_commands.extend(sub.registered_commands)
            app.registered_groups.extend(sub.registered_groups)
    app._edgeslim_mounted = True  # type: ignore[attr-defined]


def main(argv: list[str] | None = None) -> int:
    """Entry point: EdgeslimError and usage errors exit 2 with a one-line reason."""
    from ..progress import progress_to_stderr

    mount_command_groups()
    # a command printing --json owns stdout: its progress (bars, step and heartbeat lines) goes to stderr
    progress_to_stderr("--json" in (sys.argv[1:] if argv is None else argv))
    try:
        code = app(args=argv, standalone_mode=False)   # click returns a typer.Exit's code here instead of raising
        if isinstance(code, int) and code:
            return code
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 130
    except typer.TyperException as exc:  # usage errors: unknown option, missing argument, bad value
        show = getattr(exc, "show", None)
        if show:
            show()
        else:
            typer.echo(f"edgeslim: error: {exc}", err=True)
        return 2
    except EdgeslimError as exc:
        typer.echo(f"edgeslim: error: {exc}", err=True)
        return 2
    finally:
        progress_to_stderr(False)       # process-wide: the next caller (a test, the library) starts on stdout
    return 0


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
