"""Shipped domains, held-out text, and calibration-specific pruning on tiny models (seconds).

The planted case (``plant_pathway``): in a tiny random llama, token ``a``
alone lights residual channel 7 (no other token's embedding, and no
attention output of layer 0, writes it), and one unit of layer 0's MLP reads
channel 7 and writes the unembedding direction of ``b``; a second pathway
does the same for ``x`` -> ``y`` through channel 19. So the "ab" domain is
predicted by weights whose Wanda score is zero under "xy" calibration (their
input feature is exactly 0 there) and large under "ab" calibration, and
vice versa: each domain's diagonal must win, by far.
"""

from __future__ import annotations

import math
import re

import pytest
import torch

from helpers import ROOT  # noqa: E402
from mutascope import activation as act
from mutascope.errors import MutascopeError
from mutascope.testing import tiny_model


def plant_pathway(subject, token: int, target: int, channel: int, unit: int) -> None:
    model, a = subject.model, subject.anatomy
    with torch.no_grad():
        emb = model.get_input_embeddings().weight
        emb[:, channel] = 0
        emb[token, channel] = 8.0
        a.weight(0, "o")[channel] = 0  # layer 0's attention writes nothing into the channel
        g = torch.Generator().manual_seed(channel)
        for name in ("gate", "up"):
            w = a.weight(0, name)
            w[unit] = 0.01 * torch.randn(w.shape[1], generator=g)  # small, nonzero: prunable before the planted one
            w[unit, channel] = 10.0
        head = model.get_output_embeddings().weight[target]
        a.weight(0, "down")[:, unit] = 10 * head / head.norm()


@pytest.fixture(scope="module")
def planted():
    subject = tiny_model("llama")
    plant_pathway(subject, ord("a"), ord("b"), 7, 11)
    plant_pathway(subject, ord("x"), ord("y"), 19, 23)
    return subject


def _domain(name, unit, held=2):
    texts = [unit * n for n in range(20, 23 + held)]
    return act.Domain(name, tuple(texts[:3]), "test", tuple(texts[3:]))


# ---- shipped data --------------------------------------------------------------------------------


def test_shipped_domains_have_eight_inputs_and_eight_disjoint_heldout_texts():
    domains = act.default_domains(8)
    assert [d.name for d in domains] == list(act.SHIPPED) == ["biology", "law", "python"]
    for d in domains:
        assert len(d.texts) == 8 and len(d.heldout) == 8, d.name
        assert not set(d.texts) & set(d.heldout)
        assert d.source == f"shipped:{d.name}" and d.answers == ()
        assert len(set(d.texts + d.heldout)) == 16
    for snippet in act.shipped_texts("python"):
        compile(snippet, "<shipped python domain>", "exec")  # real Python, one input per snippet
    prose = [t for name in ("biology", "law") for t in act.shipped_texts(name)]
    assert all(len(t.split()) >= 40 and not t.startswith("def ") for t in prose)
    assert act.default_domains(4, 2)[0].texts == tuple(act.shipped_texts("biology")[:4])
    assert act.default_domains(4, 2)[0].heldout == tuple(act.shipped_texts("biology")[4:6])
    with pytest.raises(MutascopeError, match="no shipped domain"):
        act.shipped_texts("chemistry")


def test_every_shipped_data_file_is_declared_package_data():
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["mutascope"]
    package = ROOT / "src" / "mutascope"
    declared = {p for pattern in patterns for p in package.glob(pattern) if p.is_file()}
    shipped = {p for p in (package / "data").rglob("*") if p.is_file()}
    assert shipped and shipped <= declared, sorted(str(p) for p in shipped - declared)


def test_heldout_texts_come_after_the_inputs_in_every_source(tmp_path):
    f = tmp_path / "d.txt"
    f.write_text("\n\n".join(f"paragraph {i}" for i in range(6)))
    d = act.parse_domain(f"d={f}", 2, 3)
    assert d.texts == ("paragraph 0", "paragraph 1") and d.heldout == ("paragraph 2", "paragraph 3", "paragraph 4")
    assert act.parse_domain(f"d={f}", 4).heldout == ("paragraph 4", "paragraph 5")
    assert act.parse_domain(f"d={f}", 6).heldout == ()
    mmlu = _mmlu(tmp_path / "mmlu", n=5)
    m = act.parse_domain(f"astro=mmlu:{mmlu}:astronomy", 2, 2)
    assert len(m.texts) == 2 and len(m.heldout) == 2 and m.answers == (2, 3)  # "ABCD"[i % 4] for questions 2, 3
    assert "Question 2?" in m.heldout[0] and m.heldout[0].endswith("Answer:")
    with pytest.raises(MutascopeError, match="no held-out text"):
        act.check_heldout([act.parse_domain(f"d={f}", 6)])
    dup = act.Domain("dup", ("same text", "other"), "test", ("same text",))
    with pytest.raises(MutascopeError, match="repeat a calibration input"):
        act.check_heldout([dup])


