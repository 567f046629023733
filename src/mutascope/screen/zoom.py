"""``mutascope zoom``: a screened tile refined into sub-blocks, down to single weights.

A tile's effect may sit in one weight, one row or column, or spread over
the whole block. Screening every element costs one mutant per weight;
hierarchical refinement (docs/methods.md, "Zoom") costs a few dozen:

* **Level 0** is the site's tile, screened again with the same kind.
* **Each level** cuts every region it follows in two along each axis it can
  (top/bottom and left/right halves: two to four exact mutants), keeps the
  axis whose stronger half carries more (rows on a tie), and follows that
  axis's halves whose ``logprob_drop`` is at least ``share`` times their
  parent's; of all followed halves of a level, only the ``beam`` strongest
  are kept. A region of at most ``floor`` weights is not cut; a region whose
  effect is not positive has nothing to follow.
* It stops when nothing is followed: at single weights, at the floor, or
  where no half carries the share (the effect is not in one half).

Each (site, kind, probe) is refined on its own, with that probe only, by the
batched engine (exact; :mod:`mutascope.engine.batched`). The model, probes
and decoding are the screen's, read back from the file; the rows go into
the file's ``zoom`` table a level at a time (:mod:`mutascope.store.zoom`),
so a rerun resumes. The refinement is a pure function of the measured
effects, and a level's mutants are always batched together, so a resumed
zoom writes the table an uninterrupted one writes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ..engine import make_engine
from ..errors import InputError, ResultsFileError
from ..model.subject import vocab_size
from ..plan.kinds import Kind
from ..plan.parse import parse_site
from ..plan.region import Region, region_mutation
from ..plan.tiles import TileGrid
from ..progress import Progress, Status
from ..store import MeasuredOutcomeRow, OutcomeRow, Store, open_results
from ..store.mutants import site_effects
from ..store.readback import ordered_probe_ids, tile_shape
from ..store.zoom import check_settings, read_zoom, write_level
from .readback import check_model, stored_probes

if TYPE_CHECKING:  # annotations only: the model module imports torch and transformers
    from ..model.subject import Subject


@dataclass(frozen=True)
class ZoomRule:
    """The refinement's parameters (module docstring; docs/methods.md, "Zoom")."""

    share: float = 0.5  # a half is followed if it carries at least this share of its parent's effect
    beam: int = 2  # at most this many regions followed per level
    floor: int = 1  # regions of at most this many weights are not cut

    def check(self) -> ZoomRule:
        if not 0 < self.share <= 1:
            raise InputError(f"--share must be in (0, 1], got {self.share:g}")
        if self.beam < 1:
            raise InputError(f"--beam must be at least 1, got {self.beam}")
        if self.floor < 1:
            raise InputError(f"--floor must be at least 1 weight, got {self.floor}")
        return self


@dataclass(frozen=True)
class Measured:
    """One region's refinement row: where it is, what it did, whether it was followed."""

    region: Region
    level: int
    parent: Region | None
    nsm: bool
    drop: float
    followed: bool


Measure = Callable[[list[Region]], list[tuple[bool, float]]]


def refine(root: Region, measure: Measure, rule: ZoomRule) -> Iterator[list[Measured]]:
    """The refinement of ``root`` (module docstring), one level's rows at a time.

    ``measure(regions)`` returns each region's (NSM call, effect); it is called
    once per level with that level's regions in a fixed order, so an engine
    batches the same mutants together on every run.
    """
    ((nsm, drop),) = measure([root])
    level_rows = [Measured(root, 0, None, nsm, drop, drop > 0 and root.size > rule.floor)]
    yield level_rows
    frontier = [m for m in level_rows if m.followed]
    level = 0
    while frontier:
        level += 1
        cuts = [(parent, parent.region.halves()) for parent in frontier]
        regions = [half for _, axes in cuts for pair in axes.values() for half in pair]
        results = dict(zip(regions, measure(regions)))
        rows: list[Measured] = []
        candidates: list[tuple[float, Region]] = []
        for parent, axes in cuts:
            best = max(axes, key=lambda a: (max(results[h][1] for h in axes[a]), a == "rows"))
            for axis, pair in axes.items():
                for half in pair:
                    nsm, drop = results[half]
                    rows.append(Measured(half, level, parent.region, nsm, drop, False))
                    if axis == best and drop > 0 and drop >= rule.share * parent.drop:
                        candidates.append((drop, half))
        kept = {half for _, half in sorted(candidates, key=lambda c: (-c[0], c[1]))[: rule.beam]}
        rows = [Measured(r.region, r.level, r.parent, r.nsm, r.drop, r.region in kept) for r in rows]
        yield rows
        frontier = [r for r in rows if r.followed and r.region.size > rule.floor]


def site_label(layer: int, matrix: str, row: int, col: int) -> str:
    return f"{layer}.{matrix}.{row}.{col}"


