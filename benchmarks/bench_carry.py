"""Does carrying a `v`/`o`/`up`/`down` tile's change exactly through the next norm help the local estimate?

Issue 30's open question (docs/predicted-maps.md, "The local estimate on the SmolLM2 atlas"). For
these matrices the block's output change ``dh`` (the tile's effect on the residual stream at every
position) is linear in the tile, so the first-order term ``-g_r . dh`` is exact up to the residual.
The objective depends on the residual ``r + dh`` in two ways: through the norm that follows (the
next block's input norm; after `v`/`o` the same layer's post-attention norm; after the last
block the final norm) and through the skip connection past that block. With ``g_n`` the gradient
at the norm's output and ``J`` the norm's Jacobian at ``r``, ``g_r = g_skip + J^T g_n`` and

    first order:  -(g_skip . dh + g_n . J dh)            (today's ``local`` = ``predicted``)
    carried:      -(g_skip . dh + g_n . (n(r + dh) - n(r)))
                = first order - g_n . (n(r + dh) - n(r) - J dh)

with ``n`` the model's own RMSNorm (its weight and eps), computed in float64. This script computes
the carried estimate of every `v`/`o`/`up`/`down` mutant of a `mutascope predict` file's plan on
SmolLM2 (a Llama-family model: RMSNorm, no post-norms), swaps it into the ``local`` column and prints
the agreement with the atlas's exact effects beside today's, by matrix type and over the genome.

    PYTHONPATH=src python benchmarks/bench_carry.py /tmp/atlas-predict.duckdb \
        --exact docs/atlas/tables/tiles.parquet
    PYTHONPATH=src python benchmarks/bench_carry.py --check   # r + dh and n(r + dh) against hooks
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

CARRIED = ("v", "o", "up", "down")


def rms(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    return weight * x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps)


def rms_jvp(x: torch.Tensor, dx: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    s = torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return weight * (dx / s - x * (x * dx).mean(-1, keepdim=True) / s**3)


def carry(subject, probe, by_key: dict, seen: dict | None = None) -> dict[int, tuple[float, float]]:
    """Per mutant of ``by_key`` (v/o/up/down keys): (first order from dh, carried) for one probe.
    ``seen``, if given, gets per key its first mutant's (mutant, r + dh, n(r), the norm module)."""
    from mutascope.predict.local import _Attention, _Mlp, _output_changes, dense, recording
    from mutascope.predict.scores import wt_loglik
    from mutascope.predict.tilesums import gradient_sums

    anatomy, model = subject.anatomy, subject.model
    layers = sorted({k[0] for k in by_key})
    n_layers = anatomy.n_layers
    keys = {(layer, m) for layer in layers for m in ("q", "gate")}  # records attention and MLP inputs
    norms: dict[tuple[int, str], dict] = {}  # (layer, "attn" | "mlp") -> r, g_r, g_n, module

    def norm_after(layer: int, part: str):
        if part == "attn":
            return model.get_submodule(f"{anatomy.block_path(layer)}.post_attention_layernorm")
        if layer + 1 < n_layers:
            return model.get_submodule(f"{anatomy.block_path(layer + 1)}.input_layernorm")
        return model.model.norm

    def hook(slot):
        def fn(module, args, output):
            x = args[0]
            slot["r"] = x.detach()[0].clone()
            if x.requires_grad:
                x.register_hook(lambda g: slot.__setitem__("g_r", g.detach()[0].clone()))
                output.register_hook(lambda g: slot.__setitem__("g_n", g.detach()[0].clone()))

        return fn

    handles = []
    for layer in layers:
        for part in ("attn", "mlp"):
            slot = norms[(layer, part)] = {"module": norm_after(layer, part)}
            handles.append(slot["module"].register_forward_hook(hook(slot)))
    try:
        with recording(subject, keys) as rec:
            gradient_sums(subject, wt_loglik(subject, probe), (64, 64), set(by_key))
    finally:
        for h in handles:
            h.remove()

    out: dict[int, tuple[float, float]] = {}
    f64 = torch.float64
    with torch.no_grad():
        for (layer, matrix), ms in sorted(by_key.items()):
            lr = rec.layers[layer]
            slot = norms[(layer, "attn" if matrix in ("v", "o") else "mlp")]
            r, g_r, g_n = (slot[k].to(f64) for k in ("r", "g_r", "g_n"))
            module = slot["module"]
            weight, eps = module.weight.detach().to(f64), float(module.variance_epsilon)
            n_r = rms(r, weight, eps)
            if matrix in ("v", "o"):
                att = _Attention(subject, lr, layer)
                w_o = anatomy.weight(layer, "o").detach().to(f64)
                x_o = att.wt.transpose(0, 1).reshape(att.x.shape[0], -1)  # o's input (T, Hq*hd)
                rep = att.hq // att.hkv
                scores = att.q @ att.k.repeat_interleave(rep, 0).transpose(-1, -2) * att.scaling
                probs = torch.softmax(scores + att.mask, dim=-1)  # (Hq, T, T)
            else:
                mlp = _Mlp(subject, lr, layer)
                w_down = anatomy.weight(layer, "down").detach().to(f64)
                act = mlp.act(mlp.pre)
                x_down = act * mlp.up
            per = 32
            for i in range(0, len(ms), per):
                chunk = ms[i : i + per]
                if matrix == "o":
                    part, rows = _output_changes(subject, x_o, chunk)
                    dh = dense(part, rows, w_o.shape[0])
                elif matrix == "down":
                    part, rows = _output_changes(subject, x_down, chunk)
                    dh = dense(part, rows, w_down.shape[0])
                elif matrix == "v":
                    part, rows = _output_changes(subject, att.x, chunk)
                    dv = dense(part, rows, att.hkv * att.hd).view(len(chunk), -1, att.hkv, att.hd)
                    dv = dv.permute(0, 2, 1, 3).repeat_interleave(rep, 1)  # (B, Hq, T, hd)
                    da = (probs[None] @ dv).permute(0, 2, 1, 3).reshape(len(chunk), dv.shape[2], -1)
                    dh = da @ w_o.T
                else:  # up, gated: down's input changes by act(g) * du
                    part, rows = _output_changes(subject, mlp.x, chunk)
                    at = rows.clamp(max=act.shape[1] - 1)
                    d_in = dense(part * act.T[at].transpose(1, 2), rows, act.shape[1])
                    dh = d_in @ w_down.T
                if seen is not None:
                    seen.setdefault((layer, matrix), (chunk[0], r + dh[0], n_r, module))
                first = -(g_r[None] * dh).sum(dim=(1, 2))
                curv = rms(r[None] + dh, weight, eps) - n_r[None] - rms_jvp(r[None], dh, weight, eps)
                carried = first - (g_n[None] * curv).sum(dim=(1, 2))
                for m, a, b in zip(chunk, first.tolist(), carried.tolist()):
                    out[m.mutation_id] = (a, b)
    return out


