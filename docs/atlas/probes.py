"""docs/atlas.md's "Five probes": recurrence and overlap over every pair of five probes.

    python docs/atlas/probes.py [docs/atlas/tables] [docs/atlas/probes]
    python docs/atlas/probes.py --write SCREEN.duckdb PREDICT.duckdb [docs/atlas/probes]
    python docs/atlas/probes.py --mmlu-cost MMLU_DIR    # why MMLU21 was not screened

The atlas screened two probes, so its recurrence and overlap rested on one pair. The three other
built-in probes (`java`, `newton`, `p53`, greedy, 24 new tokens, raw text) were screened calls-only
on every third layer (0, 3, ..., 27: 17,280 max/min mutants per probe), and the two atlas probes'
rows of the same layers are taken from the atlas's own table, so every pair of the five is
compared on the same 17,280 mutants.

The first form prints every number of the section from the tables shipped in `docs/atlas/probes/`
(`tiles.parquet`: the three probes' calls and effects; `predictions.parquet`: their first-order
and `local` estimates; `inputs.parquet`: their per-tile input statistics, as baseline.py's) and
the atlas's own tables. The second writes those three from the screen's results file and a
`mutascope predict` file of the same plan (one forward pass of SmolLM2 per probe, one thread).

Every test is the library's; the residual is the one `mutascope analyze` stores
(`mutascope.analysis.readouts.with_residual`) against each of baseline.py's three baselines.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from baseline import KEYS, input_statistics, load, q

from mutascope.analysis.enrichment import enrichment
from mutascope.analysis.overlap import overlap
from mutascope.analysis.readouts import with_residual
from mutascope.analysis.recurrence import recurrence

ALPHA = 0.05
SITE = ["layer", "matrix", "row", "col", "kind"]
NEW = ("java", "newton", "p53")


# ---------------------------------------------------------------------------------------- writing


def write(screen: Path, predict_file: Path, out: Path) -> None:
    """The three probes' tables in ``out`` from their screen and a predict file of its plan."""
    import duckdb
    import torch

    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(screen), read_only=True) as con:
        mutations = con.execute("SELECT count(*) FROM mutations").fetchone()[0]
        done = con.execute("SELECT count(DISTINCT mutation_id) FROM outcomes").fetchone()[0]
    if done != mutations:
        raise SystemExit(f"{screen}: {done} of {mutations} mutants screened; finish the screen first")
    from mutascope.store import open_results

    with open_results(screen) as results:
        results.export(out, compact=True)
    with duckdb.connect(str(predict_file), read_only=True) as con:
        pred = con.execute("SELECT mutation_id, probe_id, predicted, local FROM predictions").df()
        sites = con.execute("SELECT mutation_id, layer, matrix, row, col, kind FROM mutations").df()
        probes = con.execute("SELECT probe_id, prompt_tokens, wt_tokens, wt_text FROM probes").df()
    tiles = pd.read_parquet(out / "tiles.parquet")
    ours = tiles.drop_duplicates("mutation_id")[["mutation_id", *SITE]]
    same = ours.merge(sites, on=SITE, suffixes=("", "_predict"))
    if len(same) != len(ours) or (same["mutation_id"] != same["mutation_id_predict"]).any():
        raise SystemExit(f"{predict_file} is not the plan of {screen}")
    shown = pd.read_parquet(out / "probes.parquet").set_index("probe_id")["wt_text"]
    held = set(tiles["probe_id"])
    for p in probes.itertuples():
        if p.probe_id in held and shown[p.probe_id] != p.wt_text:
            raise SystemExit(f"probe {p.probe_id}: the predict file's WT output is not the screen's")
    pred[pred["probe_id"].isin(held)].to_parquet(out / "predictions.parquet", index=False)
    input_statistics(probes[probes["probe_id"].isin(held)]).to_parquet(out / "inputs.parquet", index=False)
    print(f"wrote {out}: tiles, probes, runs, predictions, inputs")


# ---------------------------------------------------------------------------------------- reading


