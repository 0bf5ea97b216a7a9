"""The `practicum` command.

Each subsystem defines its commands in `practicum/<subsystem>/commands.py` with a
`register(app)` function; this file only wires them together, so subsystems stay apart.
Command modules import heavy libraries (torch, diffusers) inside the command bodies, which
keeps `practicum --help` fast.
"""

from __future__ import annotations

import errno
import importlib
import inspect
import sys

import typer
from rich.markup import escape

from practicum.tracking import track_option

try:  # typer >= 0.2x vendors click; older releases raise click's own exceptions
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover
    from click import exceptions as click_exceptions

from practicum import __version__
from practicum.errors import PracticumError
from practicum.heap import steady_heap
from practicum.log import console, setup_logging

COMMAND_MODULES = (
    "practicum.practice.commands",  # study, practice
    "practicum.diffusion.commands",  # generate, diffusion train
    "practicum.distill.commands",  # distill
    "practicum.select.commands",  # rate, score, select
    "practicum.select.curate_commands",  # dedup, label-issues, cover
    "practicum.scaling.commands",  # fit, compare
    "practicum.scaling.theory_commands",  # theory
)

app = typer.Typer(
    name="practicum",
    help="Make the data a model practises on: Deliberate Practice, MGD3 distillation, "
    "Alchemist selection and data scaling laws.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"practicum {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or info logs."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logs."),
) -> None:
    setup_logging(verbose=verbose, quiet=quiet)
    steady_heap()


def _register_all() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)
    _add_track_option(app)


def _add_track_option(group: typer.Typer) -> None:
    """`--track mlflow|tensorboard` on every command that writes a run folder (has --out)."""
    for info in group.registered_commands:
        if "out" in inspect.signature(info.callback).parameters:
            info.callback = track_option(info.callback)
    for sub in group.registered_groups:
        _add_track_option(sub.typer_instance)


_register_all()


# OSErrors the user can fix (space, permissions, a path in the way): one line, not a traceback.
USER_OS_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR,
                  errno.EISDIR, errno.EEXIST, errno.ENAMETOOLONG, errno.EMFILE}


def _fail(message: str, code: int = 2) -> None:
    message = " ".join(str(message).split())  # one line whatever the source wrote
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True, markup=True)
    sys.exit(code)


def _os_message(exc: OSError) -> tuple[str, str]:
    where = f" ({exc.filename})" if exc.filename else ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"no space left on the device{where}; files already written are complete",
                "free some space and rerun with --resume")
    return (f"{exc.strerror or exc}{where}", "check the path and its permissions")


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors print one line and exit 2, never a traceback.

    typer runs in non-standalone mode so that its usage errors (a bad flag value) come out
    here too, and are printed as one line like a PracticumError rather than as a box.
    """
    try:
        code = app(args=argv, prog_name="practicum", standalone_mode=False)
    except PracticumError as exc:
        _fail(_escape(str(exc)))
    except click_exceptions.NoArgsIsHelpError as exc:
        print(exc.format_message())  # the help text: the user asked for nothing
        sys.exit(exc.exit_code)
    except click_exceptions.ClickException as exc:
        where = f" (see `{exc.ctx.command_path} --help`)" if getattr(exc, "ctx", None) is not None else ""
        _fail(_escape(exc.format_message()) + where, exc.exit_code or 2)
    except typer.Abort:
        _fail("aborted", 1)
    except KeyboardInterrupt:
        _interrupted()
    except OSError as exc:
        if exc.errno not in USER_OS_ERRORS:
            raise
        problem, fix = _os_message(exc)
        _fail(_escape(f"{problem} ({fix})"))
    if code == 130:
        _interrupted()
    if isinstance(code, int) and code != 0:
        sys.exit(code)


def _interrupted() -> None:
    console.print("interrupted: rerun with --resume to continue from what was finished (a run stopped before "
                  "its first result is removed, so --resume starts it afresh)")
    sys.exit(130)


def _escape(text: str) -> str:
    return escape(text)