def check_against_hooks(layers: str = "3,29") -> None:
    """For one mutant per (layer, matrix): the residual r + dh and the norm's change n(r + dh) - n(r)
    this script computes, against writing the tile and running the model (hooks on the real norm)."""
    import mutascope as ms
    from mutascope.engine import ReferenceEngine, prepare_probes
    from mutascope.plan import PlanSpec, build_plan
    from mutascope.plan.mutation import applied
    from mutascope.probes import Decoding

    subject = ms.load_model()
    [probe] = ms.resolve_probes(["drosophila"], subject, max_new_tokens=24, decoding=Decoding("greedy"))
    [prepared] = prepare_probes(subject, ReferenceEngine(subject), [probe])
    by_key: dict = {}
    for m in build_plan(PlanSpec.parse(layers=layers, kinds="max,min"), subject.anatomy).mutations:
        if m.matrix in CARRIED and len(by_key.get((m.layer, m.matrix), [])) < 6:
            by_key.setdefault((m.layer, m.matrix), []).append(m)
    by_key = {k: v[5:] for k, v in by_key.items()}
    seen: dict = {}
    carry(subject, prepared, by_key, seen)
    ids = torch.tensor([list(prepared.prompt) + list(prepared.wt_tokens[:-1])])
    for m, r_dh, n_r, module in seen.values():
        got: dict = {}
        handle = module.register_forward_hook(
            lambda mod, a, o, got=got: got.update(r=a[0][0].double(), n=o[0].double())
        )
        with torch.no_grad(), applied(subject.anatomy.weight(m.layer, m.matrix), m):
            subject.model(input_ids=ids, use_cache=False)
        handle.remove()
        mine = rms(r_dh, module.weight.detach().double(), module.variance_epsilon) - n_r
        actual = got["n"] - n_r
        print(
            f"{m.label()}: r + dh off by {float((got['r'] - r_dh).abs().max() / got['r'].abs().max()):.1e}, "
            f"n(r + dh) - n(r) off by {float((mine - actual).abs().max() / actual.abs().max()):.1e} (relative)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?")
    parser.add_argument("--exact")
    parser.add_argument("--layers", default="all")
    parser.add_argument("--save", default=None, help="keep the carried estimates as Parquet (and reuse them)")
    parser.add_argument("--check", action="store_true", help="only check r + dh and the norm's change, by hooks")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    torch.set_num_threads(1)
    if args.check:
        check_against_hooks()
        return
    if not args.results or not args.exact:
        parser.error("a results file and --exact are needed (or --check alone)")

    from bench_agreement import exact_frame

    import mutascope as ms
    from mutascope.engine import ReferenceEngine, prepare_probes
    from mutascope.plan import PlanSpec, build_plan
    from mutascope.predict import agreement
    from mutascope.probes import Decoding
    from mutascope.report.prediction_figures import recall_curves
    from mutascope.store import open_results

    with open_results(args.results) as results:
        frame = exact_frame(args.exact, results)
        predictions = results.predictions.copy()
        stored = results.mutations
    subject = ms.load_model()
    probes = ms.resolve_probes(["drosophila", "python"], subject, max_new_tokens=24, decoding=Decoding("greedy"))
    prepared = prepare_probes(subject, ReferenceEngine(subject), probes)
    plan = build_plan(PlanSpec.parse(layers=args.layers, kinds="max,min"), subject.anatomy)
    mine = pd.DataFrame([(m.mutation_id, m.layer, m.matrix, m.r0, m.c0) for m in plan.mutations])
    assert (mine.to_numpy() == stored[["mutation_id", "layer", "matrix", "r0", "c0"]].to_numpy()[: len(mine)]).all()
    by_key: dict = {}
    for m in plan.mutations:
        if m.matrix in CARRIED:
            by_key.setdefault((m.layer, m.matrix), []).append(m)
    if args.save and Path(args.save).exists():
        got = pd.read_parquet(args.save)
    else:
        rows = []
        for p in prepared:
            t0 = time.process_time()
            estimates = carry(subject, p, by_key)
            rows += [(mid, p.id, first, carried) for mid, (first, carried) in estimates.items()]
            print(f"{p.id}: {len(estimates)} carried estimates, {time.process_time() - t0:.1f} s CPU", flush=True)
        got = pd.DataFrame(rows, columns=["mutation_id", "probe_id", "first", "carried"])
        if args.save:
            got.to_parquet(args.save)
    check = got.merge(predictions[["mutation_id", "probe_id", "predicted"]], on=["mutation_id", "probe_id"])
    rel = ((check["first"] - check["predicted"]).abs() / (check["predicted"].abs() + 1e-3)).max()
    print(f"first order from dh against the stored `predicted`: largest relative difference {rel:.2e}")

    carried = predictions.merge(got[["mutation_id", "probe_id", "carried"]], on=["mutation_id", "probe_id"], how="left")
    carried["local"] = carried["carried"].where(carried["carried"].notna(), carried["local"])
    carried = carried.drop(columns=["carried"])
    frame = frame[frame["mutation_id"].isin(mine[0])]
    pd.set_option("display.width", 200)
    for name, preds in (("today (local = first order for v/o/up/down)", predictions), ("carried", carried)):
        table = agreement(frame, preds[["mutation_id", "probe_id", "predicted", "local"]])
        t = table[table["score"] == "local_abs"][["probe_id", "matrix", "mutants", "spearman", "recall_1", "recall_10"]]
        print(f"\n|local|, {name}:")
        print(t.round(3).to_string(index=False))
        curves = recall_curves(frame, preds[["mutation_id", "probe_id", "predicted", "local"]])
        for (probe, order), g in curves.groupby(["probe_id", "order"], sort=False):
            if order.startswith("predicted"):
                at = float(g.loc[(g["screened"] - 0.10).abs().idxmin(), "found"])
                print(f"  {probe} {order}: top 1 % found in the first 10 %: {at:.3f}")
    print("\nhow far the norm moves the estimate: median |carried| / |first order|, share with |carried| < |first|")
    sized = got.merge(frame[["mutation_id", "probe_id", "matrix"]], on=["mutation_id", "probe_id"])
    ratio = (sized["carried"].abs() / sized["first"].abs()).rename("ratio")
    print(
        sized.assign(ratio=ratio, smaller=ratio < 1)
        .groupby(["probe_id", "matrix"])[["ratio", "smaller"]]
        .median()
        .round(3)
        .to_string()
    )
    print("\ncarried minus today, |local|, paired 95 % tile-bootstrap interval (200 resamples, seed 0):")
    print(paired(frame, predictions, carried).round(3).to_string(index=False))


