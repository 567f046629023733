"""Predicted maps: the first-order term against finite differences, tile sums against the full
gradient, the streaming reduction leaves no gradient behind."""

import numpy as np
import pytest
import torch

from helpers import text_probes
from mutascope.engine import ReferenceEngine, prepare_probes
from mutascope.plan import PlanSpec, build_plan
from mutascope.plan.mutation import applied
from mutascope.predict import gradient_sums, predictions, tile_sums
from mutascope.predict.scores import wt_loglik
from mutascope.testing import tiny_model


@pytest.fixture(scope="module", params=["llama", "gpt2", "phi3"])
def case(request):
    subject = tiny_model(request.param, dtype="float64")
    probes = prepare_probes(subject, ReferenceEngine(subject), text_probes(6))
    return subject, probes


def test_tile_sums_equal_the_full_gradient_and_no_gradient_is_left(case):
    subject, probes = case
    tile = (16, 16)
    sums = gradient_sums(subject, wt_loglik(subject, probes[0]), tile)
    params = dict(subject.model.named_parameters())
    assert all(p.grad is None and not p.requires_grad for p in params.values())
    refs = subject.anatomy.refs()
    names = sorted({r.param_name for r in refs})
    with torch.enable_grad():
        for n in names:
            params[n].requires_grad_(True)
        value = wt_loglik(subject, probes[0])()
        grads = dict(zip(names, torch.autograd.grad(value, [params[n] for n in names])))
        for n in names:
            params[n].requires_grad_(False)
    assert sums.value == pytest.approx(float(value.detach()), rel=1e-12)
    for r in refs:
        g = grads[r.param_name]
        n = r.shape[0]
        g = g[:, r.offset : r.offset + n].T if r.transposed else g[r.offset : r.offset + n]
        w = subject.anatomy.weight(r.layer, r.matrix)
        key = (r.layer, r.matrix)
        np.testing.assert_allclose(sums.g[key], tile_sums(g, tile), rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(sums.gw[key], tile_sums(g * w, tile), rtol=1e-10, atol=1e-14)
        assert sums.g[key].shape == (-(-r.shape[0] // 16), -(-r.shape[1] // 16))


def _directions(subject, mutations):
    """Each mutation's change V - W of its tile (built by applying and restoring it)."""
    out = []
    for m in mutations:
        weight = subject.anatomy.weight(m.layer, m.matrix)
        tile = weight[m.r0 : m.r1, m.c0 : m.c1]
        original = tile.clone()
        with applied(weight, m):
            out.append((tile, original, tile.clone() - original))
    return out


def _chosen(subject, n=24):
    plan = build_plan(
        PlanSpec.parse(layers="0-2", kinds="max,min,zero,value:0.3,scale:2,sym:-0.5", tile=16), subject.anatomy
    )
    rng = np.random.default_rng(0)
    return [plan.mutations[i] for i in sorted(rng.choice(len(plan), n, replace=False))]


def test_the_predicted_effect_equals_a_finite_difference_of_logprob_drop():
    """-d/d(eps) L(W + eps (V - W)) at eps = 0 by a five-point stencil, on a float64 GPT-2 (whose
    norms stay in float64; Llama's RMSNorm computes in float32, too coarse for differences)."""
    subject = tiny_model("gpt2", dtype="float64")
    probes = prepare_probes(subject, ReferenceEngine(subject), text_probes(6))
    chosen = _chosen(subject)
    table = predictions(subject, chosen, probes[:1], (16, 16)).set_index("mutation_id")
    objective, h = wt_loglik(subject, probes[0]), 1e-3
    for m, (tile, original, delta) in zip(chosen, _directions(subject, chosen)):
        f = {}
        for k in (2, 1, -1, -2):
            tile.copy_(original + k * h * delta)
            with torch.inference_mode():
                f[k] = float(objective())
            tile.copy_(original)
        slope = (-f[2] + 8 * f[1] - 8 * f[-1] + f[-2]) / (12 * h)
        assert table.loc[m.mutation_id, "predicted"] == pytest.approx(-slope, rel=1e-6, abs=1e-9), m.label()


def test_the_predicted_effect_is_the_directional_derivative_in_every_family(case):
    """The same term by autograd along each mutation's own direction: checks the tile
    reduction and each kind's formula on fused (phi3) and transposed (gpt2) storage."""
    subject, probes = case
    chosen = _chosen(subject)
    table = predictions(subject, chosen, probes[:1], (16, 16)).set_index("mutation_id")
    objective = wt_loglik(subject, probes[0])
    for m, (tile, _original, delta) in zip(chosen, _directions(subject, chosen)):
        eps = torch.zeros((), dtype=tile.dtype, requires_grad=True)
        module = subject.model.get_submodule(subject.anatomy.ref(m.layer, m.matrix).module_path)
        r0, c0 = m.r0, m.c0

        def shifted(mod, args, output, m=m, r0=r0, c0=c0, eps=eps, delta=delta):
            x = args[0]
            extra = x[..., c0 : c0 + delta.shape[1]] @ (eps * delta).T
            out = output.clone()
            out[
                ...,
                r0 + subject.anatomy.ref(m.layer, m.matrix).offset : r0
                + subject.anatomy.ref(m.layer, m.matrix).offset
                + delta.shape[0],
            ] += extra
            return out

        handle = module.register_forward_hook(shifted)
        try:
            with torch.enable_grad():
                (slope,) = torch.autograd.grad(objective(), eps)
        finally:
            handle.remove()
        assert table.loc[m.mutation_id, "predicted"] == pytest.approx(-float(slope), rel=1e-6, abs=1e-9), m.label()


def test_scores_are_deterministic_and_cover_every_mutant(case):
    subject, probes = case
    plan = build_plan(PlanSpec.parse(layers="1", kinds="max,min,noise:0.1", tile=16), subject.anatomy)
    before = subject.content_hash()
    a = predictions(subject, plan.mutations, probes, (16, 16))
    assert subject.content_hash() == before  # no weight is ever written (float64 models alias their copies)
    b = predictions(subject, plan.mutations, probes, (16, 16))
    assert len(a) == len(plan) * len(probes) and a.equals(b)
    noise = a.merge(
        __import__("pandas").DataFrame(
            {"mutation_id": [m.mutation_id for m in plan], "kind": [str(m.kind) for m in plan]}
        )
    )
    assert noise.loc[noise["kind"] == "noise:0.1", "predicted"].isna().all()
    assert noise.loc[noise["kind"] != "noise:0.1", "predicted"].notna().all()
    assert (a["magnitude"] > 0).all() and (a["change"] > 0).all() and (a["wanda"] > 0).all()
    assert (a["activation"] >= 0).all() and a["superweight"].isna().all()


def test_agreement_measures_skill_and_chance_with_tile_bootstrap_intervals():
    import pandas as pd

    from mutascope.analysis.synthetic import noise_frame
    from mutascope.predict.agreement import agreement, recall_curve

    f = noise_frame(0, probes=("a",), layers=(0, 1, 2))
    rng = np.random.default_rng(1)
    pred = pd.DataFrame(
        {
            "mutation_id": f["mutation_id"],
            "probe_id": f["probe_id"],
            "predicted": np.log(f["effect"]) + rng.normal(0, 0.3, len(f)),  # informative
            "magnitude": rng.random(len(f)),
        }
    )  # no skill
    a = agreement(f, pred).set_index(["score", "matrix"])
    good, chance = a.loc[("predicted", "all")], a.loc[("magnitude", "all")]
    assert good["spearman"] > 0.9 and good["auc"] > 0.8 and good["recall_10"] > 0.6
    assert good["spearman_low"] < good["spearman"] < good["spearman_high"]
    assert abs(chance["spearman"]) < 0.1 and abs(chance["auc"] - 0.5) < 0.05 and chance["recall_10"] < 0.25
    assert chance["spearman_low"] < 0 < chance["spearman_high"]
    assert set(a.index.get_level_values("matrix")) == {"all", *f["matrix"].unique()}
    effect = f["effect"].to_numpy()
    best = recall_curve(effect, np.argsort(-effect))
    assert best["found"].iloc[0] == 0 and best.loc[best["screened"] >= 0.01, "found"].iloc[0] == 1.0
    plan = recall_curve(effect, np.arange(len(effect)))
    assert plan["found"].iloc[-1] == 1.0 and 0.2 < plan.loc[50, "found"] < 0.8


def test_predicted_order_keeps_the_chunks_and_runs_the_strongest_first():
    import pandas as pd

    from mutascope.predict.order import predicted_order

    chunks = [[0, 1], [2, 3], [4, 5], [6]]
    pred = pd.DataFrame(
        {
            "mutation_id": [0, 1, 2, 3, 4, 5, 0, 1],
            "probe_id": list("aaaaaabb"),
            "predicted": [0.1, -0.2, 5.0, 0.0, -3.0, 1.0, 0.1, 0.1],
        }
    )
    assert predicted_order(chunks, pred) == [1, 2, 0, 3]  # 5.0 > 4.0 > 0.5 > (unpredicted, last)


def test_recall_curves_and_figures_of_a_predicted_map():
    import pandas as pd

    from mutascope.analysis.synthetic import noise_frame
    from mutascope.report.prediction_figures import prediction_scatter, recall_curves, recall_figure

    f = noise_frame(2, layers=tuple(range(6)))
    pred = pd.DataFrame({"mutation_id": f["mutation_id"], "probe_id": f["probe_id"], "predicted": f["effect"] * 1.1})
    curves = recall_curves(f, pred)
    assert set(curves["order"]) == {
        "first order (each mutant)",
        "predicted (chunks, as screened)",
        "plan order",
        "random order",
    }
    at10 = curves[curves["screened"].round(2) == 0.10].set_index(["probe_id", "order"])["found"]
    assert at10[("a", "first order (each mutant)")] == 1.0  # a perfect prediction finds the whole top 1 % first
    assert at10[("a", "predicted (chunks, as screened)")] >= at10[("a", "plan order")]
    assert prediction_scatter(f, pred).axes and recall_figure(f, pred).axes


def test_a_schedule_counts_finished_chunks_and_weights_them_by_cost():
    """Two chunks, the first of early layers (three times the cost): a quarter of the way
    in, nothing is finished; the first chunk ends at three quarters of the time."""
    import pandas as pd

    from mutascope.predict import chunk_cost, schedule

    predictions = pd.DataFrame({"mutation_id": [0, 1, 2, 3], "probe_id": "p", "predicted": [5.0, 4.0, 1.0, 0.5]})
    chunks = [[0, 1], [2, 3]]
    costs = [chunk_cost([0, 0], 5), chunk_cost([4, 4], 5)]
    assert costs == [12.0, 4.0]
    plan = schedule(chunks, predictions, costs, share=0.25)
    assert plan.ends.tolist() == [0.75, 1.0]
    assert plan.at(0.25) == (0, 0.0, 0.0)
    assert plan.at(0.75) == (1, 0.5, 1.0)
    assert plan.at(1.0) == (2, 1.0, 1.0)
