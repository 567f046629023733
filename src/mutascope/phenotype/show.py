"""One mutant, up close: what ``mutascope show FILE --site L.M.R.C --kind K`` prints.

:func:`show_mutant` gathers everything known about one mutant into plain
dataclasses (so a notebook or a test can use them too) and
:func:`render_show` turns that into plain text, WT and mutant side by side.

Edit distance, category, first word and choice scores are cheap and are
computed here from the stored outputs, so ``show`` works on a screen that was
never phenotyped; similarity, severity and the malignant flag need the
embedding model and are read from the ``phenotypes`` table when
:func:`~mutascope.phenotype.store.phenotype_results` has been run.

The difference is marked where the texts start to differ: the results file
keeps token ids but no tokenizer, so the mark sits at the first differing
*character*, which is where the divergence step's token begins unless the two
diverging tokens share leading characters (" the" / " then"); the step itself
is printed alongside.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError, ResultsFileError
from ..plan.kinds import Kind
from ..plan.parse import parse_site
from ..store import open_results
from ..store.adaptive import mutant_estimates
from ..store.mutants import find_mutation, kinds_at, mutant_outcomes, screen_extent
from ..store.phenotypes import mutant_phenotypes
from ..store.schema import UNGROUPED
from .categories import categorize, first_word
from .choice import ChoiceScore, score_choices
from .similarity import token_edit_distance

__all__ = ["DIFF_MARK", "MutantView", "ProbeView", "parse_site", "render_show", "show_mutant"]

DIFF_MARK = ">>"


@dataclass(frozen=True)
class ProbeView:
    """One probe's outcome for the mutant, next to WT's."""

    probe_id: str
    kind: str
    group: str | None
    nsm: bool
    divergence: int | None  # first generated token that differs (None: silent)
    wt_text: str
    text: str | None  # None: an NSM of a calls-only screen whose output is not filled yet
    diff_at: int | None  # first differing character of text vs wt_text (None: same text)
    edit_distance: int | None
    category: str | None
    wt_category: str
    first_word: str | None
    similarity: float | None = None  # None: not phenotyped yet, or a choice probe
    severity: str | None = None
    malignant: bool | None = None
    key: str | None = None  # choice probes: the correct letter


@dataclass(frozen=True)
class MutantView:
    """Everything :func:`render_show` prints about one mutant."""

    path: Path
    mutation_id: int
    layer: int
    matrix: str
    row: int
    col: int
    kind: str
    value: float
    elements: tuple[int, int, int, int]  # r0, r1, c0, c1
    probes: list[ProbeView] = field(default_factory=list)
    scores: list[ChoiceScore] = field(default_factory=list)
    phenotyped: bool = False  # similarity was computed for this mutant


def _ranges(values: list[int]) -> str:
    values = sorted(set(values))
    out = []
    for _, pairs in itertools.groupby(enumerate(values), lambda p: p[1] - p[0]):
        run = [v for _, v in pairs]
        out.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
    return ",".join(out)


def _find_mutation(con, path: Path, site: str, kind: str) -> tuple:
    layer, matrix, row, col = parse_site(site)
    found = find_mutation(con, layer, matrix, row, col, kind)
    if found is not None:
        return found
    kinds_here = kinds_at(con, layer, matrix, row, col)
    if kinds_here:
        raise InputError(f"{path} has no {kind} mutation at site {site}; kinds screened there: {', '.join(kinds_here)}")
    layers, matrices, rows, cols = screen_extent(con, layer, matrix)
    where = f"layers {_ranges(layers)}, matrices {','.join(matrices)}"
    if rows:
        where += f"; {layer}.{matrix} has rows {_ranges(rows)}, cols {_ranges(cols)}"
    raise InputError(f"site {site} is not in the screen in {path} ({where})")


def _common_prefix(a: str, b: str) -> int | None:
    if a == b:
        return None
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def show_mutant(path: str | os.PathLike, site: str, kind: str = "max") -> MutantView:
    """Gather one mutant's outcomes and phenotypes; ``site`` is ``LAYER.MATRIX.ROW.COL``."""
    path = Path(path)
    kind_s = str(Kind.parse(str(kind)))
    with open_results(path) as r:
        mid, layer, matrix, row, col, kind_s, value, r0, r1, c0, c1 = _find_mutation(r.con, path, site, kind_s)
        rows = mutant_outcomes(r.con, mid)
        estimated = mutant_estimates(r.con, mid) if not rows else []
        if estimated:  # an adaptive screen left it unmeasured: its estimate, never shown as a measurement
            values = "; ".join(f"{p} {e:.3g} (95% CI {lo:.3g} to {hi:.3g})" for p, e, lo, hi, _ in estimated)
            raise ResultsFileError(
                f"the {kind_s} mutation at site {site} was not measured by the adaptive screen in {path}; "
                f"its estimated logprob_drop (table estimates): {values}; a larger --budget would measure it"
            )
        if not rows:
            raise ResultsFileError(
                f"the {kind_s} mutation at site {site} has no outcomes yet in {path} "
                "(the screen stopped before it); rerun the screen command to resume it"
            )
        stored = mutant_phenotypes(r.con, mid)
    probes = []
    groups: dict[str, list[tuple[str, str, str]]] = {}
    for pid, pkind, group, answer, wt_tokens, wt_text, nsm, divergence, tokens, text in rows:
        sim, severity, malignant = stored.get(pid, (None, None, None))
        if tokens is None:  # a calls-only NSM: its output is computed by `mutascope fill`
            probes.append(
                ProbeView(
                    probe_id=pid,
                    kind=pkind,
                    group=group,
                    nsm=True,
                    divergence=divergence,
                    wt_text=wt_text,
                    text=None,
                    diff_at=None,
                    edit_distance=None,
                    category=None,
                    wt_category=categorize(wt_text),
                    first_word=None,
                    key=answer,
                )
            )
            continue
        probes.append(
            ProbeView(
                probe_id=pid,
                kind=pkind,
                group=group,
                nsm=bool(nsm),
                divergence=divergence,
                wt_text=wt_text,
                text=text,
                diff_at=_common_prefix(wt_text, text),
                edit_distance=token_edit_distance(tokens, wt_tokens),
                category=categorize(text),
                wt_category=categorize(wt_text),
                first_word=first_word(text),
                similarity=sim,
                severity=severity,
                malignant=malignant,
                key=answer,
            )
        )
        if pkind == "choice":
            groups.setdefault(group or UNGROUPED, []).append((answer, wt_text, text))
    scores = [
        score_choices(g, [a for a, _, _ in qs], [w for _, w, _ in qs], [t for _, _, t in qs])
        for g, qs in groups.items()
    ]
    return MutantView(
        path=path,
        mutation_id=mid,
        layer=layer,
        matrix=matrix,
        row=row,
        col=col,
        kind=kind_s,
        value=value,
        elements=(r0, r1, c0, c1),
        probes=probes,
        scores=scores,
        phenotyped=bool(stored),
    )


