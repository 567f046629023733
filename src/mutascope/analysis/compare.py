"""Two or more analysed screens side by side: which findings hold across models.

One model's atlas says what its matrices do; whether that is a property of
transformers or of one checkpoint needs a second model (Hu et al. compare
Llama-2-7B with Zephyr; docs/methods.md, section 1). Models differ in depth
and shape, so nothing here compares tiles or layers by number:

* every statistic of :data:`~.registry.STATISTICS` whose ``analysis_*`` table
  all files hold is summarised per model as a *figure* (the numbers a
  reader checks against the table) and a *verdict* (what the test says at the
  false discovery rate), one row per probe, per probe pair, or per canonical
  matrix type (``q k v o gate up down``) for the tests over layers;
* per-layer profiles (effect bias, share of axes enriched by effect, NSM
  rate) are placed at **relative depth** ``layer / (n_layers - 1)``, and
  summarised per matrix type over thirds of depth;
* the super-activation link asks, per model and probe, whether the ``v``
  column tile that is most often the most sensitive of its matrix (by median
  effect, in the layers after the super activation appears) is the tile
  holding that model's own super-activation channel; without
  ``analyze --superweights`` the answer is "unknown".

Nothing is recomputed from outcomes: every number is read from the tables
``mutascope analyze`` stored, so a comparison can be checked line by line
against each file. Files are opened read-only and never written.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError, ResultsFileError
from ..model.anatomy import MATRICES
from ..model.subject import model_key
from ..store import open_results
from .exact import bh
from .registry import STATISTICS

DEPTH_PARTS = (("early", 0.0, 1 / 3), ("middle", 1 / 3, 2 / 3), ("late", 2 / 3, 1.0 + 1e-9))
PROFILE_COLUMNS = ["model", "probe_id", "matrix", "layer", "depth", "effect_bias", "enriched_share", "nsm_rate"]
PROFILE_METRICS = {
    "effect_bias": "effect bias (max vs min, rank-biserial)",
    "enriched_share": "share of axes enriched (effect)",
    "nsm_rate": "NSM rate (max/min)",
}
STAT_COLUMNS = ["statistic", "key", "model", "figure", "verdict", "hits", "tests", "value"]
LINK_COLUMNS = [
    "model",
    "probe_id",
    "channels",
    "channel_tiles",
    "top_tile",
    "top_layers",
    "layers",
    "holds",
    "q_value",
    "figure",
]
SCREEN_TABLES = ("runs", "probes", "mutations", "outcomes")
NONE = "-"  # a cell a model has no row for (a matrix type it lacks, a probe it was not screened on)


@dataclass
class Screened:
    """One analysed results file, as the comparison reads it."""

    path: Path
    label: str
    model_id: str
    tile: tuple[int, int]
    layers: tuple[int, ...]  # the layers screened
    last_layer: int  # n_layers - 1 of the model (exact when every layer was screened)
    depth_exact: bool
    probes: pd.DataFrame  # probe_id, text, chat, decoding, max_new_tokens, in screen order
    tables: dict[str, pd.DataFrame]  # analysis tables by statistic name

    def depth(self, layer) -> float | np.ndarray:
        """Relative depth of ``layer``: 0 for the first layer, 1 for the last."""
        return np.asarray(layer, dtype=float) / self.last_layer if self.last_layer else np.zeros_like(layer, float)


@dataclass
class Comparison:
    """What ``mutascope compare`` prints and writes."""

    inputs: list[Screened]
    header: list[str]  # sentences: the models, their depths, where probes differ, statistics left out
    statistics: pd.DataFrame  # long: STAT_COLUMNS, one row per statistic x key x model
    profiles: pd.DataFrame  # PROFILE_COLUMNS, one row per model x probe x layer x matrix
    depth_parts: pd.DataFrame  # matrix, part, model, the profile metrics' means, layers
    link: pd.DataFrame  # LINK_COLUMNS, one row per model x probe
    alpha: float = 0.05

    def side_by_side(self) -> pd.DataFrame:
        """The statistics table wide: statistic, key, then each model's figure and verdict."""
        return side_by_side(self.statistics, [s.label for s in self.inputs])


