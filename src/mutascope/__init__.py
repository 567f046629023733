"""mutascope: map what the parameters of a large language model do.

The public API, in the order data flows::

    import mutascope as ms
    subject = ms.load_model()                      # bundled SmolLM2-135M-Instruct
    config = ms.ScreenConfig(
        probes=ms.ProbeSet(("drosophila",), max_new_tokens=32),
        plan=ms.PlanSpec.parse(layers="0-1", matrices="down", kinds="max,min"),
        out="runs/demo.duckdb",
    )                                              # one object per concern, checked once
    ms.Screen(subject, config).run()
    results = ms.open_results("runs/demo.duckdb")  # tidy tables as DataFrames

Names are imported on first use (PEP 562), so ``import mutascope.cli`` and
``mutascope --help`` do not pay for importing torch, and Ctrl-C during
start-up reaches the command line's handler.

**Numerics independent of the thread count.** Intel MKL, which torch uses
for float32 matrix products on x86, may split a product differently with a
different number of threads, and then its last bits differ: effect sizes of
a screen run with ``--threads 2`` differed from ``--threads 1`` in hundreds
of mutants (up to 2.6e-4 nats). MKL's strict conditional numerical
reproducibility mode (``MKL_CBWR=AUTO,STRICT``) makes every product
bit-identical whatever the thread count; it must be set before MKL starts,
so it is set here, before anything imports torch (an ``MKL_CBWR`` of the
user's own is kept). Import mutascope before torch, or set the variable
yourself, to keep the guarantee in your own scripts.
"""

from __future__ import annotations

import os

# Not ``from typing import TYPE_CHECKING``: importing typing costs tens of milliseconds at the
# start of every command, before the command line's signal handlers are in place
# (mutascope.interrupts); type checkers read this spelling too.
TYPE_CHECKING = False

os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

from .version import __version__  # noqa: E402, F401 (after MKL_CBWR is set: on purpose)

# public name -> the module that defines it
_EXPORTS = {
    "MATRICES": "model.anatomy",
    "Anatomy": "model.anatomy",
    "MatrixRef": "model.anatomy",
    "anatomy_of": "model.anatomy",
    "MutascopeError": "errors",
    "InputError": "errors",
    "ResultsFileError": "errors",
    "FileInUseError": "errors",
    "ModelLoadError": "errors",
    "WorkerError": "errors",
    "Interrupted": "errors",
    "Kind": "plan.kinds",
    "Mutation": "plan.mutation",
    "TileGrid": "plan.tiles",
    "Plan": "plan.build",
    "PlanSpec": "plan.build",
    "build_plan": "plan.build",
    "resolve_probes": "probes.resolve",
    "BUILTIN_PROBES": "probes.probe",
    "Decoding": "probes.probe",
    "Probe": "probes.probe",
    "load_probe_file": "probes.files",
    "Screen": "screen.screen",
    "ScreenSummary": "screen.screen",
    "ScreenConfig": "screen.config",
    "ModelSource": "screen.config",
    "ProbeSet": "screen.config",
    "EngineChoice": "screen.config",
    "Adaptive": "screen.config",
    "Placement": "backends.base",
    "Results": "store.reader",
    "open_results": "store.reader",
    "DEFAULT_MODEL": "model.subject",
    "Subject": "model.subject",
    "load_model": "model.subject",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mutascope' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # for type checkers and editors: the eager imports
    from .backends.base import Placement  # noqa: F401
    from .errors import (  # noqa: F401
        FileInUseError,
        InputError,
        Interrupted,
        ModelLoadError,
        MutascopeError,
        ResultsFileError,
        WorkerError,
    )
    from .model.anatomy import MATRICES, Anatomy, MatrixRef, anatomy_of  # noqa: F401
    from .model.subject import DEFAULT_MODEL, Subject, load_model  # noqa: F401
    from .plan.build import Plan, PlanSpec, build_plan  # noqa: F401
    from .plan.kinds import Kind  # noqa: F401
    from .plan.mutation import Mutation  # noqa: F401
    from .plan.tiles import TileGrid  # noqa: F401
    from .probes.files import load_probe_file  # noqa: F401
    from .probes.probe import BUILTIN_PROBES, Decoding, Probe  # noqa: F401
    from .probes.resolve import resolve_probes  # noqa: F401
    from .screen.config import Adaptive, EngineChoice, ModelSource, ProbeSet, ScreenConfig  # noqa: F401
    from .screen.screen import Screen, ScreenSummary  # noqa: F401
    from .store.reader import Results, open_results  # noqa: F401
