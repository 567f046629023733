"""Activation patterns (arXiv 2405.17799) on tiny models: metric, statistics, tiles, pruning, CLI."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from helpers import screen_of
from mutascope import activation as act
from mutascope.errors import MutascopeError
from mutascope.testing import tiny_model

TEXTS = [
    "The cat sat on the mat.",
    "Once upon a time",
    "def add(a, b): return a +",
    "Hello world, the",
    "for i in range(10):",
]


@pytest.fixture(scope="module")
def llama64():
    return tiny_model("llama", dtype="float64")


def _full_float64(subject):
    """transformers' RMSNorm computes in float32 whatever the model dtype, which limits a
    finite difference to ~1e-7 relative; run it in the model's dtype so h = 1e-6 is exact enough."""
    import types

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.variance_epsilon))

    for module in subject.model.modules():
        if type(module).__name__.endswith("RMSNorm"):
            module.forward = types.MethodType(forward, module)
    return subject


def _logit(subject, ids, token):
    with torch.no_grad():
        return float(subject.model(input_ids=ids[None], use_cache=False).logits[0, -1, token])


@pytest.mark.parametrize("family", ["llama", "phi3", "gpt2"])
def test_metric_matches_finite_differences(family):
    """|w * dD/dw| from one backward equals |w * central difference| element by element,
    also in fused (phi3 qkv/gate_up, gpt2 c_attn) and transposed (gpt2 Conv1D) storage."""
    subject = _full_float64(tiny_model(family, dtype="float64"))
    ids = act.encode(subject, "Hello world, the")
    before = subject.content_hash()
    result = act.activation_maps(subject, ids)
    assert result.token == int(subject.model(input_ids=ids[None]).logits[0, -1].argmax())
    gen = torch.Generator().manual_seed(0)
    h = 1e-6
    for ref in subject.anatomy.refs():
        if ref.layer not in (0, subject.anatomy.n_layers - 1):
            continue
        w = subject.anatomy.weight(ref.layer, ref.matrix)
        assert result.maps[(ref.layer, ref.matrix)].shape == w.shape
        for _ in range(2):
            r, c = (int(torch.randint(n, (1,), generator=gen)) for n in w.shape)
            orig = float(w[r, c])
            w[r, c] = orig + h
            up = _logit(subject, ids, result.token)
            w[r, c] = orig - h
            down = _logit(subject, ids, result.token)
            w[r, c] = orig
            expected = abs(orig * (up - down) / (2 * h))
            got = float(result.maps[(ref.layer, ref.matrix)][r, c])
            assert got == pytest.approx(expected, rel=1e-5, abs=1e-10), (ref, r, c)
    assert subject.content_hash() == before


def test_gradient_flags_are_restored_also_on_error(llama64, monkeypatch):
    params = dict(llama64.model.named_parameters())
    norm = next(n for n in params if "norm" in n)
    params[norm].requires_grad_(True)  # a caller's own flag survives
    try:
        act.activation_maps(llama64, act.encode(llama64, "abc"))
        assert [n for n, p in params.items() if p.requires_grad] == [norm]
        assert all(p.grad is None for p in params.values())

        def boom(*a, **k):
            raise RuntimeError("boom")

        monkeypatch.setattr(torch.autograd, "grad", boom)
        with pytest.raises(RuntimeError, match="boom"):
            act.activation_maps(llama64, act.encode(llama64, "abc"))
        assert [n for n, p in params.items() if p.requires_grad] == [norm]
    finally:
        params[norm].requires_grad_(False)


def _direct(subject, domains):
    """Every map kept: per domain the list of {key: map}."""
    return {
        d: [act.activation_maps(subject, act.encode(subject, t)).maps for t in texts] for d, texts in domains.items()
    }


def _cos(a, b):
    return float(torch.dot(a, b) / (a.norm() * b.norm()))


@pytest.fixture(scope="module")
def streamed(llama64):
    domains = {"prose": TEXTS[:2] + TEXTS[3:4], "code": [TEXTS[2], TEXTS[4]]}
    direct = _direct(llama64, domains)
    objs = [act.Domain(name, tuple(texts), "test") for name, texts in domains.items()]
    acc64, inputs = act.collect(llama64, objs, similarity_inputs=8, similarity_dtype=torch.float64)
    acc16, _ = act.collect(llama64, objs, similarity_inputs=8)
    acc2, _ = act.collect(llama64, objs, similarity_inputs=2, similarity_dtype=torch.float64)
    return llama64, direct, acc64, acc16, acc2, inputs


