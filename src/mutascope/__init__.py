"""mutascope: map what the parameters of a large language model do.

The public API, in the order data flows::

    import mutascope as ms
    subject = ms.load_model()                      # bundled SmolLM2-135M-Instruct
    probes = ms.resolve_probes(["drosophila"], subject, max_new_tokens=32)
    spec = ms.PlanSpec.parse(layers="0-1", matrices="down", kinds="max,min")
    ms.Screen(subject, probes, spec, "runs/demo.duckdb").run()
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

import importlib
import os
from typing import TYPE_CHECKING

os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    "MATRICES": "anatomy", "Anatomy": "anatomy", "MatrixRef": "anatomy", "anatomy_of": "anatomy",
    "MutascopeError": "errors",
    "Kind": "mutation", "Mutation": "mutation", "TileGrid": "mutation",
    "Plan": "plan", "PlanSpec": "plan", "build_plan": "plan",
    "resolve_probes": "probe_specs",
    "BUILTIN_PROBES": "probes", "Decoding": "probes", "Probe": "probes", "load_probe_file": "probes",
    "Screen": "screen", "ScreenSummary": "screen",
    "Results": "store", "open_results": "store",
    "DEFAULT_MODEL": "subject", "Subject": "subject", "load_model": "subject",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mutascope' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # for type checkers and editors: the eager imports
    from .anatomy import MATRICES, Anatomy, MatrixRef, anatomy_of  # noqa: F401
    from .errors import MutascopeError  # noqa: F401
    from .mutation import Kind, Mutation, TileGrid  # noqa: F401
    from .plan import Plan, PlanSpec, build_plan  # noqa: F401
    from .probe_specs import resolve_probes  # noqa: F401
    from .probes import BUILTIN_PROBES, Decoding, Probe, load_probe_file  # noqa: F401
    from .screen import Screen, ScreenSummary  # noqa: F401
    from .store import Results, open_results  # noqa: F401
    from .subject import DEFAULT_MODEL, Subject, load_model  # noqa: F401
