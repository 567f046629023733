"""The exceptions mutascope raises for what a user can cause, by cause.

Anything a user can cause (a bad path, an unknown matrix, an empty plan, a
malformed probe file, a results file of another screen) raises a subclass of
:class:`MutascopeError` with a one-line message that says what was wrong and
what to do. The command line prints it as one line on stderr and exits with
code 2; library callers can catch the base class and keep going, or catch one
cause::

    MutascopeError            the base: every error a user can cause
    ├── InputError            a bad option, path, probe file, plan, layer or matrix spec, setting
    ├── ResultsFileError      a results file that holds something else: another screen, plan,
    │   │                     probes or model, another or newer schema, not a mutascope file,
    │   │                     or not yet what the command needs (no outcomes, not analysed)
    │   └── FileInUseError    a file locked or being written by another process
    ├── ModelLoadError        a model that cannot be found or loaded, or whose family or
    │                         layout mutascope does not support
    ├── WorkerError           a worker of a distributed backend that died or disagrees
    │                         with the driver
    └── Interrupted           Ctrl-C or SIGTERM, after the command said how to resume

The messages are the interface for people; the classes are the interface for
programs (``except ResultsFileError:`` rather than matching message text).
"""


class MutascopeError(Exception):
    """A user-caused error with a one-line, actionable message (the base of every cause below)."""


class InputError(MutascopeError):
    """A bad option, path, probe file, plan, layer or matrix spec, or setting; fix the arguments."""


class ResultsFileError(MutascopeError):
    """A results (or analysis, export, superweights) file that holds something other than what
    the command needs: another screen, model, plan or probes, another schema, not a mutascope
    file at all, or a stage that has not been run on it yet."""


class FileInUseError(ResultsFileError):
    """A file locked or being written by another process (a running screen, a merge); retry later."""


class ModelLoadError(MutascopeError):
    """A model that cannot be found or loaded, or whose family or layout is not supported."""


class WorkerError(MutascopeError):
    """A worker of a distributed backend (Ray) that died too often or computes what the driver does not."""


class Interrupted(MutascopeError):
    """Ctrl-C or SIGTERM after the command already said, in one line, how to resume.

    A :class:`MutascopeError` (an interruption is one of the causes a program may
    want to catch), but the command line catches it *before* the base class, so it
    keeps its own exit code (130) and prints nothing more. Not a
    ``KeyboardInterrupt``: the command line (and typer, which turns a bare Ctrl-C
    into a silent exit 130) must let it through untouched.
    """
