"""The report: figures, the compact payload, and the HTML page in a real headless browser.

The results file is written through the store (``Store.open`` /
``write_chunk``) with planted outputs, so every expectation is known and no
model runs. Browser tests use Debian's Chromium (``make test`` installs it)
through Python Playwright, and record every request the page makes: only the
file itself (and data: URIs) may load.
"""

from __future__ import annotations

import base64
import random
import re
from pathlib import Path

import numpy as np
import pytest

from mutascope.analysis import site_frame
from mutascope.engine import divergence_step
from mutascope.plan import Kind, Mutation
from mutascope.report import figure_set, save_figures, write_report
from mutascope.report.payload import build_payload, probe_infos
from mutascope.store import OutcomeRow, ProbeRecord, RunRecord, Store, open_results
from pagetools import Watched, pixel

# hostile outputs: markup, a fake template field, a script end tag, non-ASCII and a line separator
HOSTILE = '</script><img src=x onerror="window.__pwned=1">@@DATA@@ ünïcødé \u2028 end'
TEXT_WT = {"fly": "The life cycle of Drosophila has four stages", "py": "def bubble_sort(xs):"}
POOL = ["The life cycle of a poem", "staring at the sea", HOSTILE, "", "def sort(): pass", "A B C " * 50]
CHOICE = [("mmlu:0", "A", " A"), ("mmlu:1", "B", " C"), ("mmlu:2", "D", " D")]  # id, label, WT output
SHAPES = {"q": (96, 96), "gate": (200, 96)}  # ragged edges: 2 x 2 and 4 x 2 tiles of 64


def _tokens(text: str) -> tuple[int, ...]:
    return tuple(ord(c) for c in text)


RUN = RunRecord(
    model_id="synthetic-report",
    model_hash="f" * 64,
    dtype="float32",
    device="cpu",
    decoding="greedy",
    tile=(64, 64),
    shard="0/1",
    versions={"test": "1"},
)


def probe_records() -> list[ProbeRecord]:
    """Two text probes and a three-question multiple-choice set."""
    probes = [
        ProbeRecord(
            probe_id=pid,
            kind="text",
            text=f"prompt of {pid}",
            chat=False,
            max_new_tokens=16,
            decoding="greedy",
            answer=None,
            group=None,
            prompt_tokens=(1, 2),
            wt_tokens=_tokens(wt),
            wt_text=wt,
        )
        for pid, wt in TEXT_WT.items()
    ]
    return probes + [
        ProbeRecord(
            probe_id=pid,
            kind="choice",
            text=f"question {pid}\nAnswer:",
            chat=False,
            max_new_tokens=1,
            decoding="greedy",
            answer=label,
            group="mmlu21:law",
            prompt_tokens=(1, 2),
            wt_tokens=_tokens(wt),
            wt_text=wt,
        )
        for pid, label, wt in CHOICE
    ]