def test_fractions_match_a_direct_computation_keeping_every_map(streamed):
    subject, direct, acc, _, acc2, inputs = streamed
    assert list(inputs["domain"]) == ["prose"] * 3 + ["code"] * 2
    every = [m for maps in direct.values() for m in maps]
    means = {d: {k: sum(m[k] for m in maps) / len(maps) for k in maps[0]} for d, maps in direct.items()}
    means["all"] = {k: sum(m[k] for m in every) / len(every) for k in every[0]}
    pooled = torch.cat([v.reshape(-1) for v in means["all"].values()])
    gammas = [float(q) for q in torch.quantile(pooled[:100_000], torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64))]
    gammas += [2e-6, 2e-5]
    for a in (acc, acc2):  # how many maps are kept for similarity does not change the means
        f = a.fractions(gammas)
        assert set(f["domain"]) == {"prose", "code", "all"}
        for r in f.itertuples():
            if r.matrix == "all":
                maps = [means[r.domain][(r.layer, m)] for m in subject.anatomy.matrices]
            else:
                maps = [means[r.domain][(r.layer, r.matrix)]]
            assert r.n_params == sum(m.numel() for m in maps)
            assert r.n_activated == sum(int((m > r.gamma).sum()) for m in maps), r
            assert r.fraction == r.n_activated / r.n_params
    counts = acc.layer_counts(gammas[1])
    f = acc.fractions([gammas[1]])
    assert list(counts) == list(f[(f.domain == "all") & (f.matrix == "all")].sort_values("layer")["n_activated"])


def test_similarities_match_a_direct_computation_keeping_every_map(streamed):
    subject, direct, acc64, acc16, acc2, _ = streamed
    layers, mats = subject.anatomy.n_layers, subject.anatomy.matrices
    flat = {
        d: [[torch.cat([m[(i, x)].reshape(-1) for x in mats]) for i in range(layers)] for m in maps]
        for d, maps in direct.items()
    }
    items = [(d, i) for d in ("prose", "code") for i in range(len(flat[d]))]
    pairs64 = acc64.pairs()
    assert len(pairs64) == layers * len(items) * (len(items) - 1) // 2
    for r, r16 in zip(pairs64.itertuples(), acc16.pairs().itertuples()):
        expected = _cos(flat[r.domain_a][r.index_a][r.layer], flat[r.domain_b][r.index_b][r.layer])
        assert r.cosine == pytest.approx(expected, abs=1e-12)
        assert r16.cosine == pytest.approx(expected, abs=2e-3)  # float16 storage, max-scaled
    sim = acc64.similarity().set_index(["layer", "domain_a", "domain_b"])["cosine_mean"]
    for layer in range(layers):

        def mean_cos(a_items, b_items, same, layer=layer):
            vals = [
                _cos(flat[a][i][layer], flat[b][j][layer])
                for (a, i) in a_items
                for (b, j) in b_items
                if not same or (a, i) < (b, j)
            ]
            return np.mean(vals)

        prose = [(d, i) for d, i in items if d == "prose"]
        code = [(d, i) for d, i in items if d == "code"]
        within = {"prose": mean_cos(prose, prose, True), "code": mean_cos(code, code, True)}
        assert sim[(layer, "prose", "prose")] == pytest.approx(within["prose"], abs=1e-12)
        assert sim[(layer, "code", "code")] == pytest.approx(within["code"], abs=1e-12)
        assert sim[(layer, "prose", "code")] == pytest.approx(mean_cos(prose, code, False), abs=1e-12)
        assert sim[(layer, "within", "within")] == pytest.approx(np.mean(list(within.values())), abs=1e-12)
        assert sim[(layer, "across", "across")] == pytest.approx(mean_cos(prose, code, False), abs=1e-12)
    # only the first two inputs of each domain are kept when similarity_inputs=2
    kept = acc2.pairs()
    assert set(kept["index_a"]) | set(kept["index_b"]) == {0, 1}
    found = act.findings(acc64.fractions(), acc64.similarity())
    assert list(found["metric"])[-2:] == ["cosine across domains", "cosine within domains"]


def test_parse_gammas():
    assert act.parse_gammas(None) == act.DEFAULT_GAMMAS
    assert {2e-5, 2e-6} <= set(act.DEFAULT_GAMMAS)
    assert act.parse_gammas(["2e-5,1e-3", "2e-6", "1e-3"]) == (2e-6, 2e-5, 1e-3)
    with pytest.raises(MutascopeError, match="not a number"):
        act.parse_gammas(["x"])
    with pytest.raises(MutascopeError, match=">= 0"):
        act.parse_gammas(["-1"])


