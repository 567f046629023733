"""Benchmark: the HTML report of a full-genome-sized screen, written and opened in headless Chromium.

Why synthetic: a full-genome screen of SmolLM2-135M (30 layers x 7 matrices,
25,920 tiles, max and min: 51,840 mutants per probe) takes days to run; the
report's cost depends only on the shape of the results, so this script
writes a results file of exactly that shape directly (the store's own schema,
via ``Store.open``; outcomes inserted as one Arrow table), with NSMs that have
the paper's structure (max/min bias per matrix, enriched rows and columns, a
column sensitive across probes) and a few hundred distinct outputs per probe,
plus an MMLU21-like set of 21 multiple-choice questions.

Then it writes the report and measures the file size and, in headless
Chromium (``/usr/bin/chromium``, Python Playwright), the time until the page
has drawn its first map, plus switching to the largest matrix and clicking a
tile. Run:

    .venv/bin/python benchmarks/bench_report.py            # full genome, 5 text probes + MMLU21
    .venv/bin/python benchmarks/bench_report.py --layers 4 --mmlu 0   # quicker
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mutascope.plan import Kind, Mutation
from mutascope.store import ProbeRecord, RunRecord, Store
from mutascope.store.db import insert as _insert

# SmolLM2-135M: hidden 576, intermediate 1536, 9 query heads and 3 key/value heads of 64
SHAPES = {
    "q": (576, 576),
    "k": (192, 576),
    "v": (192, 576),
    "o": (576, 576),
    "gate": (1536, 576),
    "up": (1536, 576),
    "down": (576, 1536),
}
TILE = 64
TEXT_PROBES = ["drosophila", "python", "java", "newton", "p53"]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WORDS = (
    "the of and to in is was for on that with as by at from cell gene larva pupa fly egg stage wing "
    "def list sort swap loop index array return class public void static int Newton gravity optics "
    "calculus light motion law orbit p53 apoptosis DNA repair MDM2 kinase pathway tumour"
).split()


def build_mutations(n_layers: int) -> list[Mutation]:
    """Every tile of every matrix, max then min, in the plan's order (col outer, row inner)."""
    out, mid = [], 0
    for layer in range(n_layers):
        for matrix, (h, w) in SHAPES.items():
            for col in range(w // TILE):
                for row in range(h // TILE):
                    for kind, value in (("max", 0.9), ("min", -0.9)):
                        out.append(
                            Mutation(
                                mutation_id=mid,
                                layer=layer,
                                matrix=matrix,
                                row=row,
                                col=col,
                                kind=Kind(kind),
                                value=value,
                                r0=row * TILE,
                                r1=(row + 1) * TILE,
                                c0=col * TILE,
                                c1=(col + 1) * TILE,
                            )
                        )
                        mid += 1
    return out


def _random_text(rng, n_words: int) -> str:
    return " ".join(rng.choice(WORDS, n_words))


def structure(rng, mutations: list[Mutation]) -> np.ndarray:
    """Per-mutant NSM log-odds shared by all probes: the paper's structure (bias, enriched axes, a shared column)."""
    n = len(mutations)
    layer = np.array([m.layer for m in mutations])
    matrix = np.array([m.matrix for m in mutations])
    row = np.array([m.row for m in mutations])
    col = np.array([m.col for m in mutations])
    is_max = np.array([m.kind.name == "max" for m in mutations])
    logit = np.zeros(n, dtype=float)
    logit += -0.04 * layer  # deep layers a little less sensitive
    for name in SHAPES:  # per matrix x layer: a max/min bias and enriched rows/cols (complementary in some)
        for L in np.unique(layer):
            sel = (matrix == name) & (layer == L)
            if not sel.any():
                continue
            bias_ = rng.normal(0, 1.0)
            logit[sel] += np.where(is_max[sel], bias_, -bias_)
            r_eff = rng.normal(0, 0.8, row[sel].max() + 1)
            c_eff = rng.normal(0, 0.8, col[sel].max() + 1)
            copa = rng.random() < 0.3
            sign = np.where(is_max[sel], 1.0, -1.0 if copa else 1.0)
            logit[sel] += sign * (r_eff[row[sel]] + c_eff[col[sel]])
    logit[(matrix == "v") & (col == 5)] += 3.0  # a column sensitive across probes (cf. Llama-2 V col 39)
    return logit


def probability(rng, shared: np.ndarray, base: float) -> np.ndarray:
    """A probe's NSM probability: the shared structure, its own offset and noise."""
    return 1 / (1 + np.exp(-(shared + base + rng.normal(0, 0.8, len(shared)))))


def _effects(rng, nsm: np.ndarray) -> np.ndarray:
    """Effect sizes as a screen records them: orders of magnitude, larger for NSMs, a few negative."""
    return np.exp(rng.normal(0.0, 2.0, len(nsm))) * np.where(nsm, 10.0, 1.0) - 0.2


def synthesize(
    path: Path, n_layers: int = 30, n_text: int = 5, n_mmlu: int = 21, n_distinct: int = 300, seed: int = 0
) -> dict:
    """Write a results file of the given shape; returns counts."""
    rng = np.random.default_rng(seed)
    mutations = build_mutations(n_layers)
    probe_ids = (TEXT_PROBES * (1 + n_text // len(TEXT_PROBES)))[:n_text]
    probe_ids = [p if i < len(TEXT_PROBES) else f"{p}{i}" for i, p in enumerate(probe_ids)]
    records, wt_texts = [], {}
    for pid in probe_ids:
        wt_texts[pid] = _random_text(rng, 110)
        records.append(
            ProbeRecord(
                probe_id=pid,
                kind="text",
                text=f"The {pid} prompt:",
                chat=False,
                max_new_tokens=150,
                decoding="sample(t=0.7, seed=0)",
                answer=None,
                group=None,
                prompt_tokens=(1, 2, 3),
                wt_tokens=tuple(rng.integers(0, 49152, 150).tolist()),
                wt_text=wt_texts[pid],
            )
        )
    letters = "ABCD"
    wt_answers = rng.choice(list(letters), n_mmlu)
    for i in range(n_mmlu):
        records.append(
            ProbeRecord(
                probe_id=f"mmlu:{i}",
                kind="choice",
                text=f"Question {i} ...\nAnswer:",
                chat=False,
                max_new_tokens=1,
                decoding="greedy",
                answer=str(rng.choice(list(letters))),
                group="mmlu21:international_law",
                prompt_tokens=(1, 2, 3),
                wt_tokens=(letters.index(wt_answers[i]) + 330,),
                wt_text=" " + wt_answers[i],
            )
        )
    run = RunRecord(
        model_id="HuggingFaceTB/SmolLM2-135M-Instruct (synthetic outcomes)",
        model_hash="0" * 64,
        dtype="float32",
        device="cpu",
        decoding="sample(t=0.7, seed=0); greedy",
        tile=(TILE, TILE),
        shard="0/1",
        versions={"benchmark": "bench_report.py"},
    )
    config = {"benchmark": "bench_report", "layers": n_layers, "probes": probe_ids, "mmlu": n_mmlu, "seed": seed}
    path.unlink(missing_ok=True)
    n = len(mutations)
    ids = np.array([m.mutation_id for m in mutations], dtype=np.int32)
    parts = []
    shared = structure(rng, mutations)
    with Store.open(path, config, run=run, probes=records, mutations=mutations) as store:
        for p_index, pid in enumerate(probe_ids):
            prob = probability(rng, shared, base=0.1 if p_index % 2 == 0 else -1.0)
            nsm = rng.random(n) < prob
            # a few hundred distinct outputs, Zipf-like frequencies
            ph = np.where(nsm, 1 + np.minimum(rng.zipf(1.3, n) - 1, n_distinct - 1), 0).astype(np.int32)
            texts = pa.array(
                [wt_texts[pid]] + [_random_text(rng, int(rng.integers(5, 120))) for _ in range(n_distinct)]
            )
            tokens = pa.array(
                [list(records[p_index].wt_tokens)] + [rng.integers(0, 49152, 150).tolist() for _ in range(n_distinct)],
                pa.list_(pa.int32()),
            )
            div = np.concatenate([[-1], rng.integers(0, 150, n_distinct)])[ph]
            idx = pa.array(ph)
            parts.append(
                pa.table(
                    {
                        "mutation_id": pa.array(ids),
                        "probe_id": pa.array([pid] * n),
                        "nsm": pa.array(nsm),
                        "divergence": pa.array(np.where(nsm, div, 0).astype(np.int32), mask=~nsm),
                        "output_tokens": pc.take(tokens, idx),
                        "output_text": pc.take(texts, idx),
                        "phenotype_id": idx,
                        "logprob_drop": pa.array(_effects(rng, nsm)),
                    }
                )
            )
        damage = rng.random(n) < probability(rng, shared, base=-0.5)
        for i in range(n_mmlu):
            flip = damage & (rng.random(n) < 0.15)
            shift = rng.integers(1, 4, n)
            answer = np.where(flip, (letters.index(wt_answers[i]) + shift) % 4, letters.index(wt_answers[i]))
            texts = np.array([" " + c for c in letters], dtype=object)[answer]
            ph = np.where(flip, shift, 0).astype(np.int32)
            parts.append(
                pa.table(
                    {
                        "mutation_id": pa.array(ids),
                        "probe_id": pa.array([f"mmlu:{i}"] * n),
                        "nsm": pa.array(flip),
                        "divergence": pa.array(np.zeros(n, np.int32), mask=~flip),
                        "output_tokens": pa.array([[330 + int(a)] for a in answer], pa.list_(pa.int32())),
                        "output_text": pa.array(texts.tolist()),
                        "phenotype_id": pa.array(ph),
                        "logprob_drop": pa.array(_effects(rng, flip)),
                    }
                )
            )
        table = pa.concat_tables(parts)
        store.con.begin()
        _insert(store.con, "outcomes", table)
        store.con.execute(
            "INSERT INTO progress (first_mutation_id, last_mutation_id, n_mutations, engine, seconds) "
            "VALUES (?, ?, ?, 'synthetic', 0)",
            [0, n - 1, n],
        )
        store.con.commit()
    return {"mutants_per_probe": n, "text_probes": n_text, "choice_questions": n_mmlu, "outcome_rows": table.num_rows}


def measure_browser(html: Path, repeats: int = 3) -> dict:
    """Open the report in headless Chromium; times in ms (median of ``repeats`` fresh pages)."""
    from playwright.sync_api import sync_playwright

    loads, ready, switch, click, requests, errors = [], [], [], [], set(), []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for _ in range(repeats):
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.on("request", lambda r: requests.add(r.url if not r.url.startswith("data:") else "data:"))
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e: errors.append(str(e)))
                t0 = time.perf_counter()
                page.goto(html.as_uri(), wait_until="load")
                page.wait_for_function("document.body.dataset.ready === '1'")
                loads.append((time.perf_counter() - t0) * 1000)
                ready.append(page.evaluate("window.mutascopeReady"))
                # the largest matrix (most tiles), then a click on its middle tile
                t1 = page.evaluate("""() => {
                    const D = JSON.parse(document.getElementById('mutascope-data').textContent);
                    let best = 0;
                    D.matrices.forEach((m, i) => {
                        if (m.rows * m.cols > D.matrices[best].rows * D.matrices[best].cols) best = i;
                    });
                    const sel = document.getElementById('matrix-select'); const t = performance.now();
                    sel.value = String(best); sel.dispatchEvent(new Event('change'));
                    return performance.now() - t; }""")
                switch.append(t1)
                canvas = page.locator("#tilemap")
                canvas.scroll_into_view_if_needed()
                box = canvas.bounding_box()
                t2 = time.perf_counter()
                page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
                page.wait_for_selector("#detail pre[data-kind='wt']")
                click.append((time.perf_counter() - t2) * 1000)
                page.close()
        finally:
            browser.close()
    return {
        "load_to_first_map_ms": statistics.median(loads),
        "script_ready_ms(performance.now)": statistics.median(ready),
        "switch_to_largest_matrix_ms": statistics.median(switch),
        "click_to_detail_ms": statistics.median(click),
        "requests": sorted(requests),
        "console_errors": errors,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--layers", type=int, default=30)
    ap.add_argument("--probes", type=int, default=5, help="text probes")
    ap.add_argument("--mmlu", type=int, default=21, help="questions of one multiple-choice set (0: none)")
    ap.add_argument("--distinct", type=int, default=300, help="distinct outputs per text probe")
    ap.add_argument("--dir", type=Path, default=None, help="where to write (default: a temporary directory)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-browser", action="store_true")
    args = ap.parse_args(argv)

    from mutascope.report import write_report

    with tempfile.TemporaryDirectory() as tmp:
        out_dir = args.dir or Path(tmp)
        out_dir.mkdir(parents=True, exist_ok=True)
        results = out_dir / "bench.duckdb"
        t = time.perf_counter()
        shape = synthesize(results, args.layers, args.probes, args.mmlu, args.distinct)
        print(
            f"synthesized {results} in {time.perf_counter() - t:.1f} s: {shape}, {results.stat().st_size / 1e6:.1f} MB"
        )
        stages, t = [], time.perf_counter()
        names = ["read", "statistics", "figures", "payload", "write"]
        html = write_report(
            results, out_dir / "bench.html", progress=lambda done, total: stages.append(time.perf_counter())
        )
        total = time.perf_counter() - t
        marks = [t] + stages
        print(
            f"write_report: {total:.1f} s ("
            + ", ".join(f"{n} {b - a:.1f} s" for n, a, b in zip(names, marks, marks[1:]))
            + ")"
        )
        print(f"report: {html.stat().st_size / 1e6:.2f} MB")
        if not args.no_browser:
            if not Path(CHROMIUM).exists():
                print(f"{CHROMIUM} not found: skipping the browser measurement (apt-get install -y chromium)")
            else:
                for key, value in measure_browser(html, args.repeats).items():
                    print(f"{key}: {value if not isinstance(value, float) else f'{value:.0f}'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
