"""Super weights on the screen's map: which tiles touch them, and how sensitive those are.

The paper on Llama-2-7B found the ``v`` matrix's column tile 39 sensitive
across probes and noticed by eye that 2533 // 64 = 39, where 2533 is the
model's super-activation channel (the hidden channel a super weight in
layer 1's ``down`` drives to a huge value, which then rides the residual
stream through every later layer). This module makes that link a test:

* in the super weight's own ``down`` matrix, the row tile of its row and the
  column tile of its column are marked (role ``super weight``); the
  detector's cancellers (late ``down`` weights that remove the super
  activation again) are marked the same way (role ``canceller``);
* in every later layer, the matrices that read the hidden state (``q k v
  gate up``) have the column tile holding each super-activation channel
  marked, and ``o``, which writes into it, the row tile holding it (role
  ``super activation``);
* the same axes in the layers up to and including the one that creates the
  super activation are marked as a control (role ``before``): a channel
  that is sensitive there too is sensitive for another reason than the
  super activation riding the residual stream;
* a later layer carries the super activation only if it is present at its
  input, not cancelled: after a canceller of the channel (in an earlier
  layer) and until a super weight of that channel creates it again, the same
  axes are marked ``cancelled`` (a second control), never ``super
  activation`` (:func:`carries`; SmolLM2's channel 507 is cancelled in layer
  9 and made again in layer 11, so layers 10 and 11 do not carry it);
* each marked axis gets its median effect and NSM rate, ranked among the
  axes of the same kind (rows or columns) of its matrix, as a percentile
  (100 = the most sensitive axis of that matrix).

:func:`superweight_summary` tests the link over layers: per probe, matrix
and role, how many layers rank the marked axis first by median effect,
against the number expected if its rank were uniform among its matrix's
axes (exact Poisson-binomial tail; the denominator is the layers marked,
never all layers). **Family**: every row of a probe (each matrix x axis x
role x channel, controls included), BH q-values in ``q_value``.

A super-weights file is what ``mutascope superweights`` writes: its DuckDB
``--out`` file (tables ``superweights``, ``superactivations``,
``superweight_runs``) or its JSON ``--export``. It must describe the
screened model: the content hash is compared with the screen's (when the
dtypes differ the hashes cannot match, and the model ids are compared).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..errors import InputError, ResultsFileError
from ..files.outputs import is_duckdb_file
from ..files.text import read_text_file
from ..model.subject import model_key
from ..store import connect
from ..store.superweights import (
    SUPERWEIGHT_TABLES,
    superactivation_channels,
    superweight_positions,
    superweight_run,
    table_names,
)
from .exact import bh
from .layers import family_layer_correlation, layer_correlation, threshold_count_p
from .tile_scores import main_kinds

if TYPE_CHECKING:  # annotations only: the model module imports torch and transformers
    from ..model.subject import Subject


READS = ("q", "k", "v", "gate", "up")  # input columns are hidden (residual) channels
WRITES = ("o",)  # output rows are hidden channels (down is marked through its super weights)
MARK_COLUMNS = ["layer", "matrix", "axis", "index", "role", "channel", "reason"]
ROLES = ("super weight", "canceller", "super activation", "cancelled", "before")
COLUMNS = [
    "probe_id",
    "layer",
    "matrix",
    "axis",
    "index",
    "role",
    "channel",
    "reason",
    "mutants",
    "median_effect",
    "effect_rank",
    "effect_percentile",
    "nsm_rate",
    "nsm_rank",
    "nsm_percentile",
    "axes",
    "effect_q_value",
]
HOW = "write one with `mutascope superweights --out SW.duckdb` or `--export SW.json`"


@dataclass(frozen=True)
class SuperWeights:
    """What a super-weights file says about a model."""

    path: Path
    model_id: str
    content_hash: str | None
    dtype: str | None
    weights: tuple[tuple[int, int, int], ...]  # (layer, row, col) of down, canonical orientation
    activations: tuple[tuple[int, int], ...]  # (channel, first layer)
    cancellers: tuple[tuple[int, int, int], ...] = ()  # (layer, row, col) of down


def read_superweights(path: str | os.PathLike) -> SuperWeights:
    """Read a ``mutascope superweights`` DuckDB file or JSON export (one-line errors)."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"superweights file {p}: not found; {HOW}")
    if p.is_dir():
        raise InputError(f"superweights file {p} is a directory; {HOW}")
    return _read_duckdb(p) if is_duckdb_file(p) else _read_json(p)


