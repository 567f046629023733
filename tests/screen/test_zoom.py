"""`mutascope zoom`: a planted weight found exactly, in few mutants; resumed zooms identical;
engines agree on every zoomed region; the screen's tables and identity untouched; one-line refusals;
`mutascope show --region` on a zoomed region (and its decoded output, the engines' own)."""

import re
import shutil

import pandas as pd
import pytest
import torch

from helpers import run_cli, screen_of, tables, text_probes
from mutascope.analysis.carriers import carriers
from mutascope.engine import BatchedEngine, ReferenceEngine
from mutascope.errors import MutascopeError
from mutascope.model.subject import vocab_size
from mutascope.plan import Kind, PlanSpec, Region, region_mutation
from mutascope.screen.readback import stored_probes
from mutascope.screen.zoom import ZoomRule, refine, zoom
from mutascope.store import open_results, read_zoom
from mutascope.testing import tiny_model

PLANTED = (5, 101)  # in tile (0, 1) of layer 1 `down` (rows 0-63, columns 64-127)
SITE = "1.down.0.1"


def planted_model():
    """A tiny model whose tile 1.down.0.1 is zero but for one large weight: that weight alone
    carries the tile's effect."""
    subject = tiny_model("llama")
    w = subject.anatomy.weight(1, "down")
    with torch.no_grad():
        w[0:64, 64:128] = 0
        w[PLANTED] = 8.0
    return subject


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    subject = planted_model()
    tmp = tmp_path_factory.mktemp("zoom")
    screen_of(
        subject, text_probes(4), PlanSpec.parse(layers="1", matrices="down", kinds="zero"), tmp / "screen.duckdb"
    ).run()
    shutil.copy(tmp / "screen.duckdb", tmp / "zoomed.duckdb")
    summary = zoom(tmp / "zoomed.duckdb", subject, sites=[SITE], kind="zero")
    with open_results(tmp / "zoomed.duckdb") as r:
        table = read_zoom(r.con)
    return subject, tmp, summary, table


def test_zoom_finds_exactly_the_planted_weight_in_at_most_60_mutants_per_probe(planted):
    _, _, summary, table = planted
    assert summary.probes == ["hello", "story"] and summary.computed == len(table)
    for _pid, g in table.groupby("probe_id"):
        assert len(g) <= 60
        assert g["logprob_drop"].iloc[0] > 0
        found = g[g["followed"] & (g["height"] == 1) & (g["width"] == 1)]
        assert list(zip(found["row"], found["col"])) == [PLANTED]
        assert (g[g["logprob_drop"] > 0]["row"] <= PLANTED[0]).all()
    verdicts = carriers(table)
    assert list(verdicts["verdict"]) == ["localised", "localised"]
    assert list(verdicts["carrier"]) == ["[5:6,101:102]"] * 2 and list(verdicts["carrier_weights"]) == [1, 1]


def test_zoom_leaves_the_screens_tables_and_identity_alone(planted):
    _, tmp, _, _ = planted
    assert tables(tmp / "zoomed.duckdb") == tables(tmp / "screen.duckdb")


def test_an_interrupted_zoom_rerun_gives_the_identical_table(planted, tmp_path):
    subject, tmp, _, table = planted
    path = tmp_path / "z.duckdb"
    shutil.copy(tmp / "screen.duckdb", path)
    calls = []

    def stop_at_level_four(line):
        calls.append(line)
        if len(calls) == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        zoom(path, subject, sites=[SITE], kind="zero", probe_ids=["story"], status=stop_at_level_four)
    with open_results(path) as r:
        assert 0 < len(read_zoom(r.con)) < (table["probe_id"] == "story").sum()
    again = zoom(path, subject, sites=[SITE], kind="zero", probe_ids=["story"])
    with open_results(path) as r:
        resumed = read_zoom(r.con)
    expected = table[table["probe_id"] == "story"].reset_index(drop=True)
    pd.testing.assert_frame_equal(resumed, expected)
    assert 0 < again.computed < len(expected)
    assert zoom(path, subject, sites=[SITE], kind="zero", probe_ids=["story"]).computed == 0