# ---- tiles -------------------------------------------------------------------------------------------------


def test_pool_tiles_averages_ragged_edge_tiles_over_what_they_hold():
    a = torch.arange(200 * 96, dtype=torch.float64).reshape(200, 96)
    pooled = act.pool_tiles(a, (64, 64))
    assert pooled.shape == (4, 2)
    assert float(pooled[3, 1]) == pytest.approx(float(a[192:200, 64:96].mean()))
    assert float(pooled[1, 0]) == pytest.approx(float(a[64:128, 0:64].mean()))


def test_tile_frame_and_spearman_against_nsm_rates(streamed):
    subject, *_, acc, _, _ = streamed
    tiles = act.tile_frame(acc, (64, 64))
    per_domain = len(tiles[tiles.domain == "prose"])
    from mutascope.plan import TileGrid

    assert per_domain == sum(len(TileGrid(r.shape, (64, 64))) for r in subject.anatomy.refs())
    sel = tiles[(tiles.domain == "code") & (tiles.layer == 1) & (tiles.matrix == "gate")]
    expected = act.pool_tiles(acc.mean_map("code", 1, "gate"), (64, 64)).numpy()
    assert np.allclose(sel.sort_values(["row", "col"])["activation"].to_numpy(), expected.ravel())
    # a rate that rises with activation has rho 1; one that falls, -1
    base = tiles[tiles.domain == "all"][["layer", "matrix", "row", "col", "activation"]]
    rates = pd.concat(
        [
            base.assign(kind="max", nsm_rate=base["activation"].rank()),
            base.assign(kind="min", nsm_rate=-base["activation"]),
        ]
    ).drop(columns="activation")
    table, joined = act.screen_correlation(tiles, rates)
    got = table.set_index(["domain", "kind"])
    assert got.loc[("all", "max"), "spearman_rho"] == pytest.approx(1.0)
    assert got.loc[("all", "min"), "spearman_rho"] == pytest.approx(-1.0)
    assert got.loc[("all", "max"), "n_tiles"] == len(base)


def test_correlation_with_a_real_screen_file(tmp_path):
    from mutascope.plan import PlanSpec
    from mutascope.probes import Decoding, Probe

    subject = tiny_model("llama")
    out = tmp_path / "screen.duckdb"
    spec = PlanSpec.parse(layers="0", matrices="q,gate", kinds="max,zero")
    screen_of(subject, [Probe("hello", "Hello world, the", 3, Decoding("greedy"))], spec, out).run()
    acc, _ = act.collect(subject, [act.Domain("d", ("The cat sat", "Once upon"), "test")])
    tiles = act.tile_frame(acc, (64, 64))
    rates = act.screen_nsm_rates(out, tile=(64, 64), model_hash=subject.content_hash())
    assert set(rates["kind"]) == {"all", "max", "zero"}
    assert len(rates[rates.kind == "all"]) == 4 + 8  # q 96x96 -> 2x2 tiles, gate 200x96 -> 4x2
    table, joined = act.screen_correlation(tiles, rates)
    assert set(table["kind"]) == {"all", "max", "zero"}
    assert (table["n_tiles"] == 12).all()
    with pytest.raises(MutascopeError, match="another model"):
        act.screen_nsm_rates(out, model_hash="0" * 64)
    with pytest.raises(MutascopeError, match="32x32"):
        act.screen_nsm_rates(out, tile=(32, 32))


# ---- layer-wise sparsities ---------------------------------------------------------------------------------


def test_layerwise_sparsities_follow_the_formula_hand_computed():
    # N = 10, 20, 30, 40: mean 25, population std sqrt(125) = 11.1803; z = -1.3416, -0.4472, 0.4472, 1.3416
    # z + 2/i = 0.6584, 0.5528, 1.1139, 1.8416 -> N' = 0.658892, 0.634782, 0.752852, 0.863143 (sum 2.909660)
    # S_i = 0.5 + 0.1 * (1 - 4 N'_i / 2.909660)
    got = act.layerwise_sparsities([10, 20, 30, 40], sparsity=0.5, alpha=2.0, beta=0.2)
    assert got.normalised == pytest.approx([0.6588917123, 0.6347818162, 0.7528518043, 0.8631426448], abs=1e-9)
    assert got.sparsities == pytest.approx([0.5094203576, 0.5127348108, 0.4965034072, 0.4813414243], abs=1e-9)
    assert np.mean(got.sparsities) == pytest.approx(0.5, abs=1e-15)
    assert not got.renormalised
    frame = got.frame()
    assert list(frame.columns) == ["layer", "n_activated", "n_prime", "sparsity_layerwise", "sparsity_uniform"]


