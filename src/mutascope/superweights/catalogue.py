"""Known super-weight coordinates, as data, and the ``--check`` comparison.

Entries are ``(layer, row, col)`` of ``layers[L].mlp.down_proj.weight[row, col]``.
The paper's entries are from arXiv 2411.07191 (docs/methods.md, "2. Super weights");
the SmolLM2 entry was measured by this project (``mutascope superweights``
with default settings: the two super weights of the unmodified model,
iteration 0). Models are matched on the basename of the id (the part after
the last ``/``, or a file/directory name), case-insensitively, ignoring a
trailing ``-hf`` (the transformers conversions of Llama-2 and OLMo).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model.subject import model_key as catalogue_key  # the lookup key of a model id
from .ablate import Coord

PAPER = "arXiv 2411.07191"
PROJECT = "mutascope (measured)"

CATALOGUE: dict[str, tuple[str, tuple[Coord, ...]]] = {
    "llama-7b": (PAPER, ((2, 3968, 7003),)),
    "llama-13b": (PAPER, ((2, 2231, 2278), (2, 2231, 6939))),
    "llama-30b": (PAPER, ((3, 5633, 12817), (3, 5633, 17439), (10, 5633, 14386))),
    "llama-2-7b": (PAPER, ((1, 2533, 7890),)),
    "llama-2-13b": (PAPER, ((3, 4743, 7678),)),
    "mistral-7b-v0.1": (PAPER, ((1, 2070, 7310),)),
    "olmo-1b-0724": (PAPER, ((1, 1764, 1710), (2, 1764, 8041))),
    "olmo-7b-0724": (PAPER, ((1, 269, 7467), (2, 269, 8275), (7, 269, 453), (24, 269, 2300))),
    "phi-3-mini-4k-instruct": (
        PAPER,
        ((2, 525, 808), (2, 1693, 808), (2, 1113, 808), (4, 525, 2723), (4, 1113, 2723), (4, 1693, 2723)),
    ),
    "meta-llama-3-8b": (PAPER, ((1, 788, 2427), (1, 1384, 2427), (1, 4062, 2427))),
    "smollm2-135m-instruct": (PROJECT, ((2, 507, 90), (11, 507, 1229))),
}


def known(model_id: str) -> tuple[str, tuple[Coord, ...]] | None:
    """(source, coordinates) catalogued for ``model_id``, or None."""
    return CATALOGUE.get(catalogue_key(model_id))


@dataclass(frozen=True)
class CheckResult:
    """What was found against what the catalogue lists."""

    model_key: str
    source: str
    expected: tuple[Coord, ...]
    matched: tuple[Coord, ...]
    missing: tuple[Coord, ...]
    extra: tuple[Coord, ...]

    @property
    def ok(self) -> bool:
        """Every catalogued super weight was found (extra finds are reported, not failures)."""
        return not self.missing


def check(model_id: str, found: list[Coord]) -> CheckResult | None:
    """Compare ``found`` with the catalogue entry of ``model_id``; None when there is none."""
    entry = known(model_id)
    if entry is None:
        return None
    source, expected = entry
    got = {(layer, row, col) for layer, row, col in found}
    return CheckResult(
        model_key=catalogue_key(model_id),
        source=source,
        expected=expected,
        matched=tuple(c for c in expected if c in got),
        missing=tuple(c for c in expected if c not in got),
        extra=tuple(sorted(got - set(expected))),
    )
