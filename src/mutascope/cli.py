"""The ``mutascope`` command line: registration of the commands, and ``main()``.

Every command lives in :mod:`mutascope.commands` (one module each, a thin
shell over one library call). User mistakes (:class:`MutascopeError`) become
one line on stderr and exit code 2; Ctrl-C during a screen says how to resume
and exits with 130.
"""

from __future__ import annotations

import importlib
import signal
import sys

import typer

from .commands import COMMANDS
from .commands.common import SIGNALS, err
from .errors import Interrupted, MutascopeError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Map what the parameters of a large language model do.",
)
for _name in COMMANDS:
    app.command(_name)(getattr(importlib.import_module(f".commands.{_name}", __package__), _name))


def _click_errors() -> tuple[type, type]:
    """The usage-error and abort exception types of the click that typer runs on
    (recent typer vendors its own copy; older ones use click itself)."""
    try:
        from typer._click.exceptions import UsageError
    except ImportError:
        from click.exceptions import UsageError
    return UsageError, typer.Abort


def _shown_help(exc: Exception) -> bool:
    """``mutascope`` alone prints the help (as a usage error, in recent typer): not a failure."""
    return type(exc).__name__ == "NoArgsIsHelpError"


def main() -> None:
    """Entry point: run the app, turning user errors into one line and exit 2.

    SIGTERM (what batch schedulers send first) is handled like Ctrl-C: commands
    that write results say how to resume (``commands.common.resumable``); any
    other interruption, even while importing or loading, is one line and exit 130.
    """
    def interrupt(signum, frame):
        SIGNALS.append(signum)  # kept: a library may swallow the exception (see commands.common)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
    usage_error, abort = _click_errors()
    try:
        code = app(standalone_mode=False)
    except usage_error as exc:  # an unknown option, a missing argument: one line too
        if _shown_help(exc):
            sys.exit(0)
        where = exc.ctx.command_path if exc.ctx is not None else "mutascope"
        message = " ".join(exc.format_message().split())
        err.print(f"mutascope: error: {message} (see `{where} --help`)", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except abort:
        err.print("mutascope: interrupted", markup=False, highlight=False)
        sys.exit(130)
    except MutascopeError as exc:
        err.print(f"mutascope: error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except Interrupted:  # the command already printed how to resume
        sys.exit(130)
    except KeyboardInterrupt:
        code = 130
    if code == 130:  # typer returns a Ctrl-C it caught as exit code 130, without a word
        err.print("mutascope: interrupted", markup=False, highlight=False)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
