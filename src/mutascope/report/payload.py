"""What the report needs from a results file, read lean, and its compact JSON.

The site frame (:func:`mutascope.analysis.site_frame`) carries no output
texts; a full-genome screen of SmolLM2 has ~52k mutants per probe, and the
report needs each *distinct* output once, so :func:`build_payload` keeps the
texts per probe keyed by phenotype id.

The payload the page's script reads (one JSON object):

* ``matrices``: one entry per mutated (layer, matrix) with its tile grid
  (``rows`` x ``cols``, the extent of mutated tiles) and ``offset`` of its
  first tile in one global, row-major tile order;
* ``ids[probe][kind]``: base64 of a little-endian unsigned array (``width``
  bytes each) with, for every tile in that order, the mutant's phenotype id
  for that probe (0 = the WT output, i.e. silent) or ``none`` where the tile
  was not mutated with that kind. Two bytes a tile and kind is ~100 KB per
  probe and kind for a full SmolLM2 genome, decoded by ``atob`` in
  milliseconds; a JSON list of objects would be tens of MB;
* ``texts[probe][id]``: ``[text, divergence, similarity, category, severity]``
  for each distinct output kept (the most frequent ``max_texts``, each cut to
  ``max_chars``); ``omitted[probe]`` counts the distinct outputs left out;
* ``counts[probe][kind]``: NSMs per matrix, and ``mutants[kind]`` per matrix,
  for the overview and the matrix list; ``filled[probe]`` counts the NSMs
  whose output is stored and all NSMs (a calls-only screen stores none
  until ``mutascope fill``); an unfilled NSM's id is ``unfilled``;
* ``effects[probe][kind]``: base64 of little-endian float16, the effect size
  of every tile in the same order (NaN: not mutated or not measured), for
  the effect colour mode and the tooltip. Two bytes a tile like the ids;
  float16 keeps three significant digits, which is what a colour and a
  tooltip show (values beyond float16's 65504 are clipped there).
  ``effect_scale[probe]`` is ``[floor, top]`` of the log colour scale,
  shared by every matrix and kind of the probe: the top is the largest
  effect, the floor the 1st percentile of the positive ones (smaller
  positive effects are drawn at the floor; zero and negative ones, where
  the mutant made the WT output no less likely, get their own colour);
* ``saturated[probe]``: per matrix, ``"high"``/``"low"`` where the NSM rate
  of max/min mutants is above 0.9 / below 0.1 (else ``""``), ``nsm_rate``
  the rate itself;
* ``estimated[probe][kind]`` (only for an adaptive screen's file, which has the
  table ``estimates``): base64 of little-endian float16 like ``effects``, the
  surrogate's estimated effect of every tile the screen did not measure (NaN
  elsewhere). The page draws these tiles apart from measured ones (lighter
  and hatched, with their own legend entry), never as measurements;
* ``marks``: axes marked by super weights (``analysis_superweight_tiles``):
  matrix index, axis, tile index and why;
* ``zoom``: one entry per zoomed (site, kind, probe) of the file's ``zoom``
  table (``mutascope zoom``; empty without one): the tile's bounds, its
  effect, the carrier and verdict and every region screened
  (:func:`.zoom.zoom_payload`).
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd

from ..analysis.frame import site_frame
from ..model.anatomy import MATRICES as MATRIX_ORDER  # attention before MLP, the paper's order
from ..plan.kinds import BASE_KINDS
from ..store import read_zoom
from ..store.adaptive import estimated_tiles
from ..store.readback import tile_shape
from ..store.report import (
    choice_answers,
    matrix_extents,
    output_measures,
    output_texts,
    report_probes,
    screened_kinds,
    text_outcomes,
)
from ..store.schema import UNGROUPED
from .zoom import zoom_payload

UNFILLED_PH = -2  # in the outcome table: an NSM whose output is not stored (calls-only screen)
FLOAT16_MAX = 65504.0


def matrix_sort_key(matrix: str) -> tuple[int, str]:
    """Attention before MLP, in the paper's order; unknown names last, alphabetically."""
    return (MATRIX_ORDER.index(matrix), "") if matrix in MATRIX_ORDER else (len(MATRIX_ORDER), matrix)


def kind_order(kinds) -> list[str]:
    """``max, min, zero`` first (the paper's order), then other kinds sorted."""
    kinds = set(kinds)
    return [k for k in BASE_KINDS if k in kinds] + sorted(kinds - set(BASE_KINDS))


