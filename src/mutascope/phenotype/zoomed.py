"""One zoomed region up close: what ``mutascope show FILE --site L.M.R.C --region R0:R1,C0:C1`` prints.

A tile's mutant is shown from its stored outputs (:mod:`.show`); a region of
the ``zoom`` table (:mod:`mutascope.screen.zoom`) has only its call and
effect stored, so :func:`show_region` gathers those, per probe: the level of
the refinement it was screened at, its effect beside the tile's, whether it
was followed, and the path of regions from the tile down to it. Its output
text is computed only when asked (``--decode``: the screen's model decodes
that one mutant) and then shown beside the wild type as a tile's is.

A region is named as ``mutascope zoom`` prints it, ``[507:508,90:91]``
(element bounds of the matrix, ends exclusive), or ``507,90`` for one weight;
the site is the zoomed tile holding it.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError, MutascopeError, ResultsFileError
from ..plan.kinds import Kind
from ..plan.parse import parse_site
from ..plan.region import Region
from ..store import open_results, read_zoom
from ..store.readback import ordered_probe_ids, wt_texts
from .categories import categorize, first_word
from .show import DIFF_MARK, _column, _common_prefix, _side_by_side

__all__ = ["RegionProbe", "RegionView", "render_region", "show_region", "with_outputs"]


@dataclass(frozen=True)
class RegionProbe:
    """One probe's zoom row for the region, and its output once decoded."""

    probe_id: str
    level: int
    nsm: bool
    drop: float  # the region's logprob_drop
    tile_drop: float  # the zoomed tile's (level 0) on the same probe
    followed: bool
    path: tuple[tuple[str, float], ...]  # (region, logprob_drop) from the tile down to this region
    wt_text: str
    text: str | None = None  # None: not decoded (the zoom table keeps no outputs)
    divergence: int | None = None

    @property
    def share(self) -> float | None:
        return self.drop / self.tile_drop if self.tile_drop > 0 else None


@dataclass(frozen=True)
class RegionView:
    """Everything :func:`render_region` prints about one zoomed region."""

    path: Path
    site: str
    layer: int
    matrix: str
    kind: str
    region: Region
    tile: Region
    probes: list[RegionProbe] = field(default_factory=list)
    value: float | None = None  # the value written, known once decoded
    decoded: bool = False


def _label(r) -> str:
    return f"[{r.row}:{r.row + r.height},{r.col}:{r.col + r.width}]"


def _missing(zoom, path: Path, site: str, kind: str, region: Region) -> MutascopeError:
    """The one-line refusal for a region that is not in the zoom table, saying what is."""
    if zoom.empty:
        return ResultsFileError(f"{path} has no zoom table: run `mutascope zoom {path} --site {site}` first")
    at_site = zoom[zoom["site"] == site]
    if at_site.empty:
        sites = sorted(set(zoom["site"]))
        more = f" (and {len(sites) - 8} more)" if len(sites) > 8 else ""
        return InputError(f"site {site} was not zoomed in {path}; zoomed sites: {', '.join(sites[:8])}{more}")
    kinds = sorted(set(at_site["kind"]))
    if kind not in kinds:
        return InputError(
            f"site {site} was not zoomed with {kind} in {path}; it was with {', '.join(kinds)} (pass --kind)"
        )
    rows = at_site[at_site["kind"] == kind]
    deepest = rows[rows["level"] == rows["level"].max()]
    followed = deepest[deepest["followed"].astype(bool)]
    pick = (followed if len(followed) else deepest).iloc[0]
    return InputError(
        f"region {region} of site {site} ({kind}) is not in the zoom table of {path}; "
        f"it has {len(rows.drop_duplicates(['row', 'col', 'height', 'width']))} regions down to "
        f"level {int(pick['level'])}, e.g. {_label(pick)}"
    )


