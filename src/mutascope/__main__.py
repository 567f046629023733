"""``mutascope`` (the console script) and ``python -m mutascope``.

The signal handlers of :mod:`mutascope.interrupts` are installed before
anything else is imported, so Ctrl-C or SIGTERM while the command line itself
is still importing (typer, rich, the commands) is one line and exit 130 like
an interruption anywhere later (see :func:`mutascope.cli.main`).
"""

import sys

from mutascope import interrupts

interrupts.install()
interrupts.stage("handlers")


def main() -> None:
    try:
        from mutascope.cli import main as cli_main

        interrupts.stage("cli")
        interrupts.raise_if_interrupted()
        cli_main()
    except SystemExit:
        if interrupts.interrupted():
            interrupts.exit_interrupted(130)
        raise
    except BaseException:
        if not interrupts.interrupted():
            raise
        interrupts.handled()
        print("mutascope: interrupted", file=sys.stderr)
        interrupts.exit_interrupted(130)


if __name__ == "__main__":
    main()