def _spearman_recall(score: np.ndarray, effect: np.ndarray) -> tuple[float, float]:
    from scipy.stats import rankdata

    rho = float(np.corrcoef(rankdata(score), rankdata(effect))[0, 1])
    k = max(1, math.ceil(0.01 * len(score)))
    top = np.intersect1d(np.argpartition(-effect, k - 1)[:k], np.argpartition(-score, k - 1)[:k])
    return rho, len(top) / k


def paired(frame: pd.DataFrame, today: pd.DataFrame, carried: pd.DataFrame) -> pd.DataFrame:
    """Differences (carried - today) of Spearman and top-1 % recall of |local|, per probe and matrix
    type (and all), with a paired bootstrap over tiles (both estimates on the same resample)."""
    both = frame[["mutation_id", "probe_id", "layer", "matrix", "row", "col", "effect"]].merge(
        today[["mutation_id", "probe_id", "local"]], on=["mutation_id", "probe_id"]
    )
    both = both.merge(
        carried[["mutation_id", "probe_id", "local"]].rename(columns={"local": "carried"}),
        on=["mutation_id", "probe_id"],
    )
    both = both[both["effect"].notna()]
    rng = np.random.default_rng(0)
    rows = []
    for probe, p in both.groupby("probe_id", sort=False):
        for matrix, g in [("all", p), *((m, p[p["matrix"] == m]) for m in ("v", "o", "up", "down"))]:
            tiles = g.groupby(["layer", "matrix", "row", "col"], sort=False).ngroup().to_numpy()
            order = np.argsort(tiles, kind="stable")
            starts = np.searchsorted(tiles[order], np.arange(tiles.max() + 1))
            ends = np.append(starts[1:], len(tiles))
            e, a, b = (g[c].to_numpy(dtype=float) for c in ("effect", "local", "carried"))
            a, b = np.abs(a), np.abs(b)

            def diff(ix, e=e, a=a, b=b):
                return np.subtract(_spearman_recall(b[ix], e[ix]), _spearman_recall(a[ix], e[ix]))

            point = diff(np.arange(len(e)))
            boot = []
            for _ in range(200):
                pick = rng.integers(0, len(starts), len(starts))
                ix = np.concatenate([order[starts[t] : ends[t]] for t in pick])
                boot.append(diff(ix))
            lo, hi = np.percentile(np.array(boot), [2.5, 97.5], axis=0)
            rows.append([probe, matrix, point[0], lo[0], hi[0], point[1], lo[1], hi[1]])
    cols = ["probe", "matrix", "d_spearman", "low", "high", "d_recall_1", "low ", "high "]
    return pd.DataFrame(rows, columns=cols)


if __name__ == "__main__":
    main()
