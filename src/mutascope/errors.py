"""The one exception type for mistakes a user can make.

Anything a user can cause (a bad path, an unknown matrix, an empty plan, a
malformed probe file) raises :class:`MutascopeError` with a message that says
what was wrong and what to do. The CLI prints it as one line on stderr and
exits with code 2; library callers can catch it and keep going.
"""


class MutascopeError(Exception):
    """A user-caused error with a one-line, actionable message."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM after the command already said, in one line, how to resume.

    Not a ``KeyboardInterrupt``: the command line (and typer, which turns a bare
    Ctrl-C into a silent exit 130) must let it through untouched.
    """
