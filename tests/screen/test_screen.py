"""Reference screens on tiny random models: exactness, restoration, resume."""

import pytest
import torch

from helpers import screen_of, tables, text_probes
from mutascope.engine import ReferenceEngine, divergence_step, prepare_probes
from mutascope.errors import MutascopeError
from mutascope.plan import PlanSpec, build_plan
from mutascope.store import open_results
from mutascope.testing import TINY_FAMILIES, tiny_model


def test_divergence_step():
    assert divergence_step([1, 2, 3], [1, 2, 3]) is None
    assert divergence_step([1, 5, 3], [1, 2, 3]) == 1
    assert divergence_step([1, 2], [1, 2, 3]) == 2
    assert divergence_step([1, 2, 3, 4], [1, 2, 3]) == 3


@pytest.mark.parametrize("family", ["llama", "gpt2", "phi3"])
def test_screen_mutates_exactly_the_intended_elements(family):
    """During each mutant's forward passes, only its tile differs from the original, set to its value."""
    subject = tiny_model(family)
    anatomy = subject.anatomy
    originals = {name: p.detach().clone() for name, p in subject.model.named_parameters()}
    plan = build_plan(PlanSpec.parse(layers="0,2", kinds="max,min,zero,scale:-2"), anatomy)
    mutations = plan.mutations[::7]
    engine = ReferenceEngine(subject)
    probes = prepare_probes(subject, engine, text_probes(2))
    seen = []

    def check(module, args):
        m = current[0]
        params = dict(subject.model.named_parameters())
        ref = anatomy.ref(m.layer, m.matrix)
        for name, p in params.items():
            if name != ref.param_name:
                assert torch.equal(p, originals[name]), name
        weight = anatomy.weight(m.layer, m.matrix)
        original = weight.clone()
        # rebuild the unmutated canonical matrix from the saved parameter
        stored = originals[ref.param_name]
        canon = stored.T if ref.transposed else stored
        original = canon[ref.offset : ref.offset + ref.shape[0]]
        diff = weight != original
        expected = torch.zeros_like(diff)
        tile = original[m.r0 : m.r1, m.c0 : m.c1]
        want = tile * m.value if m.kind.name == "scale" else torch.full_like(tile, m.value)
        assert torch.equal(weight[m.r0 : m.r1, m.c0 : m.c1], want)
        expected[m.r0 : m.r1, m.c0 : m.c1] = tile != want
        assert torch.equal(diff, expected)
        # other parts of a fused weight are untouched too
        full = dict(subject.model.named_parameters())[ref.param_name]
        mask = torch.ones_like(full, dtype=torch.bool)
        view = mask.T if ref.transposed else mask
        view[ref.offset + m.r0 : ref.offset + m.r1, m.c0 : m.c1] = False
        assert torch.equal(full[mask], stored[mask])
        seen.append(m.mutation_id)

    current = [None]
    handle = subject.model.register_forward_pre_hook(check)
    try:
        for m in mutations:
            current[0] = m
            list(engine.run([m], probes))
    finally:
        handle.remove()
    assert set(seen) == {m.mutation_id for m in mutations}
    for name, p in subject.model.named_parameters():
        assert torch.equal(p, originals[name])


def _last_block(subject):
    """A module every engine runs on every pass (the last decoder block)."""
    return subject.model.get_submodule(subject.anatomy.block_path(subject.anatomy.n_layers - 1))


def _count_forwards(subject, job) -> int:
    calls = [0]
    handle = _last_block(subject).register_forward_pre_hook(lambda module, args: calls.__setitem__(0, calls[0] + 1))
    try:
        job.run()
    finally:
        handle.remove()
    return calls[0]