def five(atlas: Path, extra: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The five probes' site frame on the extra screen's layers, keyed by the atlas's mutation ids,
    and the three baselines of every row (``local``, ``input_sum``, ``input_norm``)."""
    frame, base = load(atlas)
    tiles = pd.read_parquet(extra / "tiles.parquet")
    tiles = tiles[tiles["kind"].isin(["max", "min"])]
    layers = sorted(set(tiles["layer"]))
    frame = frame[frame["layer"].isin(layers)]
    ids = frame.drop_duplicates("mutation_id")[["mutation_id", *SITE, "value"]]
    mapped = tiles.merge(ids, on=SITE, suffixes=("_own", ""))
    if len(mapped) != len(tiles) or not np.allclose(mapped["value_own"], mapped["value"], rtol=1e-6):
        raise SystemExit(f"{extra}: its mutants are not the atlas's sites on layers {layers}")
    if mapped["mutation_id"].nunique() != len(ids):
        raise SystemExit(f"{extra}: it lacks some of the atlas's mutants on layers {layers}")
    own = mapped.rename(columns={"logprob_drop": "effect", "logprob_drop_per_token": "effect_per_token"})
    frame = pd.concat([frame, own.assign(filled=True)[frame.columns]], ignore_index=True)

    pred = pd.read_parquet(extra / "predictions.parquet").merge(
        tiles.drop_duplicates("mutation_id")[["mutation_id", *SITE]], on="mutation_id"
    )
    pred = pred.drop(columns="mutation_id").merge(ids[["mutation_id", *SITE]], on=SITE)
    inputs = pd.read_parquet(extra / "inputs.parquet")
    sites = own[[*KEYS, "layer", "matrix", "col", "value"]].merge(
        inputs, on=["probe_id", "layer", "matrix", "col"], how="left"
    )
    sites["input_sum"] = sites["value"].abs() * sites["sum_norm"]
    sites["input_norm"] = sites["value"].abs() * sites["norm"]
    extra_base = pred[[*KEYS, "predicted", "local"]].merge(sites[[*KEYS, "input_sum", "input_norm"]], on=KEYS)
    base = pd.concat([base[base["mutation_id"].isin(ids["mutation_id"])], extra_base], ignore_index=True)
    return frame.reset_index(drop=True), base


def at_least(e: pd.DataFrame, ks=(2, 3, 4, 5), draws: int = 1999, seed: int = 0) -> pd.DataFrame:
    """Axes enriched in at least k probes, against each probe's hits falling at random within each
    matrix and axis (its own number of hits there): the expected count (per stratum every axis is
    a Poisson-binomial draw with p = hits / axes) and a permutation p (each probe's hits placed at
    random in each stratum, ``draws`` times; floor 1 / (draws + 1))."""
    hit = e.assign(enriched=e["enriched"].astype(bool))
    rng = np.random.default_rng(seed)
    observed = dict.fromkeys(ks, 0)
    expected = dict.fromkeys(ks, 0.0)
    null = {k: np.zeros(draws, dtype=np.int64) for k in ks}
    for _, g in hit.groupby(["layer", "matrix", "axis"]):
        table = g.pivot_table(index="index", columns="probe_id", values="enriched", aggfunc="first")
        table = table.fillna(False).astype(bool)
        n = len(table)
        counts = table.to_numpy().sum(axis=1)
        pmf = np.array([1.0])
        shuffled = np.zeros((draws, n), dtype=np.int64)
        for column in table.columns:
            h = int(table[column].sum())
            pmf = np.convolve(pmf, [1 - h / n, h / n])
            if h:
                order = rng.random((draws, n)).argsort(axis=1)  # a random subset of h axes per draw
                shuffled += order < h
        for k in ks:
            observed[k] += int((counts >= k).sum())
            expected[k] += n * pmf[k:].sum()
            null[k] += (shuffled >= k).sum(axis=1)
    rows = [(k, observed[k], expected[k], (1 + int((null[k] >= observed[k]).sum())) / (draws + 1)) for k in ks]
    return pd.DataFrame(rows, columns=["k", "observed", "expected", "p_value"])


def spearman_pairs(f: pd.DataFrame, column: str) -> pd.DataFrame:
    """Every pair's median Spearman of ``column`` within each layer x matrix x kind."""
    wide = f.pivot_table(index=["layer", "matrix", "row", "col", "kind"], columns="probe_id", values=column)
    wide = wide.reset_index()
    rows = []
    probes = list(dict.fromkeys(f["probe_id"]))
    for a, b in itertools.combinations(probes, 2):
        r = wide.groupby(["layer", "matrix", "kind"]).apply(
            lambda g, a=a, b=b: g[a].rank().corr(g[b].rank()), include_groups=False
        )
        rows.append((a, b, r.median(), (r > 0).mean()))
    return pd.DataFrame(rows, columns=["probe_a", "probe_b", "median", "positive"])


def readout_report(f: pd.DataFrame, readout: str, label: str) -> None:
    """Enrichment, pairwise recurrence and multi-probe recurrence of one readout."""
    e = enrichment(f, readout, ALPHA)
    per = e.groupby("probe_id", sort=False)["enriched"].agg(["sum", "size"])
    print(
        f"## {label}: enriched axes per probe (of its family): "
        + ", ".join(f"{p} {int(r['sum'])} of {int(r['size'])}" for p, r in per.iterrows())
    )
    r = recurrence(e)
    for x in r.itertuples():
        print(
            f"recurrence {x.probe_a}/{x.probe_b}: {x.shared} shared vs {x.expected:.1f} expected "
            f"({x.ratio:.2f}x), q = {q(x.q_value)}"
        )
    print(
        f"recurrence {label}: {int((r['q_value'] < ALPHA).sum())} of {len(r)} pairs at q < {ALPHA}, "
        f"ratio {r['ratio'].min():.2f}-{r['ratio'].max():.2f} (median {r['ratio'].median():.2f})"
    )
    for r in at_least(e).itertuples():
        print(
            f"  axes enriched in at least {r.k} of 5 probes: {r.observed} vs {r.expected:.1f} expected, "
            f"permutation p = {q(r.p_value)}"
        )


def report(atlas: Path, extra: Path) -> None:
    frame, base = five(atlas, extra)
    n = frame.groupby("probe_id", sort=False)["mutation_id"].nunique()
    layers = sorted(set(frame["layer"]))
    print(f"## five probes on layers {','.join(map(str, layers))}: {int(n.iloc[0])} mutants each")
    for p, g in frame.groupby("probe_id", sort=False):
        print(
            f"{p}: NSM {g['nsm'].mean():.1%}, median effect {g['effect'].median():.2f} nats "
            f"({g['effect_per_token'].median():.3f} per WT token)"
        )
    print("## overlap of the NSM sets, every pair")
    o = overlap(frame)
    for r in o.itertuples():
        print(
            f"overlap {r.probe_a}/{r.probe_b}: Jaccard {r.jaccard:.3f}, independent {r.expected_jaccard:.3f}, "
            f"max {r.max_jaccard:.3f}; odds ratio within layer x matrix {r.odds_ratio_mh:.2f} "
            f"[{r.odds_ratio_mh_low:.2f}, {r.odds_ratio_mh_high:.2f}] (pooled {r.odds_ratio:.2f})"
        )
    above = o[o["odds_ratio_mh_low"] > 1]
    print(
        f"overlap: {len(above)} of {len(o)} pairs associated within layer x matrix (interval above 1); "
        f"Jaccard minus independent {(o['jaccard'] - o['expected_jaccard']).min():.3f} to "
        f"{(o['jaccard'] - o['expected_jaccard']).max():.3f}; stratified odds ratio "
        f"{o['odds_ratio_mh'].min():.2f}-{o['odds_ratio_mh'].max():.2f} (median {o['odds_ratio_mh'].median():.2f})"
    )
    print("## the maps between probes (Spearman within layer x matrix x kind, median over them)")
    residuals = {c: with_residual(frame, base, c) for c in ("local", "input_sum", "input_norm")}
    for label, f, column in (
        ("effect", frame, "effect"),
        *((f"beyond {c}", residuals[c], "residual") for c in residuals),
    ):
        s = spearman_pairs(f, column)
        cells = ", ".join(f"{r.probe_a}/{r.probe_b} {r.median:.2f}" for r in s.itertuples())
        print(
            f"{label}: median over pairs {s['median'].median():.2f} (range {s['median'].min():.2f}-"
            f"{s['median'].max():.2f}; positive in {s['positive'].min():.0%}-{s['positive'].max():.0%} of matrices)"
        )
        print(f"  {cells}")
    readout_report(frame, "nsm", "NSM")
    readout_report(frame, "effect", "effect")
    for c, f in residuals.items():
        readout_report(f, "residual", f"beyond {c}")


def mmlu_cost(directory: Path, subject: str = "high_school_biology") -> None:
    """Why MMLU21 was not screened: the tokens one mutant runs on it against a built-in probe."""
    from mutascope.model.subject import load_model
    from mutascope.probes import BUILTIN_PROBES
    from mutascope.probes.mmlu import choice_probes

    tokenizer = load_model().tokenizer
    questions = choice_probes(directory, subject, limit=21)
    tokens = sum(len(tokenizer(p.text)["input_ids"]) + p.max_new_tokens for p in questions)
    builtin = {p.id: p for p in BUILTIN_PROBES} if not isinstance(BUILTIN_PROBES, dict) else BUILTIN_PROBES
    for name in NEW:
        own = len(tokenizer(builtin[name].text)["input_ids"]) + 24
        print(f"{name}: {own} token positions per mutant (prompt + 24 new tokens)")
    print(f"mmlu21 {subject}: {len(questions)} five-shot prompts, {tokens} token positions per mutant")


def fail(message: str) -> None:
    """A bad input: one line on stderr and exit code 2, as the mutascope CLI does."""
    print(f"probes.py: {message}", file=sys.stderr)
    raise SystemExit(2)


def main() -> None:
    here = Path(__file__).parent
    args = sys.argv[1:]
    if args[:1] == ["--write"]:
        if len(args) < 3:
            fail("usage: probes.py --write SCREEN.duckdb PREDICT.duckdb [OUT]")
        write(Path(args[1]), Path(args[2]), Path(args[3]) if len(args) > 3 else here / "probes")
        return
    if args[:1] == ["--mmlu-cost"]:
        if len(args) < 2:
            fail("usage: probes.py --mmlu-cost MMLU_DIR")
        mmlu_cost(Path(args[1]))
        return
    atlas = Path(args[0]) if args else here / "tables"
    extra = Path(args[1]) if len(args) > 1 else here / "probes"
    for directory in (atlas, extra):
        if not (directory / "tiles.parquet").is_file():
            fail(f"{directory}: no tiles.parquet (usage: probes.py [ATLAS_TABLES] [PROBES_TABLES])")
    report(atlas, extra)


if __name__ == "__main__":
    main()
