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
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from ..analysis.frame import UNGROUPED, phenotype_columns, site_frame
from ..model.anatomy import MATRICES as MATRIX_ORDER  # attention before MLP, the paper's order
from ..plan.kinds import BASE_KINDS
from ..store import read_zoom
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
    rows = con.execute(
        "SELECT probe_id, kind, text, wt_text, decoding, max_new_tokens, probe_group, answer "
        "FROM probes ORDER BY position"
    ).fetchall()
    out: list[ProbeInfo] = []
    sets: dict[str, ProbeInfo] = {}
    for pid, kind, text, wt, decoding, max_new, group, answer in rows:
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
    text = con.execute(
        "SELECT o.probe_id, o.mutation_id, m.layer, m.matrix, m.row, m.col, m.kind, "
        f"CASE WHEN o.output_tokens IS NULL AND o.nsm THEN {UNFILLED_PH} "
        "ELSE coalesce(o.phenotype_id, CASE WHEN o.nsm THEN -1 ELSE 0 END) END AS ph "
        "FROM outcomes o JOIN mutations m USING (mutation_id) JOIN probes p USING (probe_id) "
        "WHERE p.kind <> 'choice'"
    ).df()
    if not any(i.kind == "choice" for i in infos):
        return text, {}
    answers = con.execute(
        f"SELECT coalesce(p.probe_group, '{UNGROUPED}') AS probe_id, o.mutation_id, m.layer, m.matrix, m.row, m.col, m.kind, "
        "string_agg(CASE WHEN trim(coalesce(o.output_text, '')) = '' THEN '∅' "
        "ELSE replace(trim(o.output_text), ' ', '_') END, ' ' ORDER BY p.position) AS answers, "
        "bool_or(o.nsm AND o.output_tokens IS NULL) AS unfilled "
        "FROM outcomes o JOIN mutations m USING (mutation_id) JOIN probes p USING (probe_id) "
        "WHERE p.kind = 'choice' GROUP BY ALL"
    ).df()
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
    extents = con.execute(
        "SELECT layer, matrix, max(row) + 1 AS nrows, max(col) + 1 AS ncols, "
        "max(r0 + height) AS height, max(c0 + width) AS width FROM mutations GROUP BY layer, matrix"
    ).df()
    extents = extents.assign(_key=extents["matrix"].map(matrix_sort_key)).sort_values(["layer", "_key"])
    extents = extents.drop(columns="_key").reset_index(drop=True)
    sizes = (extents["nrows"] * extents["ncols"]).to_numpy(dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    n_tiles = int(sizes.sum())
    kinds = kind_order(con.execute("SELECT DISTINCT kind FROM mutations").df()["kind"])

    max_ph = int(table["ph"].max()) if len(table) else 0
    width = 2 if max_ph < 65533 else 4  # three ids reserved: none, unknown, unfilled
    dtype = "<u2" if width == 2 else "<u4"
    none = 65535 if width == 2 else 4294967295
    special = {-1: none - 1, UNFILLED_PH: none - 2}

    mat, tile = _tile_index(table, extents, offsets)
    table = table.assign(_mat=mat, _tile=tile)

    ids: dict[str, dict[str, str]] = {}
    counts: dict[str, dict[str, list[int]]] = {}
    texts: dict[str, dict[str, list]] = {}
    omitted: dict[str, int] = {}
    mutants: dict[str, dict[str, list[int]]] = {}
    filled: dict[str, list[int]] = {}
    text_meta = _text_meta(con)
    for info in infos:
        p = table[table["probe_id"] == info.probe_id]
        ids[info.probe_id], counts[info.probe_id], mutants[info.probe_id] = {}, {}, {}
        for kind in kinds:
            pk = p[p["kind"] == kind]
            arr = np.full(n_tiles, none, dtype=np.int64)
            ph = pk["ph"].to_numpy(dtype=np.int64)
            arr[pk["_tile"].to_numpy(dtype=np.int64)] = np.where(
                ph == UNFILLED_PH, special[UNFILLED_PH], np.where(ph < 0, special[-1], ph)
            )
            ids[info.probe_id][kind] = _encode(arr, dtype)
            mats = pk["_mat"].to_numpy(dtype=np.int64)
            counts[info.probe_id][kind] = np.bincount(mats[ph != 0], minlength=len(extents)).tolist()
            mutants[info.probe_id][kind] = np.bincount(mats, minlength=len(extents)).tolist()
        ph_all = p["ph"].to_numpy(dtype=np.int64)
        filled[info.probe_id] = [int(np.sum((ph_all != 0) & (ph_all != UNFILLED_PH))), int(np.sum(ph_all != 0))]
        freq = p.loc[p["ph"] > 0, "ph"].value_counts()
        keep = set(freq.index[:max_texts].tolist()) | {0}
        omitted[info.probe_id] = int(max(0, len(freq) - max_texts))
        texts[info.probe_id] = _texts_for(con, info, keep, text_meta, max_chars, choice_strings)
    return {
        "tile": list(con.execute("SELECT tile_h, tile_w FROM runs").fetchone()),
        "kinds": kinds,
        "probes": [
            {
                "id": i.probe_id,
                "kind": i.kind,
                "prompt": _clip(i.prompt, max_chars),
                "wt": _clip(i.wt, max_chars),
                "n_questions": i.n_questions,
            }
            for i in infos
        ],
        "matrices": [
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
        ],
        "n_tiles": n_tiles,
        "width": width,
        "none": none,
        "unknown": none - 1,
        "unfilled": none - 2,
        "filled": filled,
        "ids": ids,
        "counts": counts,
        "mutants": mutants,
        "texts": texts,
        "omitted": omitted,
        "max_chars": max_chars,
        "max_texts": max_texts,
        **effect_payload(frame if frame is not None else site_frame(con), infos, kinds, extents, offsets, n_tiles),
        "marks": _marks(marks, extents),
        "zoom": zoom_payload(read_zoom(con)),
    }


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
                pk = p[p["kind"] == kind]
                arr = np.full(n_tiles, np.nan, dtype=np.float32)
                arr[pk["_tile"].to_numpy(dtype=np.int64)] = np.clip(
                    pk["effect"].to_numpy(dtype=float), -FLOAT16_MAX, FLOAT16_MAX
                )
                effects[info.probe_id][kind] = _encode(arr, "<f2")
            scales[info.probe_id] = effect_scale(p["effect"].to_numpy(dtype=float))
    saturated: dict[str, list[str]] = {}
    rates: dict[str, list[float | None]] = {}
    sat = saturation(frame)
    if len(sat):
        sat = sat.assign(mat_index=_matrix_index(sat, extents))
    for info in infos:
        flags, rate = [""] * len(extents), [None] * len(extents)
        for r in sat[sat["probe_id"] == info.probe_id].itertuples() if len(sat) else ():
            flags[r.mat_index], rate[r.mat_index] = r.direction, round(float(r.rate), 4)
        saturated[info.probe_id], rates[info.probe_id] = flags, rate
    return {"effects": effects, "effect_scale": scales, "saturated": saturated, "nsm_rate": rates}


def _marks(marks: pd.DataFrame | None, extents: pd.DataFrame) -> list[dict]:
    """Distinct marked axes as ``{m, axis, index, reason}`` (m: index into ``matrices``); the
    control axes (role ``before``: the channel before its super activation exists) are not drawn."""
    if marks is None or marks.empty:
        return []
    if "role" in marks.columns:
        marks = marks[marks["role"] != "before"]
    key = extents[["layer", "matrix"]].assign(mat_index=np.arange(len(extents)))
    distinct = (
        marks[["layer", "matrix", "axis", "index", "reason"]].drop_duplicates().merge(key, on=["layer", "matrix"])
    )
    return [
        {"m": int(r.mat_index), "axis": str(r.axis), "index": int(r.index), "reason": str(r.reason)}
        for r in distinct.itertuples()
    ]


def _text_meta(con: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    """Per (probe, phenotype id): divergence and, when present, similarity, category, severity."""
    cols = [c for c in phenotype_columns(con) if c in ("similarity", "category", "severity")]
    sel = "".join(f", any_value(f.{c}) AS {c}" for c in cols)
    join = "LEFT JOIN phenotypes f ON f.mutation_id = o.mutation_id AND f.probe_id = o.probe_id" if cols else ""
    return con.execute(
        f"SELECT o.probe_id, o.phenotype_id AS ph, min(o.divergence) AS divergence{sel} "
        f"FROM outcomes o {join} WHERE o.phenotype_id > 0 GROUP BY o.probe_id, o.phenotype_id"
    ).df()


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
    rows = con.execute(
        "SELECT phenotype_id, any_value(output_text) FROM outcomes "
        "WHERE probe_id = ? AND phenotype_id IN (SELECT unnest(?)) GROUP BY phenotype_id",
        [info.probe_id, wanted],
    ).fetchall()
    m = meta[meta["probe_id"] == info.probe_id].set_index("ph")
    for ph, text in rows:
        rec = m.loc[ph] if ph in m.index else None
        get = lambda c: rec[c] if rec is not None and c in rec.index else None
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
