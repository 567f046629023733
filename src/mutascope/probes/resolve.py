"""Turn what a user types after ``--probe`` into probes.

A spec is a built-in id (``drosophila``; ``drosophila@chat`` with the
model's chat template), a probe file (``.yaml``, ``.yml``,
``.jsonl``), ``mmlu21:SUBJECT`` (the paper's 21-question set, selected by
running the unmutated model) or ``mmlu:SUBJECT[:N]`` (the first N questions,
all kept). Multiple-choice specs read an MMLU-format directory.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from .files import PROBE_FILE_SUFFIXES, load_probe_file
from .mmlu import choice_probes, select_mmlu21
from .probe import BUILTIN_PROBES, Decoding, Probe, builtin_probe

if TYPE_CHECKING:  # the model layer imports torch; resolving a probe file needs none
    from ..model.subject import Subject


def _mmlu_dir(mmlu_dir: str | os.PathLike | None) -> Path:
    directory = mmlu_dir or os.environ.get("MUTASCOPE_MMLU_DIR")
    if not directory:
        raise InputError("multiple-choice probes need an MMLU-format directory: pass --mmlu-dir DIR")
    return Path(directory)


def _wt_answer(subject: Subject):
    """A function giving the unmutated model's one-token answer to a probe."""
    from ..model.subject import decode_text
    from .prepared import generate, prepare

    def answer(probe: Probe) -> str:
        return decode_text(subject, generate(subject, prepare(subject, probe)))

    return answer


def resolve_probes(
    specs: Sequence[str],
    subject: Subject | None = None,
    *,
    mmlu_dir: str | os.PathLike | None = None,
    max_new_tokens: int | None = None,
    decoding: Decoding | None = None,
) -> list[Probe]:
    """Resolve probe specs in order; overrides apply to free-text probes only.

    ``subject`` is needed only for ``mmlu21:`` (its selection depends on what
    the unmutated model answers).
    """
    if max_new_tokens is not None and max_new_tokens < 1:
        raise InputError("--max-new-tokens must be at least 1")
    probes: list[Probe] = []
    for spec in specs:
        if spec.startswith(("mmlu21:", "mmlu:")):
            head, _, rest = spec.partition(":")
            subject_name, _, limit = rest.partition(":")
            if not subject_name:
                raise InputError(f"probe {spec!r}: name a subject, e.g. {head}:international_law")
            if head == "mmlu21":
                if subject is None:
                    raise InputError("mmlu21 probes need the model to select their questions")
                candidates = choice_probes(_mmlu_dir(mmlu_dir), subject_name)
                probes += select_mmlu21(candidates, _wt_answer(subject))
            else:
                try:
                    n = int(limit) if limit else None
                except ValueError:
                    raise InputError(f"probe {spec!r}: {limit!r} is not a question count") from None
                probes += choice_probes(_mmlu_dir(mmlu_dir), subject_name, limit=n)
            continue
        if spec in BUILTIN_PROBES:
            found = [builtin_probe(spec)]
        elif spec.lower().endswith(PROBE_FILE_SUFFIXES):
            if not Path(spec).exists():
                raise InputError(f"probe file not found: {spec}")
            found = load_probe_file(spec)
        elif "@" in spec:
            found = [builtin_probe(spec)]  # drosophila@chat, or a one-line error for another suffix
        else:
            builtin_probe(spec)  # raises with the list of valid ids
            continue
        for probe in found:
            changes: dict[str, Any] = {}
            if max_new_tokens is not None:
                changes["max_new_tokens"] = max_new_tokens
            if decoding is not None:
                changes["decoding"] = decoding
            probes.append(dataclasses.replace(probe, **changes) if changes else probe)
    ids = [p.id for p in probes]
    dup = next((i for i in ids if ids.count(i) > 1), None)
    if dup is not None:
        raise InputError(f"probe id {dup!r} appears twice; give each probe once")
    return probes


def count_probes(
    specs: Sequence[str],
    *,
    mmlu_dir: str | os.PathLike | None = None,
    max_new_tokens: int | None = None,
    decoding: Decoding | None = None,
) -> int:
    """How many probes ``specs`` give, without a model: an ``mmlu21:`` set counts as its 21
    questions (which 21 depends on what the unmutated model answers)."""
    n_mmlu21 = sum(s.startswith("mmlu21:") for s in specs)
    rest = [s for s in specs if not s.startswith("mmlu21:")]
    return 21 * n_mmlu21 + len(
        resolve_probes(rest, None, mmlu_dir=mmlu_dir, max_new_tokens=max_new_tokens, decoding=decoding)
    )
