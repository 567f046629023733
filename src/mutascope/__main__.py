"""``mutascope`` (the console script) and ``python -m mutascope``.

Ctrl-C or SIGTERM while the command line itself is still importing (typer,
rich) would otherwise print a traceback; here it is one line and exit 130,
like an interruption anywhere later (see :func:`mutascope.cli.main`).
"""

import sys


def main() -> None:
    try:
        import signal

        signal.signal(signal.SIGTERM, signal.default_int_handler)
        from mutascope.cli import main as cli_main
    except KeyboardInterrupt:
        print("mutascope: interrupted", file=sys.stderr)
        sys.exit(130)
    cli_main()


if __name__ == "__main__":
    main()