@dataclass
class ProbeInfo:
    """A probe of the report: a text probe, or a multiple-choice set shown as one."""

    probe_id: str
    kind: str  # "text" or "choice"
    prompt: str
    wt: str
    decoding: str
    max_new_tokens: int
    n_questions: int = 1


def probe_infos(con: duckdb.DuckDBPyConnection) -> list[ProbeInfo]:
    """Probes in screen order; a choice set appears once, where its first question was."""
    rows = report_probes(con)
    out: list[ProbeInfo] = []
    sets: dict[str, ProbeInfo] = {}
    for pid, kind, text, wt, decoding, max_new, group, _key in rows:
        if kind != "choice":
            out.append(ProbeInfo(pid, "text", text, wt or "", decoding, max_new))
            continue
        name = group or UNGROUPED
        if name not in sets:
            sets[name] = ProbeInfo(name, "choice", "", "", decoding, max_new, 0)
            out.append(sets[name])
        info = sets[name]
        info.n_questions += 1
        info.wt = (info.wt + " " if info.wt else "") + _answer(wt)
        info.prompt = f"{info.n_questions} multiple-choice questions (set {name})"
    return out


def _answer(text: str | None) -> str:
    """A choice output as shown in an answer string: stripped, never empty."""
    text = (text or "").strip()
    return text.replace(" ", "_") if text else "∅"


def _clip(text: str, max_chars: int) -> str:
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


def _encode(values: np.ndarray, dtype) -> str:
    return base64.b64encode(np.ascontiguousarray(values, dtype=dtype).tobytes()).decode("ascii")


def _num(x):
    """A JSON-safe number: NaN and None become null."""
    if x is None:
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else round(f, 4)


def _str(x):
    return None if x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA else str(x)


def _outcome_table(con: duckdb.DuckDBPyConnection, infos: list[ProbeInfo]) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """One row per (mutation, report probe): site, kind, phenotype id.

    Choice sets get their ids here: each distinct answer string of a set is
    one phenotype (the WT string is 0). Returns the table and, per set, its
    answer strings indexed by id.
    """
    text = text_outcomes(con, UNFILLED_PH)
    if not any(i.kind == "choice" for i in infos):
        return text, {}
    answers = choice_answers(con)
    parts, strings = [text], {}
    wt = {i.probe_id: i.wt for i in infos if i.kind == "choice"}
    for name, g in answers.groupby("probe_id", sort=False):
        # the WT answer string is id 0; the others numbered by first appearance in plan order
        g = g.sort_values("mutation_id")
        unfilled = g["unfilled"].fillna(False).to_numpy(dtype=bool)
        answers = g["answers"].where(~unfilled, None)  # an answer string with a question not filled is unknown
        codes, uniques = pd.factorize(pd.concat([pd.Series([wt[name]]), answers], ignore_index=True))
        g = g.drop(columns=["answers", "unfilled"]).assign(ph=np.where(unfilled, UNFILLED_PH, codes[1:]))
        parts.append(g)
        strings[name] = [str(u) for u in uniques]
    return pd.concat(parts, ignore_index=True), strings


def build_payload(
    con: duckdb.DuckDBPyConnection,
    infos: list[ProbeInfo],
    *,
    max_texts: int = 2000,
    max_chars: int = 600,
    frame: pd.DataFrame | None = None,
    marks: pd.DataFrame | None = None,
) -> dict:
    """The compact JSON object the report's script draws from (see module docstring).

    ``frame`` is the screen's site frame (read here when not given); it
    carries the effect sizes. ``marks`` is the ``analysis_superweight_tiles``
    table, when ``mutascope analyze --superweights`` has run.
    """
    table, choice_strings = _outcome_table(con, infos)
    extents, offsets, n_tiles = _matrix_layout(con)
    kinds = kind_order(screened_kinds(con))
    ids = _IdCodes.fitting(table)
    mat, tile = _tile_index(table, extents, offsets)
    table = table.assign(_mat=mat, _tile=tile)
    maps = _phenotype_maps(table, infos, kinds, len(extents), n_tiles, ids)
    texts, omitted = _kept_texts(con, table, infos, max_texts, max_chars, choice_strings)
    return {
        "tile": list(tile_shape(con)),
        "kinds": kinds,
        "probes": _probe_entries(infos, max_chars),
        "matrices": _matrix_entries(extents, offsets),
        "n_tiles": n_tiles,
        "width": ids.width,
        "none": ids.none,
        "unknown": ids.unknown,
        "unfilled": ids.unfilled,
        "filled": maps.filled,
        "ids": maps.ids,
        "counts": maps.counts,
        "mutants": maps.mutants,
        "texts": texts,
        "omitted": omitted,
        "max_chars": max_chars,
        "max_texts": max_texts,
        **effect_payload(frame if frame is not None else site_frame(con), infos, kinds, extents, offsets, n_tiles),
        "estimated": estimated_payload(con, infos, kinds, extents, offsets, n_tiles),
        "marks": _marks(marks, extents),
        "zoom": zoom_payload(read_zoom(con)),
    }