@dataclass
class ZoomSummary:
    """What :func:`zoom` did: the file, the sites, and mutants screened now and in all."""

    path: Path
    sites: list[str]
    kind: str
    probes: list[str]
    computed: int  # exact mutants (region x probe) screened by this run
    total: int  # zoom rows of these sites and kind
    seconds: float


def top_sites(con, n: int, kind: Kind) -> list[str]:
    """The ``n`` strongest sites of the screen: by their largest ``logprob_drop`` over probes,
    of ``kind`` where the screen has it, else of any kind; ties by site order."""
    if n < 1:
        raise InputError(f"--top must be at least 1, got {n}")
    frame = site_effects(con)
    if frame.empty or frame["logprob_drop"].isna().all():
        raise InputError("this screen has no effect sizes (reference engine): --top needs them; use --site")
    if (frame["kind"] == str(kind)).any():
        frame = frame[frame["kind"] == str(kind)]
    best = frame.groupby(["layer", "matrix", "row", "col"], as_index=False)["logprob_drop"].max()
    best = best.sort_values(
        ["logprob_drop", "layer", "matrix", "row", "col"], ascending=[False, True, True, True, True]
    ).head(n)
    return [site_label(*r) for r in best[["layer", "matrix", "row", "col"]].itertuples(index=False, name=None)]


def check_zoom(
    con, subject: Subject, sites: Sequence[str], probe_ids: Sequence[str], rule: ZoomRule, kind: Kind
) -> list[str]:
    """Every refusal before work: the rule, the probes, each site inside its matrix's tile grid,
    the rule a site was already zoomed with. Returns the probe ids to zoom (all if none named)."""
    rule.check()
    probes = ordered_probe_ids(con)
    unknown = [p for p in probe_ids if p not in probes]
    if unknown:
        raise InputError(f"unknown probe {unknown[0]!r}: this screen has {', '.join(probes)}")
    tile = tile_shape(con)
    anatomy = subject.anatomy
    for site in sites:
        layer, matrix, row, col = parse_site(site)
        if not 0 <= layer < anatomy.n_layers:
            raise InputError(
                f"site {site}: layer {layer} is out of range (the model has layers 0-{anatomy.n_layers - 1})"
            )
        if matrix not in anatomy.matrices:
            raise InputError(
                f"site {site}: matrix {matrix!r} does not exist in this model: it has {', '.join(anatomy.matrices)}"
            )
        grid = TileGrid(anatomy.ref(layer, matrix).shape, tile)
        if not (row < grid.n_rows and col < grid.n_cols):
            raise InputError(
                f"site {site}: tile ({row}, {col}) is outside layer {layer} {matrix}'s "
                f"{grid.n_rows}x{grid.n_cols} grid of {tile[0]}x{tile[1]} tiles"
            )
        check_settings(con, site_label(layer, matrix, row, col), str(kind), rule.share, rule.beam, rule.floor)
    return list(probe_ids) or probes