def write_screen(path: Path, seed: int = 0) -> tuple[Path, dict]:
    """A 2-layer, 2-matrix max/min screen (plus zero on layer 1 q) with planted outputs.

    Returns the path and ``{(mutation_id, probe_id): output_text}``.
    """
    rng = random.Random(seed)
    mutations, mid = [], 0
    for layer in (0, 1):
        for matrix, (h, w) in SHAPES.items():
            kinds = ("max", "min", "zero") if (layer, matrix) == (1, "q") else ("max", "min")
            for col in range(-(-w // 64)):
                for row in range(-(-h // 64)):
                    for kind in kinds:
                        value = {"max": 0.9, "min": -0.9, "zero": 0.0}[kind]
                        mutations.append(
                            Mutation(
                                mutation_id=mid,
                                layer=layer,
                                matrix=matrix,
                                row=row,
                                col=col,
                                kind=Kind(kind),
                                value=value,
                                r0=row * 64,
                                r1=min(h, row * 64 + 64),
                                c0=col * 64,
                                c1=min(w, col * 64 + 64),
                            )
                        )
                        mid += 1
    probes = probe_records()
    outputs, rows = {}, []
    for m in mutations:
        for p in probes:
            if p.kind == "text":
                text = p.wt_text if (m.kind.name == "zero" or rng.random() < 0.35) else rng.choice(POOL)
            else:
                text = p.wt_text if rng.random() < 0.7 else rng.choice([" A", " B", " C", " D"])
            outputs[(m.mutation_id, p.probe_id)] = text
            rows.append(
                OutcomeRow(
                    mutation_id=m.mutation_id,
                    probe_id=p.probe_id,
                    tokens=_tokens(text),
                    text=text,
                    divergence=divergence_step(list(_tokens(text)), list(p.wt_tokens)),
                )
            )
    with Store.open(path, {"test_report": seed}, run=RUN, probes=probes, mutations=mutations) as store:
        store.write_chunk(rows, engine="synthetic", seconds=0.0)
    return path, outputs


@pytest.fixture(scope="module")
def screen(tmp_path_factory):
    return write_screen(tmp_path_factory.mktemp("report") / "screen.duckdb")


FAST = dict(top_n=2, n_perm=49)  # fewer figures and permutations: the same code paths, quicker


@pytest.fixture(scope="module")
def report(screen):
    path, _ = screen
    steps = []
    out = write_report(path, path.with_name("report.html"), progress=lambda d, t: steps.append((d, t)), **FAST)
    return out, steps


# -- frame, payload, figures (no browser) ------------------------------------------
def test_site_frame_matches_the_outcomes(screen):
    """Text probes one row per outcome; a choice set one row per mutant, NSM = any answer changed."""
    path, _ = screen
    with open_results(path) as r:
        frame = site_frame(r)
        sites = r.sites().merge(
            r.probes[["probe_id", "kind", "probe_group"]].rename(columns={"kind": "pkind"}), on="probe_id"
        )
    text = sites[sites.pkind != "choice"]
    sets = sites[sites.pkind == "choice"].groupby(["probe_group", "mutation_id"])["nsm"].any()
    assert set(frame["probe_id"]) == {"fly", "py", "mmlu21:law"}
    got = frame.set_index(["probe_id", "mutation_id"])["nsm"]
    for row in text.itertuples():
        assert got[(row.probe_id, row.mutation_id)] == row.nsm
    for (group, mid), nsm in sets.items():
        assert got[(group, mid)] == nsm
    assert len(frame) == len(text) + len(sets)


def _decode(payload, probe, kind):
    raw = base64.b64decode(payload["ids"][probe][kind])
    return np.frombuffer(raw, dtype="<u2" if payload["width"] == 2 else "<u4")


def test_payload_ids_and_texts_match_the_outcomes(screen):
    path, outputs = screen
    with open_results(path) as r:
        payload = build_payload(r.con, probe_infos(r.con), max_texts=3)
        sites = r.query(
            "SELECT o.mutation_id, o.probe_id, o.phenotype_id, m.layer, m.matrix, m.row, m.col, m.kind "
            "FROM outcomes o JOIN mutations m USING (mutation_id)"
        )
    mats = {(m["layer"], m["matrix"]): m for m in payload["matrices"]}
    assert [(m["layer"], m["matrix"], m["rows"], m["cols"]) for m in payload["matrices"]] == [
        (0, "q", 2, 2),
        (0, "gate", 4, 2),
        (1, "q", 2, 2),
        (1, "gate", 4, 2),
    ]
    assert payload["kinds"] == ["max", "min", "zero"]
    zero = _decode(payload, "fly", "zero")
    assert (zero[mats[(0, "q")]["offset"] : mats[(1, "q")]["offset"]] == payload["none"]).all()  # zero only on L1 q
    for s in sites[sites["probe_id"] == "fly"].itertuples():
        m = mats[(s.layer, s.matrix)]
        ph = _decode(payload, "fly", s.kind)[m["offset"] + s.row * m["cols"] + s.col]
        assert ph == s.phenotype_id
        rec = payload["texts"]["fly"].get(str(ph))
        if rec is not None:
            assert rec[0] == outputs[(s.mutation_id, "fly")]
    # max_texts=3 keeps WT plus the three most frequent outputs; the rest are counted as omitted
    assert len(payload["texts"]["fly"]) == 4 and payload["omitted"]["fly"] >= 1
    # the choice set is one probe whose phenotype is the answer string; its WT string is id 0
    assert payload["texts"]["mmlu21:law"]["0"][0] == "A C D"
    nsm = sum(payload["counts"]["mmlu21:law"][k][i] for k in payload["kinds"] for i in range(4))
    assert nsm == int(site_frame(open_results(path)).query("probe_id == 'mmlu21:law'")["nsm"].sum())


def test_figures_are_written_bounded_and_non_empty(screen, tmp_path):
    path, _ = screen
    with open_results(path) as r:
        frame = site_frame(r)
    written = save_figures(frame, tmp_path / "figs", top_n=2)
    names = sorted(p.name for p in written)
    # overview, overlap, a map and an enrichment profile per top matrix, the re-ordered gate view
    assert len(written) == 2 + 2 * 2 + 1
    assert "overview.png" in names and "overlap.png" in names
    assert any(n.startswith("reordered_L") and n.endswith("_gate.png") for n in names)
    assert any(n.startswith("map_L") for n in names) and any(n.startswith("enrichment_L") for n in names)
    for p in written:
        data = p.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, p
    assert [s for s, _, _ in figure_set(frame.iloc[0:0])] == []  # an empty screen: no figures, no error


def test_report_is_one_file_with_no_external_reference(screen, report):
    path, _ = screen
    out, steps = report
    assert steps[-1][0] == steps[-1][1] == len(steps)
    page = out.read_text(encoding="utf-8")
    assert "http://" not in page and "https://" not in page and "//cdn" not in page
    assert not re.search(r"<(script|img|link|iframe|source)\b[^>]*\b(src|href)=\"(?!data:)", page)
    assert "<img src=x" not in page  # the hostile output only appears escaped
    assert "Writer groups" in page and "mutascope phenotype" in page  # no phenotypes yet: said, not crashed


# -- in a real browser ------------------------------------------------------------------
def _expected(path: Path, outputs: dict, probe: str, layer: int, matrix: str, row: int, col: int) -> dict[str, str]:
    with open_results(path) as r:
        ms = r.query(
            "SELECT mutation_id, kind FROM mutations WHERE layer = ? AND matrix = ? AND row = ? AND col = ?",
            [layer, matrix, row, col],
        )
    return {k: outputs[(int(m), probe)] for m, k in zip(ms["mutation_id"], ms["kind"])}


def test_page_loads_offline_and_clicking_a_tile_shows_its_outputs(screen, report, browser):
    path, outputs = screen
    w = Watched(browser, report[0])
    try:
        page = w.page
        # a tile with a mutant whose output is the hostile text, so we also see it shown as text, not markup
        with open_results(path) as r:
            hit = r.query(
                "SELECT m.layer, m.matrix, m.row, m.col FROM outcomes o JOIN mutations m USING (mutation_id) "
                "WHERE o.probe_id = 'fly' AND o.output_text = ? ORDER BY m.mutation_id LIMIT 1",
                [HOSTILE],
            ).iloc[0]
        layer, matrix, row, col = int(hit.layer), str(hit.matrix), int(hit.row), int(hit.col)
        w.select("fly", layer, matrix)
        assert page.locator("#tilemap").get_attribute("data-matrix") == matrix
        x, y = w.tile_point(row, col)
        page.mouse.move(x, y)
        tip = page.locator("#tooltip").inner_text()
        assert f"tile ({row}, {col})" in tip and "max:" in tip and "probes" in tip
        page.mouse.click(x, y)
        assert page.locator("#detail").get_attribute("data-tile") == f"{row},{col}"
        want = _expected(path, outputs, "fly", layer, matrix, row, col)
        assert HOSTILE in want.values()
        assert page.locator("#detail pre[data-kind='wt']").inner_text() == TEXT_WT["fly"]
        for kind, text in want.items():
            shown = page.locator(f"#detail pre[data-kind='{kind}']")
            if text == TEXT_WT["fly"]:
                assert shown.count() == 0  # silent: said, no output repeated
            else:
                assert shown.text_content() == text, kind
        assert "silent" in page.locator("#detail").inner_text() or TEXT_WT["fly"] not in want.values()
        # switching the probe to the choice set keeps the tile and shows the answer strings
        w.select("mmlu21:law", layer, matrix)
        page.mouse.click(*w.tile_point(row, col))
        assert page.locator("#detail pre[data-kind='wt']").inner_text() == "A C D"
        # the overview opens a matrix on click
        page.locator("#overview td.cell[data-matrix='0']").click()
        assert page.locator("#tilemap").get_attribute("data-layer") == "0"
        assert page.locator("#tilemap").get_attribute("data-matrix") == "q"
        assert page.evaluate("window.__pwned === undefined") and w.dialogs == []
        assert page.locator("figure img").count() == 2 + 2 * FAST["top_n"] + 1  # + the re-ordered gate view
        assert w.external_requests() == [], w.external_requests()
        assert w.errors == [], w.errors
    finally:
        w.page.close()


def test_phenotypes_show_in_the_page_when_present(tmp_path, browser):
    phenotype = pytest.importorskip("mutascope.phenotype", reason="phenotype package not available")
    path, outputs = write_screen(tmp_path / "ph.duckdb", seed=1)
    phenotype.phenotype_results(
        path, embedder=lambda texts: np.array([[len(t) + 1.0, 1.0, t.count(" ")] for t in texts])
    )
    html = write_report(path, **FAST)
    assert html == path.with_suffix(".html")  # default: beside the results file
    w = Watched(browser, html)
    try:
        page = w.page
        with open_results(path) as r:
            hit = r.query(
                "SELECT m.layer, m.matrix, m.row, m.col FROM outcomes o JOIN mutations m USING (mutation_id) "
                "WHERE o.probe_id = 'py' AND m.kind = 'max' AND o.nsm ORDER BY m.mutation_id LIMIT 1"
            ).iloc[0]
        w.select("py", int(hit.layer), str(hit.matrix))
        page.mouse.click(*w.tile_point(int(hit.row), int(hit.col)))
        detail = page.locator("#detail").inner_text()
        assert "similarity to WT" in detail and "category" in detail
        assert w.external_requests() == [] and w.errors == []
    finally:
        w.page.close()


def test_report_of_a_screen_with_no_outcomes_yet(tmp_path):
    empty = tmp_path / "empty.duckdb"
    mutations = [
        Mutation(
            mutation_id=0, layer=0, matrix="q", row=0, col=0, kind=Kind("max"), value=1.0, r0=0, r1=64, c0=0, c1=64
        )
    ]
    Store.open(empty, {"empty": 1}, run=RUN, probes=probe_records(), mutations=mutations).close()
    page = write_report(empty, **FAST).read_text(encoding="utf-8")
    assert "0 of 1 (partial screen)" in page and "No outcomes yet" in page


# -- zoomed tiles -------------------------------------------------------------------------
PLANTED = (5, 7)  # the one weight of tile 0.q.0.0 that carries its effect on probe fly


def write_zoomed_screen(path: Path) -> Path:
    """The planted screen plus a zoom table: tile 0.q.0.0 refined with max, by the zoom's own rule,
    on measured effects planted here (fly: one weight carries it; py: no positive effect)."""
    from mutascope.plan import Region
    from mutascope.screen.zoom import ZoomRule, _frame, refine
    from mutascope.store.zoom import write_level

    write_screen(path)
    rule = ZoomRule()

    def planted(regions):
        return [
            (True, 8.0 + 0.01 * r.size / 4096)
            if r.r0 <= PLANTED[0] < r.r1 and r.c0 <= PLANTED[1] < r.c1
            else (False, -0.1)
            for r in regions
        ]

    def nothing(regions):
        return [(False, -0.5) for _ in regions]

    with Store.open_existing(path) as store:
        for probe, measure in (("fly", planted), ("py", nothing)):
            for level in refine(Region(0, 64, 0, 64), measure, rule):
                write_level(
                    store.con,
                    ("0.q.0.0", "max", rule.share, rule.beam, rule.floor),
                    _frame("0.q.0.0", 0, "q", "max", probe, level),
                )
    return path


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))


def test_zoomed_regions_are_drawn_inside_their_tile(tmp_path, report, browser):
    path = write_zoomed_screen(tmp_path / "zoomed.duckdb")
    html = write_report(path, **FAST)
    page_text = html.read_text(encoding="utf-8")
    assert 'href="#zoom"' in page_text and "[5:6,7:8]" in page_text  # the carriers table, server-side
    w = Watched(browser, html)
    try:
        page = w.page
        D = page.evaluate("JSON.parse(document.getElementById('mutascope-data').textContent)")
        assert [(z["site"], z["kind"], z["probe"], z["verdict"]) for z in D["zoom"]] == [
            ("0.q.0.0", "max", "fly", "localised"),
            ("0.q.0.0", "max", "py", "none"),
        ]
        assert page.locator("#zoom-select option").count() == 2
        canvas = page.locator("#zoommap")
        assert canvas.get_attribute("data-site") == "0.q.0.0" and canvas.get_attribute("data-probe") == "fly"
        cell = int(canvas.get_attribute("data-cell"))

        def at(r, c):
            return pixel(page, "zoommap", (c + 0.5) * cell, (r + 0.5) * cell)

        assert at(*PLANTED) == _rgb(D["cmap"][-1])  # the planted weight: the whole tile's effect
        assert at(40, 40) == _rgb(D["effect_colours"]["nonpositive"])  # a half without it: no effect
        assert "localised" in page.locator("#zoom-sentence").inner_text()
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        scale = box["width"] / int(canvas.get_attribute("width"))
        page.mouse.move(box["x"] + (PLANTED[1] + 0.5) * cell * scale, box["y"] + (PLANTED[0] + 0.5) * cell * scale)
        tip = page.locator("#tooltip").inner_text()
        assert "weight [5, 7] of L0 q" in tip and "[5:6,7:8], 1 weights, level 12" in tip
        # the other probe: nothing to localise, the tile in the non-positive colour
        page.select_option("#zoom-select", "1")
        assert canvas.get_attribute("data-probe") == "py" and at(*PLANTED) == _rgb(D["effect_colours"]["nonpositive"])
        # from the tile map: the zoomed tile's detail offers its regions
        w.select("fly", 0, "q")
        page.mouse.click(*w.tile_point(0, 0))
        page.locator("#detail p.zoomed-link button").click()
        assert canvas.get_attribute("data-probe") == "fly" and page.locator("#zoom-select").input_value() == "0"
        assert w.external_requests() == [] and w.errors == [], w.errors
    finally:
        w.page.close()
    # a file without a zoom table: no section, no link, and the page is as quiet as ever
    plain = report[0].read_text(encoding="utf-8")
    assert 'id="zoom"' not in plain and 'href="#zoom"' not in plain
    w = Watched(browser, report[0])
    try:
        assert w.page.locator("#zoom, #zoommap").count() == 0
        assert w.page.evaluate("JSON.parse(document.getElementById('mutascope-data').textContent).zoom") == []
        assert w.errors == []
    finally:
        w.page.close()