# -- reading ---------------------------------------------------------------------------

EXPORT_TABLES = ("runs", "probes", "tiles")  # what a compact export (`mutascope export --compact`) holds


def _read_export(p: Path) -> Screened:
    """An analysed screen from its compact Parquet export (docs/atlas/tables): what a published
    atlas ships, so that two atlases compare without their results files."""
    names = {f.stem for f in p.glob("*.parquet")}
    missing = [t for t in EXPORT_TABLES if t not in names]
    if missing:
        raise ResultsFileError(f"{p} is a directory but not a compact export of a screen (no {missing[0]}.parquet)")
    tables = {
        s.name: pd.read_parquet(p / f"analysis_{s.name}.parquet") for s in STATISTICS if f"analysis_{s.name}" in names
    }
    if not tables:
        raise ResultsFileError(f"{p} holds no analysis table of this version: export an analysed screen")
    run = pd.read_parquet(p / "runs.parquet").iloc[0]
    config = json.loads(run["config"]) if isinstance(run["config"], str) else {}
    layers = tuple(sorted(int(x) for x in pd.read_parquet(p / "tiles.parquet", columns=["layer"])["layer"].unique()))
    probes = pd.read_parquet(p / "probes.parquet")
    probes = probes.sort_values("position") if "position" in probes else probes
    probes = probes[["probe_id", "text", "chat", "decoding", "max_new_tokens"]].reset_index(drop=True)
    if not layers:
        raise ResultsFileError(f"{p} has no mutations")
    exact = (config.get("plan") or {}).get("layers") is None
    return Screened(
        p,
        model_key(str(run["model_id"])),
        str(run["model_id"]),
        (int(run["tile_h"]), int(run["tile_w"])),
        layers,
        max(layers),
        exact,
        probes,
        tables,
    )


def read_screened(path: str | os.PathLike) -> Screened:
    """An analysed results file (or its compact export directory), or a one-line error saying why
    it cannot be compared."""
    p = Path(path)
    if p.is_dir():
        return _read_export(p)
    with open_results(p) as results:
        names = results.table_names()
        missing = [t for t in SCREEN_TABLES if t not in names]
        if missing:
            raise ResultsFileError(f"{p} is not a complete mutascope results file (no table {missing[0]})")
        analysed = {t.removeprefix("analysis_") for t in names if t.startswith("analysis_")}
        if not analysed:
            raise ResultsFileError(f"{p} is not analysed: run `mutascope analyze {p}` first")
        tables = {s.name: results.table(f"analysis_{s.name}") for s in STATISTICS if s.name in analysed}
        if not tables:
            raise ResultsFileError(f"{p} holds no table of this version's statistics: rerun `mutascope analyze {p}`")
        run = results.runs.iloc[0]
        config = json.loads(run["config"]) if isinstance(run["config"], str) else {}
        layers = tuple(int(x) for x in results.query("SELECT DISTINCT layer FROM mutations ORDER BY layer")["layer"])
        probes = results.probes[["probe_id", "text", "chat", "decoding", "max_new_tokens"]].reset_index(drop=True)
    if not layers:
        raise ResultsFileError(f"{p} has no mutations: run the screen first")
    exact = (config.get("plan") or {}).get("layers") is None  # --layers all: the screen spans the model
    return Screened(
        p,
        model_key(str(run["model_id"])),
        str(run["model_id"]),
        (int(run["tile_h"]), int(run["tile_w"])),
        layers,
        max(layers),
        exact,
        probes,
        tables,
    )


def _labels(screens: Sequence[Screened]) -> None:
    """Model names as labels; files of one model are told apart by file name (then by position)."""
    names = [s.label for s in screens]
    if len(set(names)) == len(names):
        return
    for s in screens:
        if names.count(s.label) > 1:
            s.label = f"{s.label} ({s.path.stem})"
    labels = [s.label for s in screens]
    seen: dict[str, int] = {}
    for s in screens:
        if labels.count(s.label) > 1:  # one file given twice, or two files of one name
            seen[s.label] = seen.get(s.label, 0) + 1
            s.label = f"{s.label} #{seen[s.label]}"