def _mmlu(root, n=3):
    for split, count in (("dev", 5), ("test", n)):
        (root / split).mkdir(parents=True)
        rows = "".join(f"Question {i}?,a{i},b{i},c{i},d{i},{'ABCD'[i % 4]}\n" for i in range(count))
        (root / split / f"astronomy_{split}.csv").write_text(rows)
    return root


# ---- calibration transfer ------------------------------------------------------------------------


def test_planted_domain_weights_make_the_diagonal_win(planted):
    before = planted.content_hash()
    ab, xy = _domain("ab", "ab"), _domain("xy", "xy")
    result = act.calibration_transfer(planted, [ab, xy], {"ab": [10, 10, 10], "xy": [30, 20, 10]}, window=64)
    frame = result.frame()
    assert planted.content_hash() == before
    assert len(frame) == 2 + 2 * 2 * 2  # dense on each, then 2 calibrations x 2 methods x 2 evaluations
    assert list(frame.columns) == list(act.TransferResult.COLUMNS)
    ppl = frame.set_index(["calibration_domain", "eval_domain", "method"])["perplexity"]
    for method in ("uniform", "layerwise"):
        assert ppl[("ab", "ab", method)] * 20 < ppl[("xy", "ab", method)]
        assert ppl[("xy", "xy", method)] * 2 < ppl[("ab", "xy", method)]
    assert frame.loc[frame.method == "dense", "x_dense"].tolist() == [1.0, 1.0]
    assert frame["diagonal"].sum() == 4 and frame["accuracy"].isna().all()
    assert (frame.loc[frame.method != "dense", "sparsity"] > 0.45).all()
    summary = result.summary().set_index(["method", "eval_domain"])
    for method in ("uniform", "layerwise"):
        assert summary.loc[(method, "all"), "wins"] and summary.loc[(method, "all"), "n_wins"] == 2
        assert summary.loc[(method, "ab"), "advantage"] > 10
    # the layer-wise ratios came from each calibration domain's own counts
    lay = result.layers
    assert set(lay["calibration_domain"]) == {"ab", "xy"}
    assert lay.groupby("calibration_domain")["sparsity_layerwise"].mean().tolist() == pytest.approx([0.5, 0.5])
    assert not lay[lay.calibration_domain == "ab"]["sparsity_layerwise"].equals(
        lay[lay.calibration_domain == "xy"]["sparsity_layerwise"].reset_index(drop=True)
    )


def test_heldout_perplexity_pools_tokens_over_texts(planted):
    from mutascope.evaluate import nll, perplexity

    d = _domain("ab", "ab")
    h = act.transfer.heldout_set(planted, d)
    assert h.choices is None and len(h.ids) == 2 and h.n_tokens == sum(len(t) - 1 for t in h.ids)
    parts = [nll(planted, ids, 64) for ids in h.ids]
    expected = math.exp(sum(p[0] for p in parts) / sum(p[1] for p in parts))
    got, acc = act.transfer._evaluate(planted, h, 64)
    assert got == pytest.approx(expected) and acc is None
    assert perplexity(planted, h.ids[0], 64) == pytest.approx(math.exp(parts[0][0] / parts[0][1]))


def test_mmlu_domains_also_get_heldout_accuracy_and_the_model_is_restored_on_error(tmp_path, monkeypatch):
    subject = tiny_model("llama")
    before = subject.content_hash()
    mmlu = _mmlu(tmp_path / "mmlu", n=4)
    astro = act.parse_domain(f"astro=mmlu:{mmlu}:astronomy", 2)
    text = _domain("ab", "ab")
    result = act.calibration_transfer(subject, [astro, text], {}, methods=("uniform",), window=64)
    frame = result.frame()
    on_astro = frame[frame.eval_domain == "astro"]
    assert on_astro["n_questions"].eq(2).all() and on_astro["accuracy"].between(0, 1).all()
    assert frame[frame.eval_domain == "ab"]["accuracy"].isna().all()
    assert subject.content_hash() == before

    calls = {"n": 0}
    real = act.transfer._evaluate

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:  # inside the first pruned model
            raise RuntimeError("injected")
        return real(*args, **kwargs)

    monkeypatch.setattr(act.transfer, "_evaluate", flaky)
    with pytest.raises(RuntimeError, match="injected"):
        act.calibration_transfer(subject, [astro, text], {}, methods=("uniform",), window=64)
    assert subject.content_hash() == before