def _matrix_layout(con: duckdb.DuckDBPyConnection) -> tuple[pd.DataFrame, np.ndarray, int]:
    """The mutated matrices in the page's order (layer, then attention before MLP) with their
    extents, the ``offset`` of each one's first tile in the global row-major tile order, and the
    number of tiles in all."""
    extents = matrix_extents(con)
    extents = extents.assign(_key=extents["matrix"].map(matrix_sort_key)).sort_values(["layer", "_key"])
    extents = extents.drop(columns="_key").reset_index(drop=True)
    sizes = (extents["nrows"] * extents["ncols"]).to_numpy(dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    return extents, offsets, int(sizes.sum())


@dataclass(frozen=True)
class _IdCodes:
    """How phenotype ids are encoded: ``width`` bytes each, little-endian, the top three values
    reserved for a tile not mutated with the kind (``none``), an NSM without an id (``unknown``)
    and an NSM whose output is not stored (``unfilled``)."""

    width: int
    dtype: str
    none: int

    @classmethod
    def fitting(cls, table: pd.DataFrame) -> _IdCodes:
        """Two bytes a tile unless some id needs four."""
        max_ph = int(table["ph"].max()) if len(table) else 0
        if max_ph < 65533:  # three ids reserved: none, unknown, unfilled
            return cls(2, "<u2", 65535)
        return cls(4, "<u4", 4294967295)

    @property
    def unknown(self) -> int:
        return self.none - 1

    @property
    def unfilled(self) -> int:
        return self.none - 2

    def encode(self, ph: np.ndarray, tiles: np.ndarray, n_tiles: int) -> str:
        """Base64 of every tile's code: ``ph`` at ``tiles``, ``none`` elsewhere."""
        arr = np.full(n_tiles, self.none, dtype=np.int64)
        arr[tiles] = np.where(ph == UNFILLED_PH, self.unfilled, np.where(ph < 0, self.unknown, ph))
        return _encode(arr, self.dtype)


@dataclass
class _PhenotypeMaps:
    """Per report probe: ``ids[probe][kind]`` (encoded), ``counts`` and ``mutants`` per matrix
    and kind, ``filled`` (NSMs with an output stored, all NSMs)."""

    ids: dict[str, dict[str, str]] = field(default_factory=dict)
    counts: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    mutants: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    filled: dict[str, list[int]] = field(default_factory=dict)


def _phenotype_maps(
    table: pd.DataFrame, infos: list[ProbeInfo], kinds: list[str], n_matrices: int, n_tiles: int, codes: _IdCodes
) -> _PhenotypeMaps:
    """Each probe's phenotype id of every tile per kind, and its NSM and mutant counts per matrix."""
    maps = _PhenotypeMaps()
    for info in infos:
        p = table[table["probe_id"] == info.probe_id]
        maps.ids[info.probe_id], maps.counts[info.probe_id], maps.mutants[info.probe_id] = {}, {}, {}
        for kind in kinds:
            pk = p[p["kind"] == kind]
            ph = pk["ph"].to_numpy(dtype=np.int64)
            maps.ids[info.probe_id][kind] = codes.encode(ph, pk["_tile"].to_numpy(dtype=np.int64), n_tiles)
            mats = pk["_mat"].to_numpy(dtype=np.int64)
            maps.counts[info.probe_id][kind] = np.bincount(mats[ph != 0], minlength=n_matrices).tolist()
            maps.mutants[info.probe_id][kind] = np.bincount(mats, minlength=n_matrices).tolist()
        ph_all = p["ph"].to_numpy(dtype=np.int64)
        maps.filled[info.probe_id] = [int(np.sum((ph_all != 0) & (ph_all != UNFILLED_PH))), int(np.sum(ph_all != 0))]
    return maps


def _kept_texts(
    con: duckdb.DuckDBPyConnection,
    table: pd.DataFrame,
    infos: list[ProbeInfo],
    max_texts: int,
    max_chars: int,
    choice_strings: dict[str, list[str]],
) -> tuple[dict[str, dict[str, list]], dict[str, int]]:
    """``texts[probe]`` for each probe's ``max_texts`` most frequent distinct outputs (and WT's), and
    ``omitted[probe]``, how many distinct outputs were left out."""
    texts: dict[str, dict[str, list]] = {}
    omitted: dict[str, int] = {}
    meta = output_measures(con)
    for info in infos:
        p = table[table["probe_id"] == info.probe_id]
        freq = p.loc[p["ph"] > 0, "ph"].value_counts()
        keep = set(freq.index[:max_texts].tolist()) | {0}
        omitted[info.probe_id] = int(max(0, len(freq) - max_texts))
        texts[info.probe_id] = _texts_for(con, info, keep, meta, max_chars, choice_strings)
    return texts, omitted


def _probe_entries(infos: list[ProbeInfo], max_chars: int) -> list[dict]:
    return [
        {
            "id": i.probe_id,
            "kind": i.kind,
            "prompt": _clip(i.prompt, max_chars),
            "wt": _clip(i.wt, max_chars),
            "n_questions": i.n_questions,
        }
        for i in infos
    ]


def _matrix_entries(extents: pd.DataFrame, offsets: np.ndarray) -> list[dict]:
    return [
        {
            "layer": int(r.layer),
            "matrix": str(r.matrix),
            "rows": int(r.nrows),
            "cols": int(r.ncols),
            "height": int(r.height),
            "width": int(r.width),
            "offset": int(o),
        }
        for r, o in zip(extents.itertuples(), offsets)
    ]


def _matrix_index(table: pd.DataFrame, extents: pd.DataFrame) -> np.ndarray:
    """Row index into ``extents`` of each outcome's (layer, matrix), vectorised."""
    key = extents[["layer", "matrix"]].assign(_i=np.arange(len(extents)))
    merged = table[["layer", "matrix"]].merge(key, on=["layer", "matrix"], how="left")
    return merged["_i"].to_numpy(dtype=np.int64)


def _tile_index(table: pd.DataFrame, extents: pd.DataFrame, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Matrix index and global tile index of each row of ``table`` (layer, matrix, row, col)."""
    mat = _matrix_index(table, extents)
    ncols = extents["ncols"].to_numpy(dtype=np.int64)
    tile = offsets[mat] + table["row"].to_numpy(dtype=np.int64) * ncols[mat] + table["col"].to_numpy(dtype=np.int64)
    return mat, tile


def effect_scale(effects: np.ndarray) -> list[float] | None:
    """``[floor, top]`` of a probe's log colour scale (module docstring), None without positive effects."""
    positive = effects[np.isfinite(effects) & (effects > 0)]
    if not len(positive):
        return None
    top = float(min(positive.max(), FLOAT16_MAX))
    floor = float(min(np.quantile(positive, 0.01), top))
    if not floor < top:
        floor = top / 10
    return [floor, top]


def effect_payload(
    frame: pd.DataFrame,
    infos: list[ProbeInfo],
    kinds: list[str],
    extents: pd.DataFrame,
    offsets: np.ndarray,
    n_tiles: int,
) -> dict:
    """``effects``, ``effect_scale`` and ``saturated`` (module docstring) from the site frame."""
    from ..analysis.saturation import saturation

    effects: dict[str, dict[str, str]] = {}
    scales: dict[str, list[float] | None] = {}
    measured = frame[frame["effect"].notna()] if "effect" in frame.columns else frame.iloc[0:0]
    if len(measured):
        mat, tile = _tile_index(measured, extents, offsets)
        measured = measured.assign(_tile=tile)
        for info in infos:
            p = measured[measured["probe_id"] == info.probe_id]
            effects[info.probe_id] = {}
            for kind in kinds:
                effects[info.probe_id][kind] = _tile_effects(p[p["kind"] == kind], n_tiles)
            scales[info.probe_id] = effect_scale(p["effect"].to_numpy(dtype=float))
    saturated: dict[str, list[str]] = {}
    rates: dict[str, list[float | None]] = {}
    sat = saturation(frame)
    if len(sat):
        sat = sat.assign(mat_index=_matrix_index(sat, extents))
    for info in infos:
        flags: list[str] = [""] * len(extents)
        rate: list[float | None] = [None] * len(extents)
        for r in sat[sat["probe_id"] == info.probe_id].itertuples() if len(sat) else ():
            flags[r.mat_index], rate[r.mat_index] = r.direction, round(float(r.rate), 4)
        saturated[info.probe_id], rates[info.probe_id] = flags, rate
    return {"effects": effects, "effect_scale": scales, "saturated": saturated, "nsm_rate": rates}


def _tile_effects(rows: pd.DataFrame, n_tiles: int) -> str:
    """Effects of ``rows`` (one kind, with ``_tile``) per tile as base64 float16, NaN where none."""
    arr = np.full(n_tiles, np.nan, dtype=np.float32)
    arr[rows["_tile"].to_numpy(dtype=np.int64)] = np.clip(
        rows["effect"].to_numpy(dtype=float), -FLOAT16_MAX, FLOAT16_MAX
    )
    return _encode(arr, "<f2")


def estimated_payload(
    con: duckdb.DuckDBPyConnection,
    infos: list[ProbeInfo],
    kinds: list[str],
    extents: pd.DataFrame,
    offsets: np.ndarray,
    n_tiles: int,
) -> dict[str, dict[str, str]]:
    """``estimated`` (module docstring): per text probe and kind, the estimated effects of the
    tiles an adaptive screen left unmeasured; empty for any other file."""
    rows = estimated_tiles(con)
    if not len(rows):
        return {}
    _, tile = _tile_index(rows, extents, offsets)
    rows = rows.assign(_tile=tile)
    out: dict[str, dict[str, str]] = {}
    for info in infos:
        p = rows[rows["probe_id"] == info.probe_id]
        if info.kind != "text" or not len(p):
            continue
        out[info.probe_id] = {}
        for kind in kinds:
            out[info.probe_id][kind] = _tile_effects(p[p["kind"] == kind], n_tiles)
    return out


def _marks(marks: pd.DataFrame | None, extents: pd.DataFrame) -> list[dict]:
    """Distinct marked axes as ``{m, axis, index, reason}`` (m: index into ``matrices``); the
    control axes (role ``before``: the channel before its super activation exists) are not drawn."""
    if marks is None or marks.empty:
        return []
    if "role" in marks.columns:
        marks = marks[~marks["role"].isin(["before", "cancelled"])]
    key = extents[["layer", "matrix"]].assign(mat_index=np.arange(len(extents)))
    distinct = (
        marks[["layer", "matrix", "axis", "index", "reason"]].drop_duplicates().merge(key, on=["layer", "matrix"])
    )
    return [
        {"m": int(r.mat_index), "axis": str(r.axis), "index": int(r.index), "reason": str(r.reason)}
        for r in distinct.itertuples()
    ]


def _texts_for(
    con, info: ProbeInfo, keep: set[int], meta: pd.DataFrame, max_chars: int, choice_strings: dict[str, list[str]]
) -> dict[str, list]:
    """``{id: [text, divergence, similarity, category, severity]}`` for the kept outputs of one probe."""
    out: dict[str, list] = {}
    if info.kind == "choice":
        for ph, text in enumerate(choice_strings.get(info.probe_id, [])):
            if ph in keep:
                out[str(ph)] = [_clip(text, max_chars), None, None, None, None]
        out.setdefault("0", [_clip(info.wt, max_chars), None, None, None, None])
        return out
    wanted = sorted(k for k in keep if k > 0)
    out["0"] = [_clip(info.wt, max_chars), None, None, None, None]
    if not wanted:
        return out
    rows = output_texts(con, info.probe_id, wanted)
    m = meta[meta["probe_id"] == info.probe_id].set_index("ph")
    for ph, text in rows:
        rec = m.loc[ph] if ph in m.index else None

        def get(c: str, rec=rec):
            return rec[c] if rec is not None and c in rec.index else None

        out[str(int(ph))] = [
            _clip(text or "", max_chars),
            None if get("divergence") is None or pd.isna(get("divergence")) else int(get("divergence")),
            _num(get("similarity")),
            _str(get("category")),
            _str(get("severity")),
        ]
    return out


def to_script_json(payload: dict) -> str:
    """JSON safe to place inside ``<script type="application/json">``: no ``</`` or ``<!--``."""
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


__all__ = ["ProbeInfo", "build_payload", "kind_order", "matrix_sort_key", "probe_infos", "to_script_json"]