# -- the header --------------------------------------------------------------------------


def _probe_words(s: Screened) -> str:
    return ", ".join(
        f"{r.probe_id} ({r.decoding}, {int(r.max_new_tokens)} tokens{', chat' if r.chat else ''})"
        for r in s.probes.itertuples()
    )


def probes_match(screens: Sequence[Screened]) -> bool:
    """Whether every file ran the same probes (ids, texts, template, decoding, length) in the same order."""
    first = screens[0].probes
    return all(s.probes.equals(first) for s in screens[1:])


def _header(screens: Sequence[Screened], common: list[str], left_out: dict[str, list[str]]) -> list[str]:
    lines = []
    for s in screens:
        depth = (
            f"layers 0-{s.last_layer}"
            if s.depth_exact
            else f"layers {s.layers[0]}-{s.last_layer} screened of an unknown total: relative depth taken "
            f"over 0-{s.last_layer}"
        )
        lines.append(f"{s.label}: {s.path} ({s.model_id}; {depth}; tile {s.tile[0]}x{s.tile[1]})")
    if probes_match(screens):
        lines.append(f"probes: the same in every file: {_probe_words(screens[0])}")
    else:
        lines.append(
            "probes differ: "
            + "; ".join(f"{s.label}: {_probe_words(s)}" for s in screens)
            + (" (rows pair probes by position)" if not _same_ids(screens) else " (same ids, other texts or decoding)")
        )
    lines.append(f"{len(common)} statistics in every file")
    for name, labels in left_out.items():
        lines.append(f"left out: {name} (only in {', '.join(labels)})")
    return lines


def _same_ids(screens: Sequence[Screened]) -> bool:
    first = list(screens[0].probes["probe_id"])
    return all(list(s.probes["probe_id"]) == first for s in screens[1:])


# -- one statistic, one model: figure and verdict ---------------------------------------------


def _q(x: float) -> str:
    return "nan" if not np.isfinite(x) else (f"{x:.2g}" if x >= 1e-4 else f"{x:.1e}")


def _hits(table: pd.DataFrame, alpha: float, column: str = "q_value") -> np.ndarray:
    return (pd.to_numeric(table[column], errors="coerce") < alpha).to_numpy()


Row = tuple[str, str, str, int | None, int | None, float]  # key, figure, verdict, hits, tests, value


def _per_probe(table: pd.DataFrame, one: Callable[[pd.DataFrame], tuple]) -> list[Row]:
    if table.empty or "probe_id" not in table.columns:
        return []
    return [(str(probe), *one(g)) for probe, g in table.groupby("probe_id", sort=False)]


def _family(noun: str, word: str, alpha: float):
    """A family's hits: "k of n NOUN at q < alpha", verdict WORD (or "none")."""

    def one(g: pd.DataFrame):
        hit = _hits(g, alpha)
        k, n = int(hit.sum()), int(g["q_value"].notna().sum())
        verdict = (word if k else "none") if n else "untested"
        return f"{k} of {n} {noun} at q < {alpha}", verdict, k, n, k / n if n else np.nan

    return one


def _bias(table, alpha):
    def one(g):
        g = g[g["pair"] == "max/min"] if (g["pair"] == "max/min").any() else g
        hit = _hits(g, alpha)
        called = g[hit]
        towards = int((called["bias"] == called["larger"]).sum())
        k, n = len(called), int(g["q_value"].notna().sum())
        kinds = called["bias"].value_counts()
        lead = ", ".join(f"{int(c)} {b}" for b, c in kinds.items())
        fig = f"{k} of {n} matrices biased at q < {alpha}" + (
            f" ({lead}; {towards} towards the larger |value|)" if k else ""
        )
        return fig, ("biased matrices" if k else "none") if n else "untested", k, n, k / n if n else np.nan

    return _per_probe(table, one)


