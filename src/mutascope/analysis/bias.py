"""Max/min bias: is a matrix more sensitive to one sign of the written value?

**Unit**: the tile. Its two mutants (``max`` and ``min``, or a size-matched
``sym:x`` and ``sym:-x``) are one paired observation (:mod:`.tile_scores`).
**Tests** (exact, :mod:`.exact`): for the NSM call, McNemar's test on the
tiles that are NSMs under one kind only; for the effect size, Wilcoxon's
signed-rank test of the paired differences (first kind minus second).
**Effect size**: the discordant counts (NSM), or the median paired
difference with its distribution-free 95 % interval and the rank-biserial
correlation (effect). **Family**: every matrix of a probe, per kind pair and
readout; ``q_value`` is BH over it, ``p_floor`` the smallest p the tiles allow.

**Size of the written value.** ``max`` and ``min`` of a matrix are rarely
equal in size, and a larger value is a larger perturbation: a bias towards
the kind with the larger |value| may be nothing but size. Every row carries
``size_ratio`` = |value of the first kind| / |value of the second| and the
kind whose value is larger; ``size_verdict`` says, for a called bias,
whether size accounts for it. With a size-matched pair ``sym:x``/``sym:-x``
in the screen this rests on a direct test (:func:`size_matched`): per tile,
the max - min difference minus the sym:x - sym:-x difference, Wilcoxon's
signed rank over the matrix's tiles. A bias is *explained by size* when
max - min exceeds the size-matched difference towards the larger value and
the size-matched pair itself is not biased; *size and sign* when it exceeds
it and the pair is biased the same way; *survives size matching* when the
pair is biased the same way and max - min does not exceed it; *reversed
when size-matched* when the pair is biased the other way; *not separated
from size* when neither test decides. With no size-matched pair in the
screen, whether it points *towards* or *against* the larger value (only the
latter excludes size as the explanation).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .exact import bh, mcnemar, signed_rank
from .readouts import check_readout, effect_rows, value_column
from .tile_scores import MATRIX_KEYS, TILE_KEYS, kind_pairs, kind_values, paired

PAIR = ["pair", "kind_a", "kind_b", "value_a", "value_b", "size_ratio", "larger"]
NSM_COLUMNS = MATRIX_KEYS + PAIR + ["tiles", "both", "a_only", "b_only", "neither", "p_value", "p_floor"]
EFFECT_COLUMNS = (
    MATRIX_KEYS
    + PAIR
    + [
        "tiles",
        "median_a",
        "median_b",
        "median_difference",
        "ci_low",
        "ci_high",
        "rank_biserial",
        "median_difference_per_token",
        "p_value",
        "p_floor",
    ]
)
CALL = ["q_value", "bias", "size_verdict"]
SIZE_MATCHED = ("sym:1", "sym:-1")


def bias(frame: pd.DataFrame, alpha: float = 0.05, readout: str = "nsm") -> pd.DataFrame:
    """One row per (probe, layer, matrix, kind pair): the paired test, q and the call."""
    check_readout(readout)
    source = frame if readout == "nsm" else effect_rows(frame, readout)
    columns = (NSM_COLUMNS if readout == "nsm" else EFFECT_COLUMNS) + CALL
    parts = [_pair_tests(source, pair, readout) for pair in kind_pairs(source)]
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(columns=columns)
    out = pd.concat(parts, ignore_index=True)
    out = _with_values(out, kind_values(frame))
    out["q_value"] = np.nan
    for _, idx in out.groupby(["probe_id", "pair"], sort=False).indices.items():
        out.loc[out.index[idx], "q_value"] = bh(out["p_value"].to_numpy()[idx])
    first_larger = out["a_only"] > out["b_only"] if readout == "nsm" else out["rank_biserial"] > 0
    out["bias"] = np.where(out["q_value"] < alpha, np.where(first_larger, out["kind_a"], out["kind_b"]), "none")
    out["size_verdict"] = _size_verdicts(out, size_matched(frame, alpha, readout))
    return out[columns]


def _pair_tests(frame: pd.DataFrame, pair: tuple[str, str], readout: str) -> pd.DataFrame:
    column = value_column(readout)
    wide = paired(frame, pair, column)
    if readout == "effect" and "effect_per_token" in frame.columns:
        per_token = paired(frame, pair, "effect_per_token")
        wide = wide.merge(per_token, on=list(wide.columns[:5]), how="left", suffixes=("", "_tok"))
    rows = []
    for key, g in wide.groupby(MATRIX_KEYS, sort=True):
        a, b = g["a"].to_numpy(dtype=float), g["b"].to_numpy(dtype=float)
        if readout == "nsm":
            a, b = a.astype(bool), b.astype(bool)
            first, second = int((a & ~b).sum()), int((~a & b).sum())
            p, floor = mcnemar(first, second)
            rows.append((*key, len(g), int((a & b).sum()), first, second, int((~a & ~b).sum()), p, floor))
        else:
            t = signed_rank(a - b)
            tok = (g["a_tok"] - g["b_tok"]).median() if "a_tok" in g else np.nan
            rows.append(
                (
                    *key,
                    len(g),
                    float(np.median(a)),
                    float(np.median(b)),
                    t["median_difference"],
                    t["ci_low"],
                    t["ci_high"],
                    t["rank_biserial"],
                    float(tok),
                    t["p_value"],
                    t["p_floor"],
                )
            )
    names = [c for c in (NSM_COLUMNS if readout == "nsm" else EFFECT_COLUMNS) if c not in PAIR]
    out = pd.DataFrame(rows, columns=names)
    out["pair"], out["kind_a"], out["kind_b"] = f"{pair[0]}/{pair[1]}", pair[0], pair[1]
    return out


def _with_values(out: pd.DataFrame, values: pd.DataFrame) -> pd.DataFrame:
    """The value each kind of the pair writes, their size ratio and the larger kind."""
    v = values.set_index(["layer", "matrix", "kind"])["value"]

    def look(kinds):
        idx = pd.MultiIndex.from_arrays([out["layer"], out["matrix"], kinds])
        return v.reindex(idx).to_numpy(dtype=float) if len(v) else np.full(len(out), np.nan)

    out["value_a"], out["value_b"] = look(out["kind_a"]), look(out["kind_b"])
    with np.errstate(invalid="ignore", divide="ignore"):
        out["size_ratio"] = np.abs(out["value_a"]) / np.abs(out["value_b"])
    out["larger"] = np.where(
        out["size_ratio"] > 1, out["kind_a"], np.where(out["size_ratio"] < 1, out["kind_b"], "equal")
    )
    return out


def _size_verdicts(out: pd.DataFrame, direct: pd.DataFrame) -> np.ndarray:
    """Each called bias's verdict on size (module docstring): from the direct paired test
    against the size-matched pair where the screen has one, else towards/against the larger value."""
    control_pair = "/".join(SIZE_MATCHED)
    matched = out[out["pair"] == control_pair].set_index(MATRIX_KEYS)["bias"]
    excess = (
        direct[direct["control"] == control_pair].set_index(MATRIX_KEYS + ["pair"])["excess"]
        if len(direct)
        else pd.Series(dtype=object)
    )
    verdicts = []
    for r in out.itertuples(index=False):
        if r.bias == "none":
            verdicts.append("")
        elif r.kind_a == r.kind_b or r.pair == control_pair or r.larger == "equal":
            verdicts.append("size-matched" if r.larger == "equal" else "")
        elif (r.probe_id, r.layer, r.matrix) in matched.index:
            control = matched.loc[(r.probe_id, r.layer, r.matrix)]
            same = control != "none" and (control == SIZE_MATCHED[0]) == (r.bias == r.kind_a)
            beyond = excess.get((r.probe_id, r.layer, r.matrix, r.pair), "none")
            if control != "none" and not same:
                verdicts.append("reversed when size-matched")
            elif beyond == r.bias and r.bias == r.larger:
                verdicts.append("size and sign" if same else "explained by size")
            elif same:
                verdicts.append("survives size matching")
            elif beyond == r.bias:
                verdicts.append("against the larger value")
            else:
                verdicts.append("not separated from size")
        else:
            verdicts.append("towards the larger value" if r.bias == r.larger else "against the larger value")
    return np.array(verdicts, dtype=object)


SIZE_MATCHED_COLUMNS = MATRIX_KEYS + [
    "pair",
    "control",
    "larger",
    "tiles",
    "difference",
    "control_difference",
    "median_excess",
    "ci_low",
    "ci_high",
    "rank_biserial",
    "p_value",
    "p_floor",
    "q_value",
    "excess",
]


def size_matched(frame: pd.DataFrame, alpha: float = 0.05, readout: str = "nsm") -> pd.DataFrame:
    """Is a matrix's max - min difference larger than its size-matched difference? The direct test
    behind "explained by size" (module docstring), one row per (probe, layer, matrix, size-matched pair).

    **Unit**: the tile; per tile ``(max - min) - (sym:x - sym:-x)`` of the readout (the call as 0/1,
    the effect, or the residual), one paired observation. **Test**: Wilcoxon's signed rank over the
    matrix's tiles, exact, two-sided (:func:`.exact.signed_rank`). **Effect size**: the median of
    those per-tile excesses with its 95 % interval and the rank-biserial correlation; ``difference``
    and ``control_difference`` are the medians of the two paired differences. **Family**: every
    matrix of a probe, per size-matched pair; ``q_value`` is BH over it. ``excess`` names the kind
    the max - min difference leans towards beyond the size-matched one (``max`` where it is larger,
    ``min`` where smaller) at q < ``alpha``, else ``none``; ``larger`` is the kind of the pair that
    writes the larger |value|. If the effect depended on |value| alone, max - min would exceed the
    size-matched difference towards ``larger``; if only on the sign, the two would be equal.
    """
    check_readout(readout)
    source = frame if readout == "nsm" else effect_rows(frame, readout)
    column = value_column(readout)
    pairs = kind_pairs(source) if len(source) else []
    main = [p for p in pairs if p[0] == "max"]
    controls = [p for p in pairs if p[0].startswith("sym:")]
    if not main or not controls:
        return pd.DataFrame(columns=SIZE_MATCHED_COLUMNS)
    wide_main = paired(source, main[0], column)
    values = kind_values(frame)
    rows = []
    for control in controls:
        wide = wide_main.merge(paired(source, control, column), on=TILE_KEYS, suffixes=("", "_c"))
        for key, g in wide.groupby(MATRIX_KEYS, sort=True):
            d = g["a"].to_numpy(dtype=float) - g["b"].to_numpy(dtype=float)
            dc = g["a_c"].to_numpy(dtype=float) - g["b_c"].to_numpy(dtype=float)
            t = signed_rank(d - dc)
            rows.append(
                (
                    *key,
                    "/".join(main[0]),
                    "/".join(control),
                    len(g),
                    float(np.median(d)),
                    float(np.median(dc)),
                    t["median_difference"],
                    t["ci_low"],
                    t["ci_high"],
                    t["rank_biserial"],
                    t["p_value"],
                    t["p_floor"],
                )
            )
    names = [c for c in SIZE_MATCHED_COLUMNS if c not in ("larger", "q_value", "excess")]
    out = pd.DataFrame(rows, columns=names)
    if out.empty:
        return pd.DataFrame(columns=SIZE_MATCHED_COLUMNS)
    sized = _with_values(out.assign(kind_a=main[0][0], kind_b=main[0][1]), values)
    out["larger"] = sized["larger"].to_numpy()
    out["q_value"] = np.nan
    for _, idx in out.groupby(["probe_id", "control"], sort=False).indices.items():
        out.loc[out.index[idx], "q_value"] = bh(out["p_value"].to_numpy()[idx])
    out["excess"] = np.where(out["q_value"] < alpha, np.where(out["rank_biserial"] > 0, main[0][0], main[0][1]), "none")
    return out[SIZE_MATCHED_COLUMNS]


SIZE_COLUMNS = [
    "probe_id",
    "pair",
    "matrices",
    "called",
    "towards_larger",
    "against_larger",
    "p_direction",
    "spearman_size",
    "p_spearman",
    "p_floor_spearman",
]


def bias_size(table: pd.DataFrame, permutations: int = 9999, seed: int = 0) -> pd.DataFrame:
    """Does the bias follow the size of the written values? One row per probe and kind pair.

    ``towards_larger``/``against_larger``: called biases in the direction of the kind with
    the larger |value| or against it, with the exact two-sided binomial p of that split
    (``p_direction``, 1/2 under "size does not matter"). ``spearman_size``: Spearman's
    correlation over the matrices between log(size ratio) and the bias statistic
    (rank-biserial for the effect; (a_only - b_only) / discordant for the NSM call), with a
    permutation p (``permutations`` shuffles, floor stated).
    """
    rows = []
    if table.empty:
        return pd.DataFrame(columns=SIZE_COLUMNS)
    rng = np.random.default_rng(seed)
    for (probe, pair), g in table.groupby(["probe_id", "pair"], sort=False):
        called = g[g["bias"] != "none"]
        towards = int((called["bias"] == called["larger"]).sum())
        against = int(((called["larger"] != "equal") & (called["bias"] != called["larger"])).sum())
        p_dir = mcnemar(towards, against)[0]
        if "rank_biserial" in g:
            stat = g["rank_biserial"].to_numpy(dtype=float)
        else:
            disc = (g["a_only"] + g["b_only"]).to_numpy(dtype=float)
            with np.errstate(invalid="ignore", divide="ignore"):
                stat = (g["a_only"] - g["b_only"]).to_numpy(dtype=float) / disc
        size = np.log(g["size_ratio"].to_numpy(dtype=float))
        ok = np.isfinite(stat) & np.isfinite(size)
        rho, p_rho, floor = _spearman_permutation(size[ok], stat[ok], permutations, rng)
        rows.append((probe, pair, len(g), len(called), towards, against, p_dir, rho, p_rho, floor))
    return pd.DataFrame(rows, columns=SIZE_COLUMNS)


def _spearman_permutation(x: np.ndarray, y: np.ndarray, n: int, rng: np.random.Generator):
    """Spearman's rho with a two-sided permutation p (all shuffles at once) and its floor."""
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return np.nan, np.nan, np.nan
    rx = pd.Series(x).rank().to_numpy()
    ry = pd.Series(y).rank().to_numpy()
    rx, ry = (rx - rx.mean()) / np.linalg.norm(rx - rx.mean()), (ry - ry.mean()) / np.linalg.norm(ry - ry.mean())
    rho = float(rx @ ry)
    shuffled = np.argsort(rng.random((n, len(ry))), axis=1)
    null = ry[shuffled] @ rx
    p = (1 + int(np.sum(np.abs(null) >= abs(rho) - 1e-12))) / (n + 1)
    return rho, p, 1 / (n + 1)