def _read_duckdb(p: Path) -> SuperWeights:
    con = connect(p, read_only=True, purpose="superweights file")
    try:
        names = table_names(con)
        missing = [t for t in SUPERWEIGHT_TABLES if t not in names]
        if missing:
            raise ResultsFileError(
                f"superweights file {p} has no table {missing[0]}: it is not a superweights file; {HOW}"
            )
        run = superweight_run(con)
        if run is None:
            raise ResultsFileError(f"superweights file {p}: superweight_runs is empty; {HOW}")
        weights, cancellers = (superweight_positions(con, kind) for kind in ("creator", "canceller"))
        acts = superactivation_channels(con)
    finally:
        con.close()
    return SuperWeights(
        p,
        str(run[0]),
        run[1],
        run[2],
        tuple(map(tuple, weights)),
        tuple(map(tuple, acts)),
        tuple(map(tuple, cancellers)),
    )


def _read_json(p: Path) -> SuperWeights:
    text = read_text_file(p, "superweights file", HOW)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ResultsFileError(
            f"superweights file {p}: neither DuckDB nor JSON ({e.msg} at line {e.lineno}); {HOW}"
        ) from None
    if not isinstance(data, dict) or not str(data.get("format", "")).startswith("mutascope-superweights/"):
        raise ResultsFileError(f"superweights file {p}: not a mutascope super-weights export (no format field); {HOW}")
    try:
        weights, cancellers = (
            tuple((int(w["layer"]), int(w["row"]), int(w["col"])) for w in data.get(key, []))
            for key in ("super_weights", "cancellers")
        )
        acts = tuple(sorted({(int(a["channel"]), int(a["first_layer"])) for a in data.get("super_activations", [])}))
        model_id = str(data["model_id"])
    except (KeyError, TypeError, ValueError) as e:
        raise ResultsFileError(f"superweights file {p}: malformed entry ({type(e).__name__}: {e}); {HOW}") from None
    return SuperWeights(p, model_id, data.get("content_hash"), data.get("dtype"), weights, acts, cancellers)


def check_same_model(sw: SuperWeights, run: dict, screen: str | os.PathLike | None) -> None:
    """Refuse super weights of another model than the screen's (``run``: the screen's ``runs`` row;
    ``screen`` None: ``run`` describes the model given with ``--model``, loaded, not a screen)."""
    if sw.content_hash and sw.content_hash == run.get("model_hash"):
        return
    if sw.dtype and run.get("dtype") and sw.dtype != run.get("dtype"):  # hashes differ across dtypes: compare the ids
        if model_key(sw.model_id) == model_key(str(run.get("model_id"))):
            return
    theirs = f"{sw.model_id} (weights {str(sw.content_hash or '?')[:12]}, {sw.dtype or '?'})"
    ours = f"{run.get('model_id')} (weights {str(run.get('model_hash'))[:12]}, {run.get('dtype')})"
    if screen is None:
        raise ResultsFileError(
            f"superweights file {sw.path} describes {theirs}, but the model given (--model) is "
            f"{ours}; detect the super weights of that model (mutascope superweights --model ...)"
        )
    raise ResultsFileError(
        f"superweights file {sw.path} describes {theirs}, but {screen} screened {ours}; "
        "detect the super weights of the screened model"
    )


def carries(channel: int, layer: int, created: Iterable[int], cancelled: Iterable[int]) -> bool:
    """Whether the input of ``layer`` carries the super activation of ``channel``: the last
    event before ``layer`` is a creation (a super weight of the channel, or the super
    activation's first layer; ``created``), not a cancellation (``cancelled``: layers of the
    channel's cancellers). A layer's own super weight or canceller acts on its output."""
    events = [(c, 1) for c in created if c < layer] + [(c, 0) for c in cancelled if c < layer]
    return bool(events) and max(events)[1] == 1