def _bias_size(table, alpha):
    def one(g):
        r = g.iloc[0]
        if not r["called"] or not (r["towards_larger"] + r["against_larger"]):
            return f"{int(r['called'])} biases called", "nothing to test", None, None, np.nan
        rho = r["spearman_size"]
        fig = (
            f"{int(r['towards_larger'])} towards / {int(r['against_larger'])} against the larger |value| "
            f"(p = {_q(r['p_direction'])}); Spearman with log size ratio {rho:.2f}"
        )
        verdict = (
            ("size explains" if r["towards_larger"] > r["against_larger"] else "against size")
            if r["p_direction"] < alpha
            else "n.s."
        )
        return fig, verdict, int(r["p_direction"] < alpha), 1, float(rho)

    return _per_probe(table[table["pair"] == "max/min"] if "pair" in table else table, one)


def _by_type(table, alpha, axis_col: str, positive: str, negative: str):
    """Tests over layers: one row per probe x canonical matrix type (x pair or axis)."""
    rows: list[Row] = []
    if table.empty:
        return rows
    for r in table.itertuples():
        key = f"{r.probe_id} {r.matrix} {getattr(r, axis_col)}"
        n = int(r.layers)
        q = float(r.q_value) if pd.notna(r.q_value) else np.nan
        if axis_col == "pair":
            a, b = str(r.pair).split("/")
            positive, negative = f"{a}-biased", f"{b}-biased"
        word = (
            "untested"
            if not np.isfinite(q)
            else ((positive if r.positive > r.negative else negative) if q < alpha else "n.s.")
        )
        fig = f"{int(r.positive)}+ / {int(r.negative)}- of {n} layers, median {r.median:.2f}, q = {_q(q)}"
        rows.append((key, fig, word, int(q < alpha), 1, float(r.median)))
    return rows


def _pairs(table, alpha, figure: Callable, word: str):
    rows = []
    for r in table.itertuples():
        p = float(r.q_value) if "q_value" in table.columns else float(r.p_value)
        rows.append(
            (
                f"{r.probe_a}/{r.probe_b}",
                figure(r),
                word if p < alpha else "n.s.",
                int(p < alpha),
                1,
                float(getattr(r, "ratio", np.nan)) if word == "recurrent" else float(r.phi),
            )
        )
    return rows


def _counts(table, alpha):
    def one(g):
        g = g[g["kind"].isin(["max", "min"])] if g["kind"].isin(["max", "min"]).any() else g
        per = g.groupby("kind", sort=False)[["nsm", "mutants"]].sum()
        rate = per["nsm"].sum() / per["mutants"].sum() if per["mutants"].sum() else np.nan
        parts = "; ".join(f"{k} {v.nsm / v.mutants:.3f}" for k, v in per.iterrows() if v.mutants)
        eff = g["median_effect"].median() if "median_effect" in g and g["median_effect"].notna().any() else np.nan
        fig = f"NSM rate {parts}" + (f"; median effect {eff:.3g}" if np.isfinite(eff) else "")
        return fig, "description", None, None, float(rate)

    return _per_probe(table, one)


def _saturation(table, alpha):
    def one(g):
        k, n = int(g["saturated"].sum()), len(g)
        return f"{k} of {n} matrices saturated", ("saturated" if k > n / 2 else "not saturated"), None, None, k / n

    return _per_probe(table, one)


def _copa(table, alpha):
    def one(g):
        hit = _hits(g, alpha) & (pd.to_numeric(g["copa"], errors="coerce") < 0).to_numpy()
        k, n = int(hit.sum()), int(g["q_value"].notna().sum())
        med = pd.to_numeric(g["copa"], errors="coerce").median()
        return (
            f"{k} of {n} matrix axes complementary at q < {alpha}; median r {med:.2f}",
            ("complementary axes" if k else "none") if n else "untested",
            k,
            n,
            float(med),
        )

    return _per_probe(table, one)