@pytest.mark.parametrize("seed", range(5))
def test_layerwise_sparsities_average_to_the_target(seed):
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 10**6, size=30)
    for s in (0.1, 0.5, 0.7):
        got = act.layerwise_sparsities(counts, s, alpha=2.0, beta=0.2)
        assert np.mean(got.sparsities) == pytest.approx(s, abs=1e-12)


def test_equal_counts_and_extreme_beta():
    # std 0: z = 0, so N'_i = sigmoid(alpha / i): shallow layers still pruned less
    got = act.layerwise_sparsities([5, 5, 5], 0.5, alpha=2.0, beta=0.2)
    prime = [1 / (1 + math.exp(-2 / i)) for i in (1, 2, 3)]
    assert got.normalised == pytest.approx(prime)
    assert got.sparsities[0] < got.sparsities[1] < got.sparsities[2]
    # beta so large the formula leaves [0, 1]: clipped, then renormalised to mean S
    got = act.layerwise_sparsities([0, 0, 0, 0, 0, 10**6], 0.5, alpha=0.0, beta=5.0)
    assert got.renormalised
    assert min(got.sparsities) >= 0 and max(got.sparsities) <= 1
    assert np.mean(got.sparsities) == pytest.approx(0.5, abs=1e-12)
    with pytest.raises(MutascopeError, match="sparsity"):
        act.layerwise_sparsities([1, 2], 1.5)


# ---- Wanda -------------------------------------------------------------------------------------------------


def _capture_inputs(subject, paths, calibration):
    got, hooks = {}, []
    for p in paths:
        hooks.append(
            subject.model.get_submodule(p).register_forward_pre_hook(
                lambda m, a, p=p: got.setdefault(p, []).append(a[0].reshape(-1, a[0].shape[-1]).double())
            )
        )
    with torch.no_grad():
        for ids in calibration:
            subject.model(input_ids=ids[None])
    for h in hooks:
        h.remove()
    return {p: torch.cat(v).pow(2).sum(0).sqrt() for p, v in got.items()}


def test_wanda_prunes_the_lowest_scores_per_row_layer_by_layer_and_restores():
    subject = tiny_model("llama")
    anatomy = subject.anatomy
    before = subject.content_hash()
    calibration = [act.encode(subject, t) for t in TEXTS]
    dense = {(r.layer, r.matrix): anatomy.weight(r.layer, r.matrix).clone() for r in anatomy.refs()}
    norms0 = _capture_inputs(subject, {r.module_path for r in anatomy.refs() if r.layer == 0}, calibration)
    ratios = [0.5, 0.25, 0.75]
    with act.pruned(subject, ratios, calibration) as n_zeroed:
        expected_total = 0
        for r in anatomy.refs():
            w = anatomy.weight(r.layer, r.matrix)
            k = round(w.shape[1] * ratios[r.layer])
            expected_total += k * w.shape[0]
            assert ((w == 0).sum(1) == k).all(), r
            assert torch.equal(w[w != 0], dense[(r.layer, r.matrix)][w != 0])
            if r.layer == 0:
                score = dense[(0, r.matrix)].abs().double() * norms0[r.module_path][None]
                kept_min = torch.where(w != 0, score, torch.inf).min(1).values
                pruned_max = torch.where(w == 0, score, -torch.inf).max(1).values
                assert (pruned_max <= kept_min).all()
        assert n_zeroed == expected_total
        # layer 1's q input is measured after layer 0 was pruned (sequential, as in Wanda's code)
        q1 = anatomy.ref(1, "q").module_path
        norms1 = _capture_inputs(subject, [q1], calibration)[q1]
        w = anatomy.weight(1, "q")
        score = dense[(1, "q")].abs().double() * norms1[None]
        assert (
            torch.where(w == 0, score, -torch.inf).max(1).values <= torch.where(w != 0, score, torch.inf).min(1).values
        ).all()
    assert subject.content_hash() == before


@pytest.mark.parametrize("family", ["phi3", "gpt2"])
def test_wanda_on_fused_and_transposed_storage_and_restore_on_error(family):
    subject = tiny_model(family)
    before = subject.content_hash()
    calibration = [act.encode(subject, t) for t in TEXTS[:2]]
    with pytest.raises(KeyError):
        with act.pruned(subject, [0.5] * subject.anatomy.n_layers, calibration):
            for r in subject.anatomy.refs():
                w = subject.anatomy.weight(r.layer, r.matrix)
                assert ((w == 0).sum(1) == round(w.shape[1] * 0.5)).all(), r
            raise KeyError("mid-measurement failure")
    assert subject.content_hash() == before