def test_engines_agree_on_every_zoomed_region(planted):
    subject, tmp, _, table = planted
    with open_results(tmp / "zoomed.duckdb") as r:
        probes = stored_probes(r.con, vocab_size(subject))
    regions = sorted({Region(r.row, r.row + r.height, r.col, r.col + r.width) for r in table.itertuples()})
    mutations = [
        region_mutation(subject.anatomy, 1, "down", reg, Kind("zero"), (64, 64), i) for i, reg in enumerate(regions)
    ]
    ref = [
        (r.mutation_id, r.probe_id, r.divergence, r.tokens)
        for rs in ReferenceEngine(subject).run(mutations, probes)
        for r in rs
    ]
    fast = [
        (r.mutation_id, r.probe_id, r.divergence, r.tokens)
        for rs in BatchedEngine(subject).run(mutations, probes)
        for r in rs
    ]
    assert fast == ref
    calls = {(Region(r.row, r.row + r.height, r.col, r.col + r.width), r.probe_id): r.nsm for r in table.itertuples()}
    assert all(calls[(regions[m], p)] == (d is not None) for m, p, d, _ in ref)


def test_refine_follows_the_share_and_the_beam():
    # effect: two weights at (0, 0) and (3, 3) of a 4 x 4 block, each 1; a region's effect is the count it holds
    def measure(regions):
        return [(True, float(sum(r.r0 <= i < r.r1 and r.c0 <= j < r.c1 for i, j in ((0, 0), (3, 3))))) for r in regions]

    rows = [m for level in refine(Region(0, 4, 0, 4), measure, ZoomRule(share=0.5, beam=2)) for m in level]
    found = {(m.region.r0, m.region.c0) for m in rows if m.followed and m.region.size == 1}
    assert found == {(0, 0), (3, 3)}
    narrow = [m for level in refine(Region(0, 4, 0, 4), measure, ZoomRule(share=0.5, beam=1)) for m in level]
    assert sum(m.followed and m.region.size == 1 for m in narrow) == 1
    none = list(refine(Region(0, 4, 0, 4), measure, ZoomRule(share=0.75)))
    assert len(none) == 2 and not any(m.followed for m in none[1])  # no half holds 3/4 of the effect


def test_zoom_refusals_are_one_line(planted, tmp_path):
    subject, tmp, _, _ = planted
    path = tmp_path / "z.duckdb"
    shutil.copy(tmp / "zoomed.duckdb", path)
    for kwargs, message in [
        (dict(), "choose what to zoom"),
        (dict(sites=["1.down.2.0"]), r"tile \(2, 0\) is outside layer 1 down's 2x4 grid"),
        (dict(sites=["9.down.0.0"]), "layer 9 is out of range"),
        (dict(sites=["1.qq.0.0"]), "matrix 'qq' does not exist"),
        (dict(sites=[SITE], probe_ids=["nope"]), "unknown probe 'nope'"),
        (dict(sites=[SITE], rule=ZoomRule(share=0)), r"--share must be in \(0, 1\]"),
        (dict(sites=[SITE], kind="zero", rule=ZoomRule(beam=3)), "was zoomed with zero at --share 0.5 --beam 2"),
    ]:
        with pytest.raises(MutascopeError, match=message):
            zoom(path, subject, **kwargs)
    with pytest.raises(MutascopeError, match="different weights"):
        zoom(path, tiny_model("llama"), sites=[SITE])
    assert tables(path) == tables(tmp / "zoomed.duckdb")
    code, _, err = run_cli(["zoom", str(path), "--site", SITE, "--beam", "0"])
    assert code == 2 and "--beam must be at least 1, got 0" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = run_cli(["zoom", str(tmp_path / "missing.duckdb"), "--site", SITE])
    assert code == 2 and len(err.strip().splitlines()) == 1