def _holdout(table, alpha):
    def one(g):
        med = pd.to_numeric(g["rho"], errors="coerce").median()
        return f"median held-out Spearman {med:.2f} over {len(g)} layer axes", "description", None, None, float(med)

    return _per_probe(table, one)


SUPERWEIGHT_FAMILY = "every matrix x axis x role x channel of a probe"  # the summary's BH family


def superweight_q(table: pd.DataFrame) -> pd.Series:
    """The super-weight summary's BH q-values over its family (:data:`SUPERWEIGHT_FAMILY`): the
    table's own ``q_value``, or, for a table analysed before the summary had one, BH over the
    p-values of each probe's rows (the same family: the summary holds every test of it)."""
    if "q_value" in table.columns:
        return pd.to_numeric(table["q_value"], errors="coerce")
    q = pd.Series(np.nan, index=table.index, dtype=float)
    for _, idx in table.groupby("probe_id", sort=False).indices.items():
        q.iloc[idx] = bh(pd.to_numeric(table["p_value"], errors="coerce").to_numpy()[idx])
    return q


def _superweights(table, alpha):
    """Each marked axis over its layers: "top axis" where its BH q-value (family: every matrix x
    axis x role x channel of the probe) is below ``alpha``, not its p-value: the summary runs dozens
    of tests per probe, and a p below alpha among them is expected by chance."""
    rows = []
    qs = superweight_q(table)
    for r, q in zip(table.itertuples(), qs):
        key = f"{r.probe_id} {r.matrix} {r.axis} ({r.role}, channel {int(r.channel)})"
        expected = f"(expected {r.expected_top:.2f})"
        fig = (
            f"first in {int(r.top_layers)} of {int(r.layers)} layers {expected}, p = {_q(r.p_value)}, "
            f"q = {_q(q)} (BH over {SUPERWEIGHT_FAMILY})"
        )
        hit = bool(q < alpha)
        rows.append(
            (
                key,
                fig,
                "top axis" if hit else ("n.s." if np.isfinite(q) else "untested"),
                int(hit),
                1,
                float(r.top_layers) / r.layers if r.layers else np.nan,
            )
        )
    return rows


def _agreement(table, alpha):
    t = table[(table["matrix"] == "all")] if "matrix" in table and (table["matrix"] == "all").any() else table
    rows = []
    for (probe, score), g in t.groupby(["probe_id", "score"], sort=False):
        r = g.iloc[0]
        rows.append(
            (
                f"{probe} {score}",
                f"Spearman {r.spearman:.2f} [{r.spearman_low:.2f}, {r.spearman_high:.2f}], "
                f"AUC {r.auc:.2f}, recall top 10 % {r.recall_10:.2f}",
                "description",
                None,
                None,
                float(r.spearman),
            )
        )
    return rows


def _generic(table, alpha):
    """Tables without a figure of their own: their size, and their hits where they have q-values."""
    q = [c for c in table.columns if c == "q_value" or c.startswith("q_")]
    if q and len(table):
        k = int((table[q].apply(pd.to_numeric, errors="coerce") < alpha).any(axis=1).sum())
        return [("all", f"{k} of {len(table)} rows at q < {alpha}", "hits" if k else "none", k, len(table), float(k))]
    return [("all", f"{len(table)} rows", "description", None, None, float(len(table)))]