def test_transfer_rejects_bad_settings(planted):
    ab, xy = _domain("ab", "ab"), _domain("xy", "xy")
    for kwargs, msg in (
        (dict(domains=[ab]), "two domains"),
        (dict(methods=("magnitude",)), "unknown pruning"),
        (dict(sparsity=0.0), "sparsity"),
        (dict(counts={}), "no activated counts"),
        (dict(domains=[ab, ab]), "unique"),
    ):
        args = dict(domains=[ab, xy], counts={"ab": [1, 1, 1], "xy": [1, 1, 1]})
        args.update(kwargs)
        counts = args.pop("counts")
        with pytest.raises(MutascopeError, match=msg):
            act.calibration_transfer(planted, args.pop("domains"), counts, **args)


def test_transfer_figure_and_store_tables(planted, tmp_path):
    import duckdb

    from mutascope.activation.figures import transfer_figure

    result = act.calibration_transfer(
        planted, [_domain("ab", "ab", 1), _domain("xy", "xy", 1)], {"ab": [1, 2, 3], "xy": [3, 2, 1]}, window=64
    )
    fig = transfer_figure(result.frame())
    assert len([ax for ax in fig.axes if ax.get_title()]) == 2  # one heat map per method (+ the colour bar)
    db = tmp_path / "a.duckdb"
    act.store.write_tables(
        db, {"activation_calibration_transfer": result.frame(), "activation_calibration_summary": result.summary()}
    )
    act.store.write_tables(db, {"activation_calibration_layers": result.layers})
    con = duckdb.connect(str(db), read_only=True)
    try:
        names = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    finally:
        con.close()
    assert names == {"activation_calibration_layers"}  # a later run drops what it did not produce


def test_cli_runs_on_the_shipped_defaults_with_every_experiment(tmp_path, tiny_model_dir):
    import duckdb
    import typer
    from typer.testing import CliRunner

    from mutascope.commands.activation import activation

    app = typer.Typer()
    app.command()(activation)
    app.command("noop")(lambda: None)
    db, figs = tmp_path / "act.duckdb", tmp_path / "fig"
    result = CliRunner().invoke(
        app,
        [
            "activation",
            "--model",
            str(tiny_model_dir),
            "-n",
            "2",
            "--heldout",
            "1",
            "--max-tokens",
            "32",
            "--prune-calibration",
            "--max-pairs",
            "4",
            "--pairs",
            str(_pairs_file(tmp_path)),
            "--permutations",
            "20",
            "--gamma",
            "2e-6",
            "--window",
            "64",
            "--corpus-tokens",
            "64",
            "--similarity-inputs",
            "1",
            "--out",
            str(db),
            "--figures",
            str(figs),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "the diagonal wins on" in result.output and "semantic pairs" in result.output
    con = duckdb.connect(str(db), read_only=True)
    try:
        got = con.execute("SELECT DISTINCT eval_domain FROM activation_calibration_transfer ORDER BY 1").fetchall()
        assert [r[0] for r in got] == ["biology", "law", "python"]
        assert con.execute("SELECT count(*) FROM activation_semantic_pairs").fetchone()[0] == 3
        settings = con.execute("SELECT settings FROM activation_runs").fetchone()[0]
    finally:
        con.close()
    assert '"shipped:biology"' in settings
    assert {p.name for p in figs.iterdir()} >= {"calibration_transfer.png", "semantic_pairs.png"}


def _pairs_file(tmp_path):
    p = tmp_path / "pairs.tsv"
    p.write_text(
        "score\tsentence1\tsentence2\n5\tA cat.\tA cat.\n0\tA cat.\tTax law.\n3\tA dog.\tA hound.\n1\tRain.\tSun.\n"
    )
    return p


def test_docs_activation_example_runs_without_arguments():
    page = (ROOT / "docs" / "activation.md").read_text()  # the README's section, moved to its page
    first_block = re.search(r"```\n(.*?)```", page, re.S).group(1)
    assert first_block.splitlines()[0].strip() == "mutascope activation"
    assert "mutascope activation " in (ROOT / "README.md").read_text() + "\n"


def test_cli_prints_accuracy_beside_perplexity_for_mixed_domains(tmp_path, tiny_model_dir):
    import typer
    from typer.testing import CliRunner

    from mutascope.commands.activation import activation

    mmlu = _mmlu(tmp_path / "mmlu", n=4)
    (tmp_path / "ab.txt").write_text("\n".join("ab" * n for n in range(20, 24)))
    app = typer.Typer()
    app.command()(activation)
    app.command("noop")(lambda: None)
    result = CliRunner().invoke(
        app,
        [
            "activation",
            "--model",
            str(tiny_model_dir),
            "-d",
            f"astro=mmlu:{mmlu}:astronomy",
            "-d",
            f"ab={tmp_path / 'ab.txt'}",
            "-n",
            "2",
            "--prune-calibration",
            "--gamma",
            "2e-6",
            "--similarity-inputs",
            "0",
            "--window",
            "64",
            "--corpus-tokens",
            "64",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())  # rich wraps titles
    assert "held-out perplexity / accuracy" in flat and "the diagonal wins on" in flat