# -- rendering ----------------------------------------------------------------


def _visible(text: str) -> str:
    """Control characters escaped so a garbled output cannot upset the terminal."""
    out = []
    for c in text:
        if c == "\n" or c.isprintable():
            out.append(c)
        elif c == "\t":
            out.append("    ")
        else:
            out.append(repr(c)[1:-1])
    return "".join(out)


def _wrap(line: str, width: int) -> list[str]:
    """Cut a line into pieces of at most ``width``, after a space when one is near, keeping every character."""
    pieces = []
    while len(line) > width:
        cut = line.rfind(" ", width // 2, width)
        cut = width if cut < 0 else cut + 1
        pieces.append(line[:cut])
        line = line[cut:]
    return pieces + [line]


def _column(text: str, diff_at: int | None, width: int) -> list[str]:
    if not text:
        return ["(empty)"]
    if diff_at is not None:
        text = text[:diff_at] + DIFF_MARK + text[diff_at:]
    rows = []
    for line in _visible(text).split("\n"):
        rows += _wrap(line, width)
    return rows


def _side_by_side(left: str, right: str, diff_at: int | None, width: int) -> list[str]:
    col = max(20, (width - 5) // 2)
    a, b = _column(left, diff_at, col), _column(right, diff_at, col)
    lines = [f"  {'wild type':<{col}} | mutant", f"  {'-' * col}-+-{'-' * col}"]
    for x, y in itertools.zip_longest(a, b, fillvalue=""):
        lines.append(f"  {x:<{col}} | {y}".rstrip())
    return lines


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)


def _text_probe(p: ProbeView, width: int, fill_hint: str = "") -> list[str]:
    if p.text is None:
        return [
            f"probe {p.probe_id} ({p.kind}): NSM, diverges at generated token {p.divergence}",
            f"  output not filled yet (a calls-only screen): run {fill_hint or '`mutascope fill FILE --site ...`'}",
            "  wild type:",
        ] + ["  " + line for line in _column(p.wt_text, None, width - 2)]
    if not p.nsm:
        head = f"probe {p.probe_id} ({p.kind}): silent, output identical to WT"
        lines = [head, f"  category {p.category}"]
        return lines + ["  " + line for line in _column(p.text, None, width - 2)]
    lines = [f"probe {p.probe_id} ({p.kind}): NSM, diverges at generated token {p.divergence}"]
    if p.similarity is None:
        sim = "similarity not computed (run `mutascope phenotype FILE`)"
    else:
        sim = f"similarity {p.similarity:.3f} (severity {p.severity})"
    word = f'"{p.first_word}"' if p.first_word is not None else "none"
    facts = [
        sim,
        f"edit distance {p.edit_distance} tokens",
        f"category {p.category} (WT: {p.wt_category})",
        f"first word {word}",
    ]
    if p.malignant is not None:
        facts.append(f"malignant: {'yes' if p.malignant else 'no'}")
    lines.append("  " + "; ".join(facts))
    if p.diff_at is None:
        lines.append("  (different tokens that decode to the same text)")
    else:
        lines.append(f"  {DIFF_MARK} marks where the texts start to differ")
    return lines + _side_by_side(p.wt_text, p.text, p.diff_at, width)


def _choice_set(score: ChoiceScore, probes: list[ProbeView]) -> list[str]:
    wt_score = f"{score.n_wt_right}|0"
    lines = [
        f"probe set {score.group} ({score.n_questions} questions): score {score.score} "
        f"({score.total}/{score.n_questions} correct; WT {wt_score}), "
        f"answers changed: {'yes' if score.changed else 'no'}"
    ]
    id_width = max(len("question"), *(len(p.probe_id) for p in probes))
    lines.append(f"  {'question':<{id_width}}  key  WT  mutant")
    for p, wt, mut in zip(probes, score.wt_answers, score.answers):
        flag = "changed" if wt != mut else ""
        lines.append(f"  {p.probe_id:<{id_width}}  {p.key or '?':<3}  {wt:<2}  {mut:<6}  {flag}".rstrip())
    return lines


def render_show(view: MutantView, width: int = 100) -> str:
    """Plain text for a terminal: a header, then each text probe side by side, then choice sets."""
    r0, r1, c0, c1 = view.elements
    lines = [
        f"mutation {view.mutation_id} in {view.path.name}: layer {view.layer} {view.matrix}, "
        f"tile row {view.row} col {view.col} (elements [{r0}:{r1}, {c0}:{c1}]), "
        f"kind {view.kind} (value {view.value:.6g})",
    ]
    if not view.phenotyped and any(p.kind != "choice" and p.text is not None for p in view.probes):
        lines.append("similarity not computed for this mutant: run `mutascope phenotype FILE` first")
    hint = f"`mutascope fill {view.path} --site {view.layer}.{view.matrix}.{view.row}.{view.col}`"
    for p in view.probes:
        if p.kind != "choice":
            lines.append("")
            lines += _text_probe(p, width, hint)
    for score in view.scores:
        members = [p for p in view.probes if p.kind == "choice" and (p.group or UNGROUPED) == score.group]
        lines.append("")
        lines += _choice_set(score, members)
    return "\n".join(lines) + "\n"