def summary_rows(name: str, table: pd.DataFrame, alpha: float) -> list[Row]:
    """One model's figure and verdict for the table of statistic ``name`` (keyed by probe, pair or type)."""
    base = name.removeprefix("effect_").removeprefix("residual_")  # every readout of a statistic alike
    if base == "counts":
        return _counts(table, alpha)
    if base == "saturation":
        return _saturation(table, alpha)
    if base == "bias":
        return _bias(table, alpha)
    if base == "bias_size":
        return _bias_size(table, alpha)
    if base == "bias_by_type":
        return _by_type(table, alpha, "pair", "", "")
    if base == "enrichment":
        return _per_probe(table, _family("axes", "enriched axes", alpha))
    if base == "recurrence":
        return _pairs(
            table,
            alpha,
            lambda r: f"{int(r.shared)} shared axes vs {r.expected:.1f} expected, p = {_q(r.p_value)}",
            "recurrent",
        )
    if base == "copa":
        return _copa(table, alpha)
    if base in ("copa_by_type", "reorder_holdout_by_type"):
        words = ("co-located", "complementary") if base == "copa_by_type" else ("order holds", "order reversed")
        return _by_type(table, alpha, "axis", *words)
    if base == "reorder_holdout":
        return _holdout(table, alpha)
    if base == "overlap":
        return _pairs(
            table,
            alpha,
            lambda r: (
                f"Jaccard {r.jaccard:.3f} (independent {r.expected_jaccard:.3f}), "
                f"phi {r.phi:.2f}, OR {r.odds_ratio:.2f}"
            ),
            "associated",
        )
    if base == "writers":
        return _per_probe(
            table.assign(q_value=table[["q_row", "q_col"]].min(axis=1)) if len(table) else table,
            _family("groups sharing an axis", "shared axes", alpha),
        )
    if base == "superweight_summary":
        return _superweights(table, alpha)
    if base == "prediction_agreement":
        return _agreement(table, alpha)
    if base == "counts_by_kind":
        return _counts(table, alpha)
    if base == "counts_by_matrix" and {"probe_id", "matrix"} <= set(table.columns):
        return [
            (f"{probe} {matrix}", *_counts(g, alpha)[0][1:])
            for (probe, matrix), g in table.groupby(["probe_id", "matrix"], sort=False)
        ]
    return _generic(table, alpha)


def _position_keys(rows: list[Row], s: Screened) -> list[Row]:
    """Rows keyed by probe position instead of id (files whose probes differ); the id goes into the figure."""
    pos = {str(p): i + 1 for i, p in enumerate(s.probes["probe_id"])}
    out: list[Row] = []
    for key, fig, verdict, hits, tests, value in rows:
        head, _, tail = key.partition(" ")
        if "/" in head and all(h in pos for h in head.split("/")):
            new, ids = "/".join(f"probe {pos[h]}" for h in head.split("/")), head
        elif head in pos:
            new, ids = f"probe {pos[head]}", head
        else:
            out.append((key, fig, verdict, hits, tests, value))
            continue
        out.append((f"{new} {tail}".strip(), f"[{ids}] {fig}", verdict, hits, tests, value))
    return out


def statistics_table(screens: Sequence[Screened], names: Sequence[str], alpha: float) -> pd.DataFrame:
    """Every statistic's figure and verdict for every model (long form, STAT_COLUMNS)."""
    by_id = _same_ids(screens)
    rows = []
    for name in names:
        for s in screens:
            found = summary_rows(name, s.tables[name], alpha)
            if not by_id:
                found = _position_keys(found, s)
            rows += [
                (name, key, s.label, fig, verdict, hits, tests, value)
                for key, fig, verdict, hits, tests, value in found
            ]
    return pd.DataFrame(rows, columns=STAT_COLUMNS)


def side_by_side(long: pd.DataFrame, labels: Sequence[str]) -> pd.DataFrame:
    """``statistic, key`` then ``<label> figure`` and ``<label> verdict`` for each model; a missing cell is "-"."""
    if long.empty:
        return pd.DataFrame(columns=["statistic", "key"] + [f"{m} {c}" for m in labels for c in ("figure", "verdict")])
    cells = {(r.statistic, r.key, r.model): (r.figure, r.verdict) for r in long.itertuples()}
    rows = []
    for statistic, key in dict.fromkeys(zip(long["statistic"], long["key"])):
        row = [statistic, key]
        for label in labels:
            row += list(cells.get((statistic, key, label), (NONE, NONE)))
        rows.append(row)
    return pd.DataFrame(
        rows, columns=["statistic", "key"] + [f"{m} {c}" for m in labels for c in ("figure", "verdict")]
    )