def show_region(path: str | os.PathLike, site: str, kind: str, region: str | Region) -> RegionView:
    """Gather one zoomed region's rows (every probe it was zoomed on) from the file at ``path``."""
    path = Path(path)
    layer, matrix, row, col = parse_site(site)
    site = f"{layer}.{matrix}.{row}.{col}"
    kind_s = str(Kind.parse(str(kind)))
    region = region if isinstance(region, Region) else Region.parse(region)
    with open_results(path) as r:
        zoom = read_zoom(r.con)
        wt = wt_texts(r.con)
        order = ordered_probe_ids(r.con)
    rows = zoom[(zoom["site"] == site) & (zoom["kind"] == kind_s)] if len(zoom) else zoom
    here = (
        rows[
            (rows["row"] == region.r0)
            & (rows["col"] == region.c0)
            & (rows["height"] == region.height)
            & (rows["width"] == region.width)
        ]
        if len(rows)
        else rows
    )
    if here.empty:
        raise _missing(zoom, path, site, kind_s, region)
    root = rows[rows["level"] == 0].iloc[0]
    tile = Region(
        int(root["row"]), int(root["row"] + root["height"]), int(root["col"]), int(root["col"] + root["width"])
    )
    probes = []
    for h in sorted(here.itertuples(index=False), key=lambda h: order.index(h.probe_id)):
        mine = rows[rows["probe_id"] == h.probe_id]
        by_label = {_label(x): x for x in mine.itertuples(index=False)}
        chain, at = [], h
        while at is not None:  # up the refinement to the tile
            chain.append((_label(at), float(at.logprob_drop)))
            at = by_label.get(at.parent) if isinstance(at.parent, str) else None
        tile_drop = float(mine[mine["level"] == 0]["logprob_drop"].iloc[0])
        probes.append(
            RegionProbe(
                h.probe_id,
                int(h.level),
                bool(h.nsm),
                float(h.logprob_drop),
                tile_drop,
                bool(h.followed),
                tuple(reversed(chain)),
                wt[h.probe_id],
            )
        )
    return RegionView(path, site, layer, matrix, kind_s, region, tile, probes)


def with_outputs(view: RegionView, value: float, outputs: dict) -> RegionView:
    """The view with each probe's decoded output (``OutcomeRow``s by probe id, from
    :func:`mutascope.screen.zoom.region_outputs`) and the value written."""
    probes = [
        dataclasses.replace(p, text=outputs[p.probe_id].text, divergence=outputs[p.probe_id].divergence)
        for p in view.probes
    ]
    return dataclasses.replace(view, probes=probes, value=value, decoded=True)


def render_region(view: RegionView, width: int = 100) -> str:
    """Plain text for a terminal: the region, then each probe's zoom facts and, once decoded,
    its output beside the wild type."""
    reg, tile = view.region, view.tile
    value = "" if view.value is None else f" (value {view.value:.6g})"
    lines = [
        f"zoomed region {reg} of layer {view.layer} {view.matrix} in {view.path.name}: {reg.height} x "
        f"{reg.width} = {reg.size} weights inside tile {view.site} {tile}, kind {view.kind}{value}"
    ]
    if not view.decoded:
        lines.append(
            "outputs are not stored for zoomed regions: add --decode to compute this mutant's output "
            "with the screen's model"
        )
    for p in view.probes:
        share = "" if p.share is None else f" ({p.share:.0%} of the tile's {p.tile_drop:.4g})"
        lines += [
            "",
            f"probe {p.probe_id}: {'NSM' if p.nsm else 'silent'}, logprob_drop {p.drop:.4g}{share}, "
            f"level {p.level}, {'followed' if p.followed else 'not followed'}",
        ]
        lines.append("  path: " + " > ".join(f"{label} {drop:.3g}" for label, drop in p.path))
        if not view.decoded:
            continue
        if p.divergence is None:
            lines.append("  output identical to WT")
            lines += ["  " + line for line in _column(p.wt_text, None, width - 2)]
            continue
        if p.text is None:
            lines.append(f"  diverges at generated token {p.divergence}; output not decoded")
            continue
        at = _common_prefix(p.wt_text, p.text)
        word = first_word(p.text)
        lines.append(
            f"  diverges at generated token {p.divergence}; category {categorize(p.text)} "
            f"(WT: {categorize(p.wt_text)}); first word {'none' if word is None else repr(word)}"
        )
        lines.append(
            f"  {DIFF_MARK} marks where the texts start to differ"
            if at is not None
            else "  (different tokens that decode to the same text)"
        )
        lines += _side_by_side(p.wt_text, p.text, at, width)
    return "\n".join(lines) + "\n"
