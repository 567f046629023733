"""mutascope: map what the parameters of a large language model do.

The public API, in the order data flows::

    import mutascope as ms
    subject = ms.load_model()                      # bundled SmolLM2-135M-Instruct
    probes = ms.resolve_probes(["drosophila"], subject, max_new_tokens=32)
    spec = ms.PlanSpec.parse(layers="0-1", matrices="down", kinds="max,min")
    ms.Screen(subject, probes, spec, "runs/demo.duckdb").run()
    results = ms.open_results("runs/demo.duckdb")  # tidy tables as DataFrames
"""

__version__ = "0.1.0"

from .anatomy import MATRICES, Anatomy, MatrixRef, anatomy_of  # noqa: E402
from .errors import MutascopeError  # noqa: E402
from .mutation import Kind, Mutation, TileGrid  # noqa: E402
from .plan import Plan, PlanSpec, build_plan  # noqa: E402
from .probe_specs import resolve_probes  # noqa: E402
from .probes import BUILTIN_PROBES, Decoding, Probe, load_probe_file  # noqa: E402
from .screen import Screen, ScreenSummary  # noqa: E402
from .store import Results, open_results  # noqa: E402
from .subject import DEFAULT_MODEL, Subject, load_model  # noqa: E402

__all__ = [
    "BUILTIN_PROBES",
    "DEFAULT_MODEL",
    "MATRICES",
    "Anatomy",
    "Decoding",
    "Kind",
    "MatrixRef",
    "Mutation",
    "MutascopeError",
    "Plan",
    "PlanSpec",
    "Probe",
    "Results",
    "Screen",
    "ScreenSummary",
    "Subject",
    "TileGrid",
    "anatomy_of",
    "build_plan",
    "load_model",
    "load_probe_file",
    "open_results",
    "resolve_probes",
]