# -- profiles over relative depth ------------------------------------------------------------


def profiles(s: Screened, alpha: float) -> pd.DataFrame:
    """Per probe, layer and matrix: effect bias (max vs min rank-biserial), share of axes enriched by
    effect (q < alpha), NSM rate of max/min; with the layer's relative depth."""
    keys = ["probe_id", "layer", "matrix"]
    parts = []
    bias = s.tables.get("effect_bias")
    if bias is not None and len(bias):
        b = bias[bias["pair"] == "max/min"]
        parts.append(b.groupby(keys)["rank_biserial"].mean().rename("effect_bias"))
    enr = s.tables.get("effect_enrichment")
    if enr is not None and len(enr):
        parts.append(enr.assign(hit=_hits(enr, alpha)).groupby(keys)["hit"].mean().rename("enriched_share"))
    sat = s.tables.get("saturation")
    if sat is not None and len(sat):
        parts.append(sat.groupby(keys)["rate"].mean().rename("nsm_rate"))
    if not parts:
        return pd.DataFrame(columns=PROFILE_COLUMNS)
    out = pd.concat(parts, axis=1).reset_index()
    for metric in PROFILE_METRICS:
        if metric not in out:
            out[metric] = np.nan
    out["model"] = s.label
    out["depth"] = s.depth(out["layer"].to_numpy())
    return out[PROFILE_COLUMNS]


def depth_summary(prof: pd.DataFrame, labels: Sequence[str]) -> pd.DataFrame:
    """Each profile metric's mean per matrix type, third of relative depth and model (over probes and layers)."""
    cols = ["matrix", "part", "model", "layers", *PROFILE_METRICS]
    if prof.empty:
        return pd.DataFrame(columns=cols)
    names = [name for name, lo, hi in DEPTH_PARTS]
    part = pd.cut(prof["depth"], [lo for _, lo, _ in DEPTH_PARTS] + [DEPTH_PARTS[-1][2]], right=False, labels=names)
    g = prof.assign(part=part.astype(str)).groupby(["matrix", "part", "model"])
    out = g[list(PROFILE_METRICS)].mean().join(g["layer"].nunique().rename("layers")).reset_index()
    mat = {m: i for i, m in enumerate(MATRICES)}
    out["_m"] = out["matrix"].map(lambda m: mat.get(m, len(mat)))
    out["_p"] = out["part"].map(names.index)
    out["_l"] = out["model"].map(list(labels).index)
    return out.sort_values(["_m", "_p", "_l"]).drop(columns=["_m", "_p", "_l"])[cols].reset_index(drop=True)


# -- the super-activation link -----------------------------------------------------------