def test_the_zoom_figure_draws_one_panel_per_probe(planted, tmp_path):
    from mutascope.files.outputs import save_figure
    from mutascope.report import zoom_figure

    _, _, _, table = planted
    fig = zoom_figure(table, SITE, "zero")
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title().split(":")[0] for ax in panels] == ["hello", "story"]
    assert all(len(ax.patches) >= 12 for ax in panels)  # one outline per followed region below the tile
    assert save_figure(fig, tmp_path / "z.png").stat().st_size > 0


def test_show_prints_a_zoomed_region_and_decodes_it(planted):
    from mutascope.phenotype import render_region, show_region, with_outputs
    from mutascope.screen.zoom import region_outputs

    subject, tmp, _, table = planted
    path = tmp / "zoomed.duckdb"
    code, out, err = run_cli(["show", str(path), "--site", SITE, "--kind", "zero", "--region", "[5:6,101:102]"])
    assert code == 0, err
    assert out.startswith("zoomed region [5:6,101:102] of layer 1 down") and "1 weights inside tile 1.down.0.1" in out
    for pid in ("hello", "story"):
        g = table[table["probe_id"] == pid]
        leaf = g[(g["row"] == 5) & (g["col"] == 101) & (g["height"] == 1) & (g["width"] == 1)].iloc[0]
        assert f"probe {pid}: " in out and f"level {leaf['level']}, followed" in out
        assert f"logprob_drop {leaf['logprob_drop']:.4g}" in out
    assert "path: [0:64,64:128] " in out and "add --decode" in out
    # the same region named as one weight; its decoded output is the one the engines give
    view = show_region(path, SITE, "zero", "5,101")
    assert [len(p.path) for p in view.probes] == [p.level + 1 for p in view.probes]
    value, rows = region_outputs(path, subject, SITE, "zero", view.region, ["hello", "story"])
    shown = render_region(with_outputs(view, value, rows))
    assert "(value 0)" in shown and "add --decode" not in shown
    mutation = region_mutation(subject.anatomy, 1, "down", view.region, Kind("zero"), (64, 64))
    with open_results(path) as r:
        probes = stored_probes(r.con, vocab_size(subject))
    ref = {x.probe_id: x for x in next(iter(ReferenceEngine(subject).run([mutation], probes)))}
    for pid, row in rows.items():
        assert row.tokens == ref[pid].tokens and row.divergence == ref[pid].divergence
        if row.divergence is not None:  # the text itself is shown with control characters escaped
            assert f"diverges at generated token {row.divergence};" in shown and "| mutant" in shown
        else:
            assert "output identical to WT" in shown
    assert tables(path) == tables(tmp / "zoomed.duckdb")


def test_show_refuses_a_region_not_in_the_zoom_table_in_one_line(planted):
    _, tmp, _, _ = planted
    zoomed, screen = tmp / "zoomed.duckdb", tmp / "screen.duckdb"
    for path, site, kind, region, message in [
        (
            zoomed,
            SITE,
            "zero",
            "5:6,99:100",
            r"region \[5:6,99:100\] of site 1.down.0.1 \(zero\) is not in the zoom "
            r"table .* down to level 12, e.g. \[5:6,101:102\]",
        ),
        (zoomed, SITE, "max", "5,101", "site 1.down.0.1 was not zoomed with max .* it was with zero"),
        (zoomed, "1.down.1.0", "zero", "70,3", "site 1.down.1.0 was not zoomed .* zoomed sites: 1.down.0.1"),
        (screen, SITE, "zero", "5,101", "has no zoom table: run `mutascope zoom"),
        (zoomed, SITE, "zero", "5:6", "bad region '5:6'"),
        (zoomed, SITE, "zero", "6:5,1:2", "each end after its start"),
    ]:
        code, out, err = run_cli(["show", str(path), "--site", site, "--kind", kind, "--region", region])
        assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
        assert re.search(message, err), err
    code, _, err = run_cli(["show", str(zoomed), "--site", SITE, "--decode"])
    assert code == 2 and "--decode needs --region" in err