@pytest.mark.parametrize("engine", ["reference", "batched"])
@pytest.mark.parametrize("failure", [RuntimeError, KeyboardInterrupt])
def test_weights_are_bit_identical_after_a_screen_stopped_mid_way(tmp_path, failure, engine):
    subject = tiny_model("llama")
    before = subject.content_hash()
    spec = PlanSpec.parse(layers="1", matrices="q,gate")

    def make(name):
        job = screen_of(subject, text_probes(4), spec, tmp_path / name, chunk_size=3, engine=engine)
        job.prepared()
        return job

    total = _count_forwards(subject, make("count.duckdb"))
    job = make("r.duckdb")
    calls = [0]

    def boom(module, args):
        calls[0] += 1
        if calls[0] == total // 2:
            raise failure("stop")

    handle = _last_block(subject).register_forward_pre_hook(boom)
    try:
        with pytest.raises(failure):
            job.run()
    finally:
        handle.remove()
    assert subject.content_hash() == before
    with open_results(tmp_path / "r.duckdb") as r:
        n = r.query("SELECT count(DISTINCT mutation_id) AS n FROM outcomes")["n"][0]
    assert 0 < n < len(job.mutations) and n % 3 == 0  # only whole chunks were committed


def test_completed_screen_leaves_weights_untouched(tmp_path):
    subject = tiny_model("gpt2")
    before = subject.content_hash()
    summary = screen_of(
        subject, text_probes(4), PlanSpec.parse(layers="0", kinds="max,min,zero"), tmp_path / "r.duckdb"
    ).run()
    assert summary.n_done == summary.n_mutations > 0
    assert subject.content_hash() == before


@pytest.mark.parametrize("engine", ["reference", "batched"])
def test_interrupted_and_resumed_screen_equals_an_uninterrupted_one(tmp_path, engine):
    """Identical tables. The batched engine's effect sizes (margins, log-probability
    drops) are float measurements whose last bits depend on which mutants share a
    batch, so they are compared to 1e-4; every call, token and text is identical."""
    spec = PlanSpec.parse(layers="0,2", matrices="v,up,down", kinds="max,min")
    subject = tiny_model("llama")
    screen_of(subject, text_probes(6), spec, tmp_path / "full.duckdb", chunk_size=4, engine=engine).run()

    def stop_after_two_chunks(done, total):
        if done >= 8:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        screen_of(subject, text_probes(6), spec, tmp_path / "part.duckdb", chunk_size=4, engine=engine).run(
            stop_after_two_chunks
        )
    resumed = screen_of(subject, text_probes(6), spec, tmp_path / "part.duckdb", chunk_size=5, engine=engine).run()
    assert resumed.n_run_now == resumed.n_mutations - 8
    again = screen_of(subject, text_probes(6), spec, tmp_path / "part.duckdb", engine=engine).run()
    assert again.n_run_now == 0
    full, part = tables(tmp_path / "full.duckdb"), tables(tmp_path / "part.duckdb")
    n_exact = 7  # mutation_id, probe_id, nsm, divergence, output_tokens, output_text, phenotype_id
    assert [r[:n_exact] for r in full.pop("outcomes")] == [r[:n_exact] for r in part["outcomes"]]
    assert full == {k: v for k, v in part.items() if k != "outcomes"}
    effects_full = [r[n_exact:] for r in tables(tmp_path / "full.duckdb")["outcomes"]]
    effects_part = [r[n_exact:] for r in part["outcomes"]]
    for a, b in zip(effects_full, effects_part):
        assert [x is None for x in a] == [x is None for x in b]
        assert [x for x in a if x is not None] == pytest.approx([x for x in b if x is not None], rel=1e-4, abs=1e-4)
    keys = [(row[0], row[1]) for row in part["outcomes"]]
    assert len(keys) == len(set(keys)) == 2 * resumed.n_mutations


def test_outcome_table_contents(tmp_path):
    subject = tiny_model("llama")
    spec = PlanSpec.parse(layers="0-2", matrices="all", kinds="max,min")
    screen_of(subject, text_probes(8), spec, tmp_path / "r.duckdb").run()
    with open_results(tmp_path / "r.duckdb") as r:
        probes = r.probes.set_index("probe_id")
        outcomes = r.outcomes
        assert set(outcomes.columns) >= {
            "mutation_id",
            "probe_id",
            "nsm",
            "divergence",
            "output_tokens",
            "output_text",
            "phenotype_id",
        }
        for o in outcomes.itertuples():
            wt = list(probes.loc[o.probe_id, "wt_tokens"])
            assert o.nsm == (list(o.output_tokens) != wt)
            assert (o.phenotype_id == 0) == (not o.nsm)
            if o.nsm:
                assert o.divergence == divergence_step(list(o.output_tokens), wt)
        # distinct outputs get distinct phenotype ids per probe, numbered in plan order
        for _pid, group in outcomes.groupby("probe_id"):
            by_output = group.groupby(group.output_tokens.map(tuple))["phenotype_id"].nunique()
            assert (by_output == 1).all()
            nsms = group[group.phenotype_id > 0].sort_values("mutation_id")
            first_seen = nsms.drop_duplicates("phenotype_id")["phenotype_id"].tolist()
            assert first_seen == list(range(1, len(first_seen) + 1))
        assert outcomes.nsm.any() and (~outcomes.nsm).any()