def superactivation_link(s: Screened, alpha: float) -> pd.DataFrame:
    """Per probe: is the v column tile most often first by median effect (layers after the super activation)
    the one holding the model's super-activation channel? "yes", "no" or "unknown" (with why)."""

    def unknown(why: str, probes=None) -> pd.DataFrame:
        ids = list(s.probes["probe_id"]) if probes is None else probes
        return pd.DataFrame(
            [(s.label, p, "", "", None, None, None, "unknown", np.nan, why) for p in ids], columns=LINK_COLUMNS
        )

    tiles = s.tables.get("superweight_tiles")
    if tiles is None:
        return unknown("not analysed with --superweights")
    v = tiles[(tiles["matrix"] == "v") & (tiles["axis"] == "col") & (tiles["role"] == "super activation")]
    if v.empty:
        return unknown("no super-activation channel is read by a screened v")
    enr = s.tables.get("effect_enrichment")
    if enr is None or enr.empty:
        return unknown("no effect sizes in this screen")
    summary = s.tables.get("superweight_summary")
    rows: list[tuple] = []  # LINK_COLUMNS
    for probe in s.probes["probe_id"]:
        marks = v[v["probe_id"] == probe]
        if marks.empty:
            rows.append((s.label, probe, "", "", None, None, None, "unknown", np.nan, "not screened on this probe"))
            continue
        layers = sorted(set(int(x) for x in marks["layer"]))
        cols = enr[
            (enr["probe_id"] == probe) & (enr["matrix"] == "v") & (enr["axis"] == "col") & enr["layer"].isin(layers)
        ]
        first = (
            cols.sort_values(["layer", "median_effect", "index"], ascending=[True, False, True])
            .groupby("layer")
            .head(1)
        )
        if first.empty:
            rows.append((s.label, probe, "", "", None, None, None, "unknown", np.nan, "v columns not in the tables"))
            continue
        counts = first["index"].value_counts()
        mean_rank = (
            cols.assign(rank=cols.groupby("layer")["median_effect"].rank(ascending=False))
            .groupby("index")["rank"]
            .mean()
        )
        top = int(sorted(counts.index, key=lambda i: (-counts[i], mean_rank.get(i, np.inf), i))[0])
        channels = sorted(set(int(c) for c in marks["channel"]))
        channel_tiles = sorted(set(int(i) for i in marks["index"]))
        q = np.nan  # the summary's BH q-value of this probe's v-column test (the least, over channels)
        if summary is not None and len(summary):
            sub = (summary["probe_id"] == probe) & (summary["matrix"] == "v") & (summary["axis"] == "col")
            sub &= summary["role"] == "super activation"
            q = float(superweight_q(summary)[sub].min()) if sub.any() else np.nan
        holds = "yes" if top in channel_tiles else "no"
        own = ", ".join(f"{c} (tile {c // s.tile[1]})" for c in channels)
        fig = (
            f"tile {top} first in {int(counts[top])} of {len(first)} layers; channel {own}"
            + (f" first in {int(sum(counts.get(t, 0) for t in channel_tiles))}" if holds == "no" else "")
            + (f"; q = {_q(q)} (BH over {SUPERWEIGHT_FAMILY})" if np.isfinite(q) else "")
        )
        rows.append(
            (
                s.label,
                probe,
                " ".join(map(str, channels)),
                " ".join(map(str, channel_tiles)),
                top,
                int(counts[top]),
                len(first),
                holds,
                q,
                fig,
            )
        )
    return pd.DataFrame(rows, columns=LINK_COLUMNS)


# -- the whole comparison ---------------------------------------------------------------


def check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise InputError(f"--alpha must be between 0 and 1 (exclusive), got {alpha}")


def compare(paths: Sequence[str | os.PathLike], alpha: float = 0.05) -> Comparison:
    """Read every file (refusing one that cannot be compared, in one line) and build the comparison."""
    check_alpha(alpha)
    if len(paths) < 2:
        raise InputError(f"compare needs at least two results files, got {len(paths)}")
    screens = [read_screened(p) for p in paths]
    _labels(screens)
    names = [s.name for s in STATISTICS]
    common = [n for n in names if all(n in s.tables for s in screens)]
    if not common:
        raise ResultsFileError(
            f"{', '.join(str(s.path) for s in screens)} have no statistic in common: "
            "analyse them with one version of `mutascope analyze`"
        )
    left_out = {
        n: [s.label for s in screens if n in s.tables]
        for n in names
        if n not in common and any(n in s.tables for s in screens)
    }
    prof = pd.concat([profiles(s, alpha) for s in screens], ignore_index=True)
    labels = [s.label for s in screens]
    return Comparison(
        inputs=screens,
        header=_header(screens, common, left_out),
        statistics=statistics_table(screens, common, alpha),
        profiles=prof,
        depth_parts=depth_summary(prof, labels),
        link=pd.concat([superactivation_link(s, alpha) for s in screens], ignore_index=True),
        alpha=alpha,
    )


def statistic_title(name: str) -> str:
    """The registry's title of a statistic (the table's row label in the Markdown)."""
    return next((s.title for s in STATISTICS if s.name == name), name)


__all__ = [
    "Comparison",
    "Screened",
    "compare",
    "depth_summary",
    "profiles",
    "read_screened",
    "side_by_side",
    "statistics_table",
    "summary_rows",
    "superactivation_link",
]