def zoom(
    path: str | os.PathLike,
    subject: Subject,
    *,
    sites: Sequence[str] = (),
    top: int | None = None,
    kind: str | Kind = "max",
    probe_ids: Sequence[str] = (),
    rule: ZoomRule = ZoomRule(),
    engine_options: dict | None = None,
    progress: Progress | None = None,
    status: Status | None = None,
) -> ZoomSummary:
    """Zoom ``sites`` (and the ``top`` strongest sites of the screen) of the results file at
    ``path`` with ``kind``, for each probe (all, or ``probe_ids``); module docstring."""
    start = time.perf_counter()
    path = Path(path)
    kind = Kind.parse(kind) if isinstance(kind, str) else kind
    if not sites and top is None:
        raise InputError("choose what to zoom: --site L.m.r.c (repeatable) or --top N (the strongest sites)")
    with open_results(path) as results:
        check_model(results.con, subject, path)
        chosen = [site_label(*parse_site(s)) for s in sites]
        if top is not None:
            chosen += [s for s in top_sites(results.con, top, kind) if s not in chosen]
        chosen = list(dict.fromkeys(chosen))
        probe_ids = check_zoom(results.con, subject, chosen, probe_ids, rule, kind)
        tile = tile_shape(results.con)
    engine = make_engine("batched", subject, **(engine_options or {}))
    computed = 0
    with Store.open_existing(path) as store:
        probes = {p.id: p for p in stored_probes(store.con, vocab_size(subject))}
        _check_wild_type(engine, probes, probe_ids, path, "zoomed")
        stored = read_zoom(store.con)
        jobs = [(s, pid) for s in chosen for pid in probe_ids]
        if progress:
            progress(0, len(jobs))
        for done, (site, pid) in enumerate(jobs):
            layer, matrix, row, col = parse_site(site)
            root = Region(*TileGrid(subject.anatomy.ref(layer, matrix).shape, tile).bounds(row, col))
            known = {
                Region(r.row, r.row + r.height, r.col, r.col + r.width): (bool(r.nsm), float(r.logprob_drop))
                for r in stored[
                    (stored["site"] == site) & (stored["kind"] == str(kind)) & (stored["probe_id"] == pid)
                ].itertuples(index=False)
            }
            value = None

            def measure(  # this site and probe's, bound now: it is called only within this iteration
                regions: list[Region], known=known, layer=layer, matrix=matrix, site=site, pid=pid
            ) -> list[tuple[bool, float]]:
                nonlocal computed, value
                missing = [r for r in regions if r not in known]
                if missing:
                    muts = []
                    for i, r in enumerate(missing):
                        m = region_mutation(subject.anatomy, layer, matrix, r, kind, tile, i, value)
                        value = m.value
                        muts.append(m)
                    if status:
                        status(f"zoom {site} {kind} {pid}: {len(missing)} regions of {missing[0].size} weights")
                    for m, rows in zip(muts, engine.run(muts, [probes[pid]], outputs="calls")):
                        row = rows[0]
                        if not isinstance(row, MeasuredOutcomeRow):  # the batched engine measures every row
                            raise TypeError(f"the {engine.name} engine reports no effect sizes")
                        known[Region(m.r0, m.r1, m.c0, m.c1)] = (row.nsm, float(row.logprob_drop))
                    computed += len(missing)
                return [known[r] for r in regions]

            fresh_before = set(known)
            for level in refine(root, measure, rule):
                new = [m for m in level if m.region not in fresh_before]
                fresh_before.update(m.region for m in level)
                if new:
                    write_level(
                        store.con,
                        (site, str(kind), rule.share, rule.beam, rule.floor),
                        _frame(site, layer, matrix, str(kind), pid, new),
                    )
            if progress:
                progress(done + 1, len(jobs))
        final = read_zoom(store.con)
    total = int(((final["site"].isin(chosen)) & (final["kind"] == str(kind))).sum())
    return ZoomSummary(path, chosen, str(kind), list(probe_ids), computed, total, time.perf_counter() - start)


def _check_wild_type(engine, probes: dict, probe_ids: Sequence[str], path: Path, what: str) -> None:
    for pid in probe_ids:
        if engine.generate(probes[pid]) != probes[pid].wt_tokens:
            raise ResultsFileError(
                f"{path}: the unmutated model's output for probe {pid!r} differs from the stored one; "
                f"the numerics of this machine differ from the screen's, so it cannot be {what} here"
            )


def region_outputs(
    path: str | os.PathLike, subject: Subject, site: str, kind: str | Kind, region: Region, probe_ids: Sequence[str]
) -> tuple[float, dict[str, OutcomeRow]]:
    """The output of one zoomed region's mutant for each of ``probe_ids``, decoded in full
    (the zoom table keeps calls and effects only): what ``mutascope show --region --decode``
    prints beside the wild type. Returns the value written and the rows by probe id."""
    path = Path(path)
    kind = Kind.parse(kind) if isinstance(kind, str) else kind
    layer, matrix, _, _ = parse_site(site)
    with open_results(path) as results:
        check_model(results.con, subject, path)
        tile = tile_shape(results.con)
        prepared = {p.id: p for p in stored_probes(results.con, vocab_size(subject))}
    engine = make_engine("batched", subject)
    _check_wild_type(engine, prepared, probe_ids, path, "decoded")
    mutation = region_mutation(subject.anatomy, layer, matrix, region, kind, tile)
    rows = next(iter(engine.run([mutation], [prepared[p] for p in probe_ids], outputs="full")))
    return float(mutation.value), {r.probe_id: r for r in rows}


def _frame(site: str, layer: int, matrix: str, kind: str, probe_id: str, rows: list[Measured]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "site": [site] * len(rows),
            "layer": pd.array([layer] * len(rows), dtype="int32"),
            "matrix": [matrix] * len(rows),
            "row": pd.array([m.region.r0 for m in rows], dtype="int32"),
            "col": pd.array([m.region.c0 for m in rows], dtype="int32"),
            "height": pd.array([m.region.height for m in rows], dtype="int32"),
            "width": pd.array([m.region.width for m in rows], dtype="int32"),
            "level": pd.array([m.level for m in rows], dtype="int32"),
            "parent": [None if m.parent is None else str(m.parent) for m in rows],
            "kind": [kind] * len(rows),
            "probe_id": [probe_id] * len(rows),
            "nsm": pd.array([m.nsm for m in rows], dtype="boolean"),
            "logprob_drop": [m.drop for m in rows],
            "followed": pd.array([m.followed for m in rows], dtype="boolean"),
        }
    )
