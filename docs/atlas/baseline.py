"""docs/atlas.md's "Beyond the activation baseline": every claim recomputed on the residual readout.

    python docs/atlas/baseline.py [docs/atlas/tables]
    python docs/atlas/baseline.py --write PREDICT.duckdb [docs/atlas/tables]

The first form prints every number the section and the claims table's last column quote, from
the tables shipped beside this script: `tiles.parquet` (the exact screen), `predictions.parquet`
(the first-order estimate), `predictions_local.parquet` (the `local` estimate where it differs
from the first-order one: `q`, `k` and `gate`; the two are equal in `v`, `o`, `up` and `down`)
and `inputs.parquet` (per probe and tile column: the norm over positions of the tile's summed
input columns, and the norm of the input columns themselves).

The second form writes the last two from a `mutascope predict` file of the atlas's plan
(docs/predicted-maps.md, "The local estimate on the SmolLM2 atlas") and one forward pass of
SmolLM2 per probe over the probe's prompt and WT output as the file stores them (one thread).

The residual is mutascope's own (`mutascope.analysis.readouts.with_residual`), and every test is
the library's, called with `readout="residual"`: what `mutascope analyze` stores as the
`residual_*` tables of a screen with predictions.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from mutascope.analysis.bias import bias, bias_size
from mutascope.analysis.copa import copa, copa_by_type
from mutascope.analysis.enrichment import enrichment
from mutascope.analysis.layers import bias_by_type
from mutascope.analysis.readouts import isotonic, with_residual
from mutascope.analysis.recurrence import recurrence
from mutascope.analysis.reorder import reorder_holdout, reorder_holdout_by_type
from mutascope.analysis.synthetic import COLUMNS as SITE_COLUMNS  # the site frame's columns

ALPHA = 0.05
TILE = 64
CHANNEL_TILE = 7  # channel 507, SmolLM2's super activation (docs/atlas.md)
KEYS = ["mutation_id", "probe_id"]


def q(x: float) -> str:
    return f"{x:.2g}" if x >= 1e-4 else f"{x:.1e}"


# ---------------------------------------------------------------------------------------- writing


def write(predict_file: Path, directory: Path) -> None:
    """`predictions_local.parquet` and `inputs.parquet` from a predict file of the atlas's plan."""
    import duckdb
    import torch

    with duckdb.connect(str(predict_file), read_only=True) as con:
        pred = con.execute("SELECT mutation_id, probe_id, predicted, local FROM predictions").df()
        mutations = con.execute("SELECT mutation_id, layer, matrix, row, col, kind FROM mutations").df()
        probes = con.execute("SELECT probe_id, prompt_tokens, wt_tokens, wt_text FROM probes ORDER BY position").df()
    shipped = pd.read_parquet(directory / "predictions.parquet", columns=[*KEYS, "predicted"])
    check = shipped.merge(pred, on=KEYS, suffixes=("_shipped", ""))
    if len(check) != len(shipped) or not np.allclose(
        check["predicted"], check["predicted_shipped"], rtol=1e-3, atol=1e-3
    ):
        raise SystemExit(f"{predict_file} is not the atlas's plan: its first-order estimate differs from the shipped")
    tiles = pd.read_parquet(directory / "tiles.parquet", columns=["mutation_id", "layer", "matrix", "row", "col"])
    same = tiles.drop_duplicates("mutation_id").merge(mutations, on="mutation_id")
    if (
        len(same) != tiles["mutation_id"].nunique()
        or not (
            (same["layer_x"] == same["layer_y"])
            & (same["matrix_x"] == same["matrix_y"])
            & (same["col_x"] == same["col_y"])
        ).all()
    ):
        raise SystemExit(f"{predict_file}'s mutation ids are not the atlas's sites")
    differs = pred[pred["local"] != pred["predicted"]][[*KEYS, "local"]]
    differs.to_parquet(directory / "predictions_local.parquet", index=False)
    print(f"predictions_local.parquet: {len(differs)} of {len(pred)} rows (local differs from predicted)")

    torch.set_num_threads(1)
    texts = pd.read_parquet(directory / "probes.parquet").set_index("probe_id")["wt_text"]
    for p in probes.itertuples():
        if texts[p.probe_id] != p.wt_text:
            raise SystemExit(f"probe {p.probe_id}: the predict file's WT output is not the atlas's")
    inputs = input_statistics(probes)
    inputs.to_parquet(directory / "inputs.parquet", index=False)
    print(f"inputs.parquet: {len(inputs)} rows")


