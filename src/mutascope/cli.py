"""The ``mutascope`` command line: registration of the commands (and ``--version``), and ``main()``.

Every command lives in :mod:`mutascope.commands` (one module each, a thin
shell over one library call). User mistakes (:class:`MutascopeError`) become
one line on stderr and exit code 2; Ctrl-C during a screen says how to resume
and exits with 130.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import typer

from . import interrupts
from .commands import COMMANDS
from .commands.common import err
from .errors import Interrupted, MutascopeError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Map what the parameters of a large language model do.",
)


def _version(shown: bool) -> None:
    """``mutascope --version``: the version (recorded in every results file), then exit."""
    if shown:
        from .version import __version__

        print(f"mutascope {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_version, help="Print mutascope's version and exit."
    ),
) -> None:
    """Map what the parameters of a large language model do."""


for _name in COMMANDS:
    app.command(_name)(getattr(importlib.import_module(f".commands.{_name}", __package__), _name))


def _click_errors() -> tuple[Any, type[BaseException]]:
    """The usage-error and abort exception types of the click that typer runs on
    (recent typer vendors its own copy; older ones use click itself: two classes of one name,
    so the usage error is typed loosely)."""
    try:
        exceptions = importlib.import_module("typer._click.exceptions")
    except ImportError:
        exceptions = importlib.import_module("click.exceptions")
    return exceptions.UsageError, typer.Abort


def _shown_help(exc: Exception) -> bool:
    """``mutascope`` alone prints the help (as a usage error, in recent typer): not a failure."""
    return type(exc).__name__ == "NoArgsIsHelpError"


def main() -> None:
    """Entry point: run the app, turning user errors into one line and exit 2.

    SIGTERM (what batch schedulers send first) is handled like Ctrl-C
    (:mod:`mutascope.interrupts`): commands that write results say how to resume
    (``commands.common.resumable``); any other interruption, even while importing or
    loading, is one line and exit 130. Once a signal arrived, whatever ends the
    command (an exception a half-finished import left behind, or a library that
    swallowed the interrupt and carried on) ends it as an interruption.
    """
    interrupts.install()
    usage_error, abort = _click_errors()
    try:
        code = app(standalone_mode=False)
        interrupts.raise_if_interrupted()
    except Interrupted:  # the command already printed how to resume
        interrupts.handled()
        sys.exit(130)
    except (KeyboardInterrupt, abort):
        code = 130
    except usage_error as exc:  # an unknown option, a missing argument: one line too
        if _shown_help(exc) and not interrupts.interrupted():
            sys.exit(0)
        if not interrupts.interrupted():
            where = exc.ctx.command_path if exc.ctx is not None else "mutascope"
            message = " ".join(exc.format_message().split())
            err.print(
                f"mutascope: error: {message} (see `{where} --help`)", markup=False, highlight=False, soft_wrap=True
            )
            sys.exit(2)
        code = 130
    except MutascopeError as exc:
        if not interrupts.interrupted():
            err.print(f"mutascope: error: {exc}", markup=False, highlight=False, soft_wrap=True)
            sys.exit(2)
        code = 130
    except Exception:
        if not interrupts.interrupted():
            raise
        code = 130
    if code == 130 or interrupts.interrupted():  # typer returns a Ctrl-C it caught as 130, without a word
        interrupts.handled()
        err.print("mutascope: interrupted", markup=False, highlight=False)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