def marked_axes(sw: SuperWeights, matrices: Iterable[tuple[int, str]], tile: tuple[int, int]) -> pd.DataFrame:
    """The axes to mark in the screened ``matrices`` ((layer, matrix) pairs), with why.

    One row per (layer, matrix, axis, index, role, channel); several reasons of one role are
    joined with "; ". ``channel`` is the residual channel involved: the super activation's,
    or a (super or cancelling) weight's output row. A channel made by several super weights
    counts from the first of them: the layers up to it are its ``before`` control.
    """
    h, w = tile
    present = set(matrices)
    marks: dict[tuple, list[str]] = {}

    def mark(layer, matrix, axis, index, role, channel, reason):
        if (layer, matrix) in present:
            marks.setdefault((layer, matrix, axis, index, role, channel), []).append(reason)

    for role, found in (("super weight", sw.weights), ("canceller", sw.cancellers)):
        for layer, row, col in found:
            where = f"L{layer} [{row}, {col}]"
            mark(layer, "down", "row", row // h, role, row, f"{role} {where}: its row")
            mark(layer, "down", "col", col // w, role, row, f"{role} {where}: its column")
    layers = sorted({layer for layer, _ in present})
    made: dict[int, list[int]] = {}
    for channel, first in sw.activations:
        made.setdefault(channel, []).append(first)
    for channel, firsts in sorted(made.items()):
        first, where = min(firsts), ", ".join(map(str, sorted(firsts)))
        created = firsts + [lay for lay, row, _ in sw.weights if row == channel]
        cancelled = [lay for lay, row, _ in sw.cancellers if row == channel]
        for layer in layers:
            if layer <= first:
                role, reason = "before", f"channel {channel} before its super activation (made in layer {where})"
            elif carries(channel, layer, created, cancelled):
                role, reason = "super activation", f"super-activation channel {channel} (from layer {where})"
            else:
                last = max(c for c in cancelled if c < layer)
                role, reason = "cancelled", f"channel {channel} after its canceller in layer {last}, not made again"
            for matrix in READS:
                mark(layer, matrix, "col", channel // w, role, channel, reason)
            for matrix in WRITES:
                mark(layer, matrix, "row", channel // h, role, channel, reason)
    rows = [(*key, "; ".join(dict.fromkeys(reasons))) for key, reasons in sorted(marks.items())]
    return pd.DataFrame(rows, columns=MARK_COLUMNS)


def _percentile(values: pd.Series) -> pd.Series:
    """100 for the largest value of the group, 0 for the smallest (ties share a mid-rank)."""
    n = values.notna().sum()
    if n < 2:
        return pd.Series(np.nan, index=values.index)
    return 100 * (values.rank(method="average") - 1) / (n - 1)


def _axis_profiles(frame: pd.DataFrame, axis: str) -> pd.DataFrame:
    """Median effect and NSM rate per (probe, layer, matrix, index along ``axis``), with ranks
    (main kinds only: controls such as ``noise:X`` are not part of the map)."""
    keys = ["probe_id", "layer", "matrix"]
    frame = frame[frame["kind"].isin(main_kinds(frame))]
    g = (
        frame.groupby(keys + [axis])
        .agg(mutants=("nsm", "size"), nsm_rate=("nsm", "mean"), median_effect=("effect", "median"))
        .reset_index()
    )
    g = g.rename(columns={axis: "index"})
    by = g.groupby(keys)
    g["effect_rank"] = by["median_effect"].rank(ascending=False, method="min")
    g["nsm_rank"] = by["nsm_rate"].rank(ascending=False, method="min")
    g["effect_percentile"] = by["median_effect"].transform(_percentile)
    g["nsm_percentile"] = by["nsm_rate"].transform(_percentile)
    g["axes"] = by["index"].transform("size")
    g["axis"] = axis
    return g


def superweight_tiles(
    frame: pd.DataFrame, marks: pd.DataFrame, effect_enrichment: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Each marked axis for each probe, with its effect and NSM rank within its matrix.

    ``effect_enrichment`` (the ``analysis_effect_enrichment`` table), when
    given, adds the axis's q-value from the rank test against the rest of
    its matrix.
    """
    if marks.empty or frame.empty:
        return pd.DataFrame(columns=COLUMNS)
    profiles = pd.concat([_axis_profiles(frame, axis) for axis in ("row", "col")], ignore_index=True)
    probes = pd.DataFrame({"probe_id": list(dict.fromkeys(frame["probe_id"]))})
    out = probes.merge(marks, how="cross").merge(
        profiles, on=["probe_id", "layer", "matrix", "axis", "index"], how="left"
    )
    out = out[out["mutants"].notna()]
    out["mutants"] = out["mutants"].fillna(0).astype(int)
    if effect_enrichment is not None and len(effect_enrichment):
        q = effect_enrichment[["probe_id", "layer", "matrix", "axis", "index", "q_value"]].rename(
            columns={"q_value": "effect_q_value"}
        )
        out = out.merge(q, on=["probe_id", "layer", "matrix", "axis", "index"], how="left")
    else:
        out["effect_q_value"] = np.nan
    return out[COLUMNS].reset_index(drop=True)


SUMMARY_COLUMNS = [
    "probe_id",
    "matrix",
    "axis",
    "role",
    "channel",
    "layers",
    "top_layers",
    "expected_top",
    "layer_r",
    "p_value",
    "p_floor",
    "median_percentile",
    "median_effect",
    "q_value",
]


def superweight_summary(tiles: pd.DataFrame) -> pd.DataFrame:
    """Per probe, matrix, axis, role and channel: in how many of its marked layers the marked
    axis is its matrix's most sensitive by median effect (rank 1), against chance (rank uniform
    among the matrix's axes of that kind), one-sided. ``layers`` counts marked axes (a layer with
    two super weights marks two columns). Neighbouring layers' maps are alike, so their hits are
    not independent: the count is referred to a latent AR(1) across layers
    (:func:`.layers.threshold_count_p`) whose correlation is the larger of the group's own and
    its family's upper bound (:func:`.layers.family_layer_correlation`), both from the marked
    axis's effect percentile layer by layer; where no correlation is found this is the exact
    Poisson-binomial tail. **Family**: every matrix x axis x role x channel of a probe, BH."""
    if tiles.empty or tiles["effect_rank"].isna().all():
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    groups = [
        (key, g.sort_values("layer", kind="stable"))
        for key, g in tiles.dropna(subset=["effect_rank"]).groupby(
            ["probe_id", "matrix", "axis", "role", "channel"], sort=False
        )
    ]
    series: dict[str, list[np.ndarray]] = {key[0]: [] for key, _ in groups}
    for key, g in groups:
        series[key[0]].append(g["effect_percentile"].to_numpy(dtype=float))
    bound = {probe: family_layer_correlation(v) for probe, v in series.items()}
    rows = []
    for (probe, matrix, axis, role, channel), g in groups:
        chance = 1 / g["axes"].to_numpy(dtype=float)
        r = max(bound[probe], layer_correlation([g["effect_percentile"].to_numpy(dtype=float)]))
        top = int((g["effect_rank"] == 1).sum())
        p, floor = threshold_count_p(top, chance, r)
        rows.append(
            (
                probe,
                matrix,
                axis,
                role,
                int(channel),
                len(g),
                top,
                float(chance.sum()),
                r,
                p,
                floor,
                float(g["effect_percentile"].median()),
                float(g["median_effect"].median()),
            )
        )
    order = {r: i for i, r in enumerate(ROLES)}
    out = pd.DataFrame(rows, columns=SUMMARY_COLUMNS[:-1])
    out["q_value"] = np.nan
    for _, idx in out.groupby("probe_id", sort=False).indices.items():
        out.loc[out.index[idx], "q_value"] = bh(out["p_value"].to_numpy()[idx])
    return out.sort_values(
        ["probe_id", "role", "channel", "matrix"],
        key=lambda s: s.map(order) if s.name == "role" else s,
        ignore_index=True,
    )


def recheck_carriers(tiles: pd.DataFrame) -> pd.DataFrame:
    """A ``superweight_tiles`` table with its ``super activation`` rows in layers that do not
    carry the activation (:func:`carries`) relabelled ``cancelled``, from the super weights and
    cancellers the table itself marks: for tables written before that check existed."""
    out = tiles.copy()
    weights = out[out["role"].isin(["super weight", "canceller"])]
    for channel in out.loc[out["role"] == "super activation", "channel"].unique():
        own = weights[weights["channel"] == channel]
        created = own.loc[own["role"] == "super weight", "layer"].tolist()
        before = out.loc[(out["channel"] == channel) & (out["role"] == "before"), "layer"]
        created += [int(before.max())] if len(before) else []
        cancelled = own.loc[own["role"] == "canceller", "layer"].tolist()
        rows = (out["role"] == "super activation") & (out["channel"] == channel)
        kept = [carries(int(channel), int(lay), created, cancelled) for lay in out["layer"]]
        gone = rows & ~pd.Series(kept, index=out.index)
        out.loc[gone, "role"] = "cancelled"
    return out


def subject_marks(
    path: str | os.PathLike, subject: Subject, matrices: Iterable[tuple[int, str]], tile: tuple[int, int]
) -> set[tuple[int, str, str, int]]:
    """The (layer, matrix, axis, index) axes of ``matrices`` that the super weights in ``path``
    mark, for a loaded model (refusing another model's file): the predictions' ``superweight``."""
    sw = read_superweights(path)
    run = {
        "model_id": subject.model_id,
        "model_hash": subject.content_hash(),
        "dtype": str(subject.dtype).replace("torch.", ""),
    }
    check_same_model(sw, run, None)
    marks = marked_axes(sw, matrices, tile)
    return {(int(r.layer), str(r.matrix), str(r.axis), int(r.index)) for r in marks.itertuples()}