def test_a_different_configuration_is_refused_and_the_file_kept(tmp_path):
    subject = tiny_model("llama")
    path = tmp_path / "r.duckdb"
    screen_of(subject, text_probes(4), PlanSpec.parse(layers="0", matrices="q"), path).run()
    before = tables(path)
    with pytest.raises(MutascopeError, match=r"different screen \(differs in: plan.layers"):
        screen_of(subject, text_probes(4), PlanSpec.parse(layers="1", matrices="q"), path).run()
    with pytest.raises(MutascopeError, match="probes"):
        screen_of(subject, text_probes(5), PlanSpec.parse(layers="0", matrices="q"), path).run()
    assert tables(path) == before


def test_a_file_that_is_not_a_results_file_is_refused(tmp_path):
    path = tmp_path / "notes.duckdb"
    path.write_text("not a database")
    with pytest.raises(MutascopeError, match="not a readable mutascope results file"):
        screen_of(tiny_model("llama"), text_probes(2), PlanSpec.parse(layers="0", matrices="q"), path).run()
    assert path.read_text() == "not a database"


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_every_tiny_family_screens(tmp_path, family):
    subject = tiny_model(family)
    summary = screen_of(
        subject, text_probes(3), PlanSpec.parse(layers="0", rows="0", cols="0"), tmp_path / "r.duckdb"
    ).run()
    assert summary.n_done == len(subject.anatomy.matrices) * 2


def test_export_writes_parquet(tmp_path):
    import pyarrow.parquet as pq

    subject = tiny_model("llama")
    screen_of(subject, text_probes(3), PlanSpec.parse(layers="0", matrices="k"), tmp_path / "r.duckdb").run()
    with open_results(tmp_path / "r.duckdb") as r:
        files = r.export(tmp_path / "pq")
        n = len(r.outcomes)
    assert {f.name for f in files} == {
        "runs.parquet",
        "probes.parquet",
        "mutations.parquet",
        "outcomes.parquet",
        "progress.parquet",
        "fills.parquet",
    }
    assert pq.read_table(tmp_path / "pq" / "outcomes.parquet").num_rows == n


@pytest.mark.parametrize("engine", ["reference", "batched"])
def test_progress_moves_within_a_chunk_and_changes_nothing_stored(tmp_path, engine):
    """A screen of one chunk of several batches reports counts between 0 and the whole
    chunk while it runs (the whole chunk only once it is committed); its tables equal
    those of the same screen run without a progress callback."""
    subject = tiny_model("llama")
    spec = PlanSpec.parse(layers="0,2", matrices="v,down", kinds="max,min")
    options = {"batch_size": 4} if engine == "batched" else None
    n = len(build_plan(spec, subject.anatomy))
    heard = []
    screen_of(
        subject, text_probes(4), spec, tmp_path / "seen.duckdb", chunk_size=n, engine=engine, engine_options=options
    ).run(lambda done, total: heard.append((done, total)))
    screen_of(
        subject, text_probes(4), spec, tmp_path / "quiet.duckdb", chunk_size=n, engine=engine, engine_options=options
    ).run()
    assert heard[0] == (0, n) and heard[-1] == (n, n)
    counts = [done for done, _ in heard]
    assert counts == sorted(counts)
    inside = [d for d in counts if 0 < d < n]
    assert len(inside) >= 2, heard
    assert tables(tmp_path / "seen.duckdb")["outcomes"] == tables(tmp_path / "quiet.duckdb")["outcomes"]