def input_statistics(probes: pd.DataFrame) -> pd.DataFrame:
    """Per probe and tile column of every matrix: what a constant tile of 1 writes (the norm over
    positions of the tile's summed input columns), the norm and the sum of those input columns,
    from one forward pass of SmolLM2 (one thread) over each probe's prompt and WT output
    (``probes``: ``probe_id``, ``prompt_tokens``, ``wt_tokens``, as a results file stores them)."""
    import torch

    from mutascope.model.subject import load_model

    subject = load_model()
    rows = []
    for p in probes.itertuples():
        ids = torch.tensor([list(p.prompt_tokens) + list(p.wt_tokens[:-1])])
        seen: dict[str, torch.Tensor] = {}
        handles = []
        for path in dict.fromkeys(ref.module_path for ref in subject.anatomy.refs()):

            def record(module, args, path=path, seen=seen):
                seen[path] = args[0][0].detach().to(torch.float64)

            handles.append(subject.model.get_submodule(path).register_forward_pre_hook(record))
        try:
            with torch.inference_mode():
                subject.model(input_ids=ids, use_cache=False)
        finally:
            for h in handles:
                h.remove()
        for ref in subject.anatomy.refs():
            x = seen[ref.module_path]  # positions x input features
            for col in range(-(-x.shape[1] // TILE)):
                part = x[:, col * TILE : (col + 1) * TILE]
                rows.append(
                    (
                        p.probe_id,
                        ref.layer,
                        ref.matrix,
                        col,
                        float(part.sum(dim=1).norm()),  # what a constant tile of 1 writes, over positions
                        float(part.norm()),
                        float(part.sum()),
                    )
                )
    return pd.DataFrame(rows, columns=["probe_id", "layer", "matrix", "col", "sum_norm", "norm", "sum"])


# ---------------------------------------------------------------------------------------- reading


def load(directory: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The site frame of the max/min screen, and the baselines keyed by mutation and probe."""
    tiles = pd.read_parquet(directory / "tiles.parquet")
    frame = tiles[tiles["kind"].isin(["max", "min"])].rename(
        columns={"logprob_drop": "effect", "logprob_drop_per_token": "effect_per_token"}
    )
    frame = frame.assign(filled=True)[SITE_COLUMNS].reset_index(drop=True)
    pred = pd.read_parquet(directory / "predictions.parquet", columns=[*KEYS, "predicted"])
    local = pd.read_parquet(directory / "predictions_local.parquet")
    base = pred.merge(local, on=KEYS, how="left")
    base["local"] = base["local"].fillna(base["predicted"])
    inputs = pd.read_parquet(directory / "inputs.parquet")
    sites = frame[[*KEYS, "layer", "matrix", "col", "value"]].merge(
        inputs, on=["probe_id", "layer", "matrix", "col"], how="left"
    )
    sites["input_sum"] = sites["value"].abs() * sites["sum_norm"]
    sites["input_norm"] = sites["value"].abs() * sites["norm"]
    base = base.merge(sites[[*KEYS, "input_sum", "input_norm"]], on=KEYS, how="left")
    return frame, base


def spearman_within(frame: pd.DataFrame, a: str, b: str) -> pd.Series:
    """Spearman of columns ``a`` and ``b`` within each probe x layer x matrix (both kinds)."""

    def rho(g):
        return g[a].rank().corr(g[b].rank())

    return frame.groupby(["probe_id", "layer", "matrix"]).apply(rho, include_groups=False)


def choose(frame: pd.DataFrame, base: pd.DataFrame) -> None:
    """Which baseline, and which residual: measured on drosophila, python reported untouched."""
    print("## the baselines (Spearman with the exact effect within each matrix, both kinds; median)")
    joined = frame.merge(base, on=KEYS)
    for column in ("local", "predicted", "input_sum", "input_norm"):
        r = spearman_within(joined, "effect", column)
        by_type = r.groupby(level=[0, 2]).median()
        types = "q k v o gate up down".split()
        cells = ", ".join(
            f"{probe} {r.loc[probe].median():.2f} ({' '.join(f'{m} {by_type[(probe, m)]:.2f}' for m in types)})"
            for probe in ("drosophila", "python")
        )
        print(f"{column}: {cells}")
    print("## the residual: rank residual against exact minus a calibrated prediction (baseline local)")
    for probe, g in joined.groupby("probe_id"):
        rank = with_residual(g, base, "local")["residual"]
        calibrated = np.full(len(g), np.nan)
        for idx in g.groupby(["layer", "matrix"]).indices.values():
            e, b = g["effect"].to_numpy()[idx], g["local"].to_numpy()[idx]
            calibrated[idx] = e - isotonic(b, e)
        out = []
        for name, res in (("rank", rank.to_numpy()), ("calibrated", calibrated)):
            a = np.abs(res)
            top = np.sort(a)[::-1][: max(1, len(a) // 100)].sum() / a.sum()
            rho = spearman_within(g.assign(res=res), "res", "local").abs().median()
            out.append(
                f"{name}: top 1 % of mutants hold {top:.0%} of sum |residual|, median |Spearman with local| {rho:.2f}"
            )
        print(f"{probe}: " + "; ".join(out))


def claims(frame: pd.DataFrame, base: pd.DataFrame, column: str, n_perm: int, roles: pd.Series) -> None:
    """Every claim of the table on the residual readout against one baseline."""
    f = with_residual(frame, base, column)
    print(f"## beyond the baseline `{column}` ({int(f['residual'].notna().sum())} of {len(f)} mutants)")
    b = bias(f, ALPHA, readout="residual")
    for probe, g in b[b["pair"] == "max/min"].groupby("probe_id", sort=False):
        called = g[g["bias"] != "none"]
        print(
            f"bias {probe}: {len(called)} of {len(g)} called; towards the larger value "
            f"{int((called['bias'] == called['larger']).sum())}"
        )
    for r in bias_size(b).itertuples():
        print(
            f"bias_size {r.probe_id} {r.pair}: {r.towards_larger} towards / {r.against_larger} against, "
            f"p = {q(r.p_direction)}"
        )
    bt = bias_by_type(b)
    for r in bt[(bt["q_value"] < ALPHA) | (bt["matrix"] == "gate")].itertuples():
        print(
            f"bias_by_type {r.probe_id} {r.matrix} {r.pair}: {r.positive}+ / {r.negative}- of {r.layers}, "
            f"layer r {r.layer_r:.2f}, q = {q(r.q_value)}"
        )
    e = enrichment(f, "residual", ALPHA)
    for (probe, axis), g in e.groupby(["probe_id", "axis"], sort=False):
        print(f"enrichment {probe} {axis}: {int(g['enriched'].sum())} of {len(g)}")
    hits = e[e["enriched"]]
    print(f"  columns among the hits: {(hits['axis'] == 'col').mean():.0%}")
    effect = enrichment(frame, "effect", ALPHA)
    kept = effect[effect["enriched"]].merge(hits[["probe_id", "layer", "matrix", "axis", "index"]])
    print(f"  effect-enriched axes still enriched beyond the baseline: {len(kept)} of {int(effect['enriched'].sum())}")
    for r in hits.sort_values(["q_value", "score"], ascending=[True, False]).head(3).itertuples():
        print(f"  e.g. {r.probe_id} L{r.layer} {r.matrix} {r.axis} {r.index}: score {r.score:.2f}, q = {q(r.q_value)}")
    for r in recurrence(e).itertuples():
        print(f"recurrence: {r.shared} shared vs {r.expected:.1f} expected ({r.ratio:.2f}x), p = {q(r.p_value)}")
    c = copa(f, n_perm=n_perm, readout="residual", alpha=ALPHA)
    for probe, g in c.groupby("probe_id", sort=False):
        print(
            f"copa {probe}: {int((g['q_value'] < ALPHA).sum())} of {len(g)} at q < {ALPHA}; "
            f"median r {g['copa'].median():.2f}"
        )
    # over layers: the sign of r's excess over the whole-tile null's median (copa_by_type); r itself
    # and the null's median beside it, since most of a max/min anticorrelation is each tile's own pairing
    raw = c.groupby(["probe_id", "matrix", "axis"]).agg(
        below=("copa", lambda s: int((s < 0).sum())), r=("copa", "median"), null=("null_median", "median")
    )
    ct = copa_by_type(c)
    for r in ct.sort_values(["matrix", "axis", "probe_id"]).itertuples():
        if r.q_value < ALPHA or r.matrix in ("gate", "o"):
            w = raw.loc[(r.probe_id, r.matrix, r.axis)]
            print(
                f"copa_by_type {r.probe_id} {r.matrix} {r.axis}: excess {r.negative}- / {r.positive}+ of {r.layers}, "
                f"median excess {r.median:.2f}, layer r {r.layer_r:.2f}, q = {q(r.q_value)}; "
                f"r < 0 in {int(w['below'])}, median r {w['r']:.2f}, null median {w['null']:.2f}"
            )
    h = reorder_holdout_by_type(reorder_holdout(f, "gate", "residual"))
    for r in h.itertuples():
        print(
            f"reorder_holdout {r.probe_id} {r.axis}: {r.positive}+ / {r.negative}- of {r.layers}, "
            f"median rho {r.median:.2f}, layer r {r.layer_r:.2f}, q = {q(r.q_value)}"
        )
    overlap(f)
    superactivation(f, roles)


def overlap(f: pd.DataFrame) -> None:
    """The two probes' maps: Spearman between probes within each matrix and kind, effect and residual."""
    wide = {
        col: f.pivot_table(
            index=["layer", "matrix", "row", "col", "kind"], columns="probe_id", values=col
        ).reset_index()
        for col in ("effect", "residual")
    }
    out = []
    for col, w in wide.items():
        r = w.groupby(["layer", "matrix", "kind"]).apply(
            lambda g: g["drosophila"].rank().corr(g["python"].rank()), include_groups=False
        )
        out.append(f"{col} median {r.median():.2f} ({(r > 0).mean():.0%} positive)")
    print("between probes, within matrix and kind: " + "; ".join(out))


def superactivation(f: pd.DataFrame, roles: pd.Series) -> None:
    """`v` column tile 7 (channel 507) ranked among `v`'s columns by median, per layer, by the
    layer's role in the super-weight summary (``roles``: layer -> "super activation" where the
    layer's input carries it, "cancelled" after a canceller until it is made again, "before")."""
    v = f[(f["matrix"] == "v")]
    for col in ("effect", "residual"):
        med = v.groupby(["probe_id", "layer", "col"])[col].median()
        first = med.groupby(level=[0, 1]).idxmax().map(lambda k: k[2] == CHANNEL_TILE)
        cells = []
        for probe, g in first.groupby(level=0):
            role = roles.reindex(g.index.get_level_values(1)).to_numpy()
            counts = ", ".join(
                f"{int(g[role == name].sum())} of {int((role == name).sum())} {label}"
                for name, label in (("super activation", "carrying"), ("cancelled", "cancelled"), ("before", "before"))
            )
            cells.append(f"{probe} {counts}")
        print(f"v column {CHANNEL_TILE} first by median {col}: " + "; ".join(cells))


def roles_of(directory: Path) -> pd.Series:
    """Each layer's role for channel 507's `v` column, as the shipped super-weight table marks it."""
    t = pd.read_parquet(directory / "analysis_superweight_tiles.parquet")
    mine = t[(t["matrix"] == "v") & (t["axis"] == "col") & (t["index"] == CHANNEL_TILE)]
    roles = mine.drop_duplicates("layer").set_index("layer")["role"]
    if mine.groupby("layer")["role"].nunique().max() > 1:
        raise SystemExit("analysis_superweight_tiles.parquet gives a layer of v column 7 two roles")
    return roles


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["--write"]:
        write(Path(args[1]), Path(args[2]) if len(args) > 2 else Path(__file__).parent / "tables")
        return
    directory = Path(args[0]) if args else Path(__file__).parent / "tables"
    frame, base = load(directory)
    roles = roles_of(directory)
    choose(frame, base)
    for column in ("local", "input_sum", "input_norm"):
        claims(frame, base, column, n_perm=999, roles=roles)


if __name__ == "__main__":
    main()
