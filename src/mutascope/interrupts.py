"""Ctrl-C and SIGTERM for the command line: one line and exit 130, whenever they arrive.

Three things broke a plain ``KeyboardInterrupt`` (issue 27, item 1), and each
has its remedy here:

* **A signal in the middle of an import** leaves half-initialized modules
  behind (numpy's then fails with an ``AttributeError`` or a
  ``RecursionError``), and some packages swallow it (torch's import does).
  The handler therefore only records a signal that arrives while an import is
  running, and delivers it as ``KeyboardInterrupt`` once no import is on the
  stack (polled with ``SIGALRM`` every 50 ms). A second signal is delivered at
  once.
* **A library may swallow the exception** anyway, and when the signal strikes
  inside an object's ``__del__`` (garbage collection during a load), Python
  swallows it itself and prints "Exception ignored in ..." with a traceback.
  Those reports of our own ``KeyboardInterrupt`` are silenced (an
  ``unraisablehook``); any other stays as Python prints it. Every signal is recorded in
  :data:`SIGNALS`; :func:`raise_if_interrupted` raises it again at the
  command line's checkpoints (after the imports, after loading, at every
  progress report), and the command line treats any failure after a signal
  as the interruption.
* **The exit status.** After a ``KeyboardInterrupt`` went through some
  C-level entry points, CPython's ``Py_RunMain`` turns any exit status into
  death by ``SIGINT`` (-2), even after ``sys.exit(130)``. The console script
  leaves with :func:`exit_interrupted` instead: exit handlers run, streams
  flushed, then ``os._exit(130)``.

The first milliseconds of the interpreter, before Python has its own handler
and while it finds the package, are outside any program's reach: there the
signal's default action applies. ``$MUTASCOPE_STAGE_FILE``, when set, gets
one line per stage reached (``handlers``, ``cli``, ``arguments`` (checked, before
torch is imported), ``loading``, ``loaded``, ``progress``, ``chunk`` (the first one
done in this run)), so tests send signals at states the process reports instead of
after fixed sleeps.

Only the command line installs these handlers; ``import mutascope`` does not.
"""

from __future__ import annotations

import os
import sys

# Not ``from typing import TYPE_CHECKING`` (the cost this module avoids); type checkers read this spelling.
TYPE_CHECKING = False
if TYPE_CHECKING:  # typeshed describes ``signal``; ``_signal`` has the same functions and constants
    import signal
else:
    try:  # the C module: ``signal`` imports enum, which costs the first window milliseconds
        import _signal as signal
    except ImportError:  # pragma: no cover
        import signal

# Interruption signals received by this process, in order.
SIGNALS: list[int] = []

_POLL_S = 0.05
_state = {"installed": False, "pending": False}


def _in_import(frame) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def _on_signal(signum, frame) -> None:
    first = not SIGNALS
    SIGNALS.append(signum)
    if first and hasattr(signal, "setitimer") and _in_import(frame):
        _state["pending"] = True  # delivered by _poll once the import is done
        signal.signal(signal.SIGALRM, _poll)  # only now: SIGALRM stays free otherwise
        signal.setitimer(signal.ITIMER_REAL, _POLL_S)
        return
    _state["pending"] = False
    raise KeyboardInterrupt


def _poll(signum, frame) -> None:
    if not _state["pending"]:
        return
    if _in_import(frame):
        signal.setitimer(signal.ITIMER_REAL, _POLL_S)
        return
    _state["pending"] = False
    raise KeyboardInterrupt


def _unraisable(report) -> None:
    """Drop Python's report of our KeyboardInterrupt swallowed in a ``__del__``; it is raised again
    at the next checkpoint (:func:`raise_if_interrupted`)."""
    if SIGNALS and isinstance(report.exc_value, KeyboardInterrupt):
        return
    sys.__unraisablehook__(report)


def install() -> None:
    """Handle SIGINT and SIGTERM as above (idempotent; the main thread only)."""
    if _state["installed"]:
        return
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    sys.unraisablehook = _unraisable
    _state["installed"] = True


def interrupted() -> bool:
    """Whether a Ctrl-C or SIGTERM arrived."""
    return bool(SIGNALS)


def handled() -> None:
    """The interruption is being handled: a delivery still waiting for an import is called off
    (it would otherwise strike the exit path itself)."""
    _state["pending"] = False
    if hasattr(signal, "setitimer"):
        signal.setitimer(signal.ITIMER_REAL, 0)


def raise_if_interrupted() -> None:
    """Raise the KeyboardInterrupt of a Ctrl-C or SIGTERM that a library swallowed or that
    still waits for an import to finish."""
    if SIGNALS:
        handled()
        raise KeyboardInterrupt


def stage(name: str) -> None:
    """Report a stage to ``$MUTASCOPE_STAGE_FILE`` (a test hook; nothing when unset)."""
    path = os.environ.get("MUTASCOPE_STAGE_FILE")
    if path:
        with open(path, "a") as f:
            f.write(name + "\n")


def exit_interrupted(code: int = 130) -> None:
    """Leave the process with ``code`` (see the module docstring for why not ``sys.exit``)."""
    import atexit

    handled()
    for sig in (signal.SIGINT, signal.SIGTERM):  # a further signal no longer interrupts the exit
        signal.signal(sig, signal.SIG_IGN)
    try:
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)