def test_compare_pruning_reports_dense_uniform_layerwise(llama64):
    from mutascope.evaluate import corpus_ids, default_corpus

    subject = tiny_model("llama")
    before = subject.content_hash()
    calibration = [act.encode(subject, t) for t in TEXTS]
    result = act.compare_pruning(
        subject, [100, 80, 60], calibration, corpus_ids(subject, default_corpus(), 200), sparsity=0.5, window=64
    )
    frame = result.frame()
    assert list(frame["variant"]) == ["dense", "uniform", "layerwise"]
    assert frame["sparsity"].iloc[0] == 0
    assert frame["sparsity"].iloc[1:].to_numpy() == pytest.approx([0.5, 0.5], abs=0.01)
    assert np.isfinite(frame["perplexity"]).all()
    assert subject.content_hash() == before


# ---- inputs and CLI ----------------------------------------------------------------------------------------


def _mmlu(tmp_path):
    for split, n in (("dev", 5), ("test", 3)):
        (tmp_path / split).mkdir(parents=True)
        rows = "".join(f"Question {i}?,a{i},b{i},c{i},d{i},B\n" for i in range(n))
        (tmp_path / split / f"astronomy_{split}.csv").write_text(rows)
    return tmp_path


def test_domains_from_text_files_and_mmlu(tmp_path):
    paras = tmp_path / "p.txt"
    paras.write_text("first line\nstill first\n\nsecond\n\n\nthird\n")
    assert act.read_texts(paras) == ["first line\nstill first", "second", "third"]
    lines = tmp_path / "l.txt"
    lines.write_text("one\ntwo\nthree\n")
    assert act.parse_domain(f"x={lines}", 2).texts == ("one", "two")
    mmlu = _mmlu(tmp_path / "mmlu")
    d = act.parse_domain(f"astro=mmlu:{mmlu}:astronomy")
    assert len(d.texts) == 3 and d.texts[0].endswith("C. c0\nD. d0\nAnswer:")
    assert "about astronomy" in d.texts[0] and "Question 1" not in d.texts[0]
    five = act.parse_domain(f"astro=mmlu:{mmlu}:astronomy:5", 1)
    assert five.texts[0].count("Answer:") == 6
    for bad, msg in (
        ("nodelim", "NAME=FILE"),
        (f"all={lines}", "not 'all'"),
        ("x=/no/such", "not found"),
        (f"x=mmlu:{mmlu}", "mmlu:DIR:SUBJECT"),
        (f"x=mmlu:{mmlu}:nosuch", "nosuch"),
    ):
        with pytest.raises(MutascopeError, match=msg):
            act.parse_domain(bad)


def test_cli_writes_tables_and_figures(tmp_path, tiny_model_dir):
    import duckdb
    import typer
    from typer.testing import CliRunner

    from mutascope.commands.activation import activation

    (tmp_path / "a.txt").write_text("The cat sat.\n\nA dog ran.\n")
    (tmp_path / "b.txt").write_text("x = 1\ny = 2\n")
    app = typer.Typer()
    app.command()(activation)
    app.command("noop")(lambda: None)  # two commands, so the subcommand name is required as in the real CLI
    db = tmp_path / "act.duckdb"
    result = CliRunner().invoke(
        app,
        [
            "activation",
            "--model",
            str(tiny_model_dir),
            "-d",
            f"prose={tmp_path / 'a.txt'}",
            "-d",
            f"code={tmp_path / 'b.txt'}",
            "--gamma",
            "2e-5,2e-6",
            "--window",
            "64",
            "--corpus-tokens",
            "128",
            "--out",
            str(db),
            "--figures",
            str(tmp_path / "fig"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "activated fraction by layer" in result.output and "layerwise" in result.output
    con = duckdb.connect(str(db), read_only=True)
    names = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    optional = {
        "activation_screen",
        "activation_calibration_transfer",
        "activation_calibration_summary",
        "activation_calibration_layers",
        "activation_semantic_pairs",
        "activation_semantic_cosines",
    }
    assert names == set(act.store.TABLES) - optional
    assert con.execute("SELECT count(*) FROM pruning_perplexity").fetchone()[0] == 3
    con.close()
    assert sorted(p.name for p in (tmp_path / "fig").iterdir()) == [
        "activated_fraction.png",
        "pruning_sparsity.png",
        "similarity.png",
    ]
    bad = CliRunner().invoke(app, ["activation", "--model", str(tiny_model_dir), "-d", "oops"])
    assert isinstance(bad.exception, MutascopeError)
