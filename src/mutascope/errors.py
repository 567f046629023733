"""The one exception type for mistakes a user can make.

Anything a user can cause (a bad path, an unknown matrix, an empty plan, a
malformed probe file) raises :class:`MutascopeError` with a message that says
what was wrong and what to do. The CLI prints it as one line on stderr and
exits with code 2; library callers can catch it and keep going.
"""


class MutascopeError(Exception):
    """A user-caused error with a one-line, actionable message."""
