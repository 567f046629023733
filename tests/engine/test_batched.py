"""The batched engine against the reference: identical outcomes, whatever the batching."""

import dataclasses
import math
import random

import pytest

from helpers import GREEDY, screen_of, tables, text_probes
from mutascope.engine import BatchedEngine, BatchedOutcomeRow, ReferenceEngine, estimate_seconds, prepare_probes
from mutascope.plan import PlanSpec, build_plan
from mutascope.probes import Decoding, Probe
from mutascope.testing import TINY_FAMILIES, tiny_model

KINDS = "max,min,zero,value:0.5,scale:-2,sym:1,sym:-0.5,noise:0.5"


def outcome(row):
    return (row.mutation_id, row.probe_id, row.tokens, row.text, row.divergence)


def outcomes(engine, mutations, probes):
    return [outcome(r) for rows in engine.run(mutations, probes) for r in rows]


def covering_mutations(plan, seed=0):
    """One mutation per (layer, matrix, kind); every other one the ragged bottom-right tile."""
    groups = {}
    for m in plan.mutations:
        groups.setdefault((m.layer, m.matrix, str(m.kind)), []).append(m)
    rng = random.Random(seed)
    chosen = [
        max(ms, key=lambda m: (m.row, m.col)) if i % 2 == 0 else rng.choice(ms) for i, ms in enumerate(groups.values())
    ]
    return sorted(chosen, key=lambda m: m.mutation_id)


@pytest.fixture(scope="module", params=["llama", "gpt2", "phi3"])
def case(request):
    """A tiny model, prepared probes (greedy + sampled), mutations and the reference outcomes."""
    subject = tiny_model(request.param)
    reference = ReferenceEngine(subject)
    probes = prepare_probes(subject, reference, text_probes(8))
    plan = build_plan(PlanSpec.parse(kinds=KINDS), subject.anatomy)
    mutations = covering_mutations(plan)
    return subject, probes, mutations, outcomes(reference, mutations, probes)


@pytest.mark.parametrize("batch_size", [1, 7, 64])
def test_identical_to_the_reference(case, batch_size):
    subject, probes, mutations, expected = case
    assert {m.layer for m in mutations} == {0, 1, 2}
    assert {m.matrix for m in mutations} == set(subject.anatomy.matrices)
    assert any(m.height < 64 for m in mutations) and any(m.width < 64 for m in mutations)
    assert any(d is None for *_, d in expected) and any(d is not None for *_, d in expected)
    engine = BatchedEngine(subject, batch_size=batch_size)
    assert outcomes(engine, mutations, probes) == expected


def test_outcomes_do_not_depend_on_batch_neighbours(case):
    """Shuffled order and odd batch sizes put every mutant with other neighbours."""
    subject, probes, mutations, expected = case
    shuffled = random.Random(3).sample(mutations, len(mutations))
    got = outcomes(BatchedEngine(subject, batch_size=5), shuffled, probes)
    assert sorted(got, key=str) == sorted(expected, key=str)


def test_without_prefix_reuse_and_with_every_outcome_rechecked(case):
    subject, probes, mutations, expected = case
    few = mutations[::4]
    want = [o for o in expected if o[0] in {m.mutation_id for m in few}]
    assert outcomes(BatchedEngine(subject, batch_size=8, prefix_reuse=False), few, probes) == want
    exact = BatchedEngine(subject, batch_size=8, tie_tolerance=math.inf)
    rows = [r for rs in exact.run(few, probes) for r in rs]
    assert all(r.rechecked for r in rows)
    assert [outcome(r) for r in rows] == want


def test_a_near_tie_recheck_generates_up_to_the_tie_step_then_all_if_it_disagrees(case):
    subject, probes, mutations, _ = case
    engine = BatchedEngine(subject, batch_size=8)
    m, probe = mutations[0], probes[0]
    (want,) = next(iter(ReferenceEngine(subject).run([m], [probe])))
    assert len(want.tokens) >= 3
    call = (want.tokens, want.divergence)
    ours = BatchedOutcomeRow(
        mutation_id=m.mutation_id, probe_id=probe.id, tokens=want.tokens, text=None, divergence=want.divergence
    )
    kept, regenerated = engine._recheck(m, probe, ours, tie_step=1)
    assert (kept.tokens, kept.divergence) == call and not regenerated
    flipped = list(want.tokens)
    flipped[1] = (flipped[1] + 1) % subject.model.config.vocab_size  # we decided the near tie otherwise
    fixed, regenerated = engine._recheck(m, probe, dataclasses.replace(ours, tokens=tuple(flipped)), tie_step=1)
    assert (fixed.tokens, fixed.divergence) == call and regenerated
    # Decisions after the tie step had margins above the tolerance: the re-check does not revisit them.
    later = list(want.tokens)
    later[2] = (later[2] + 1) % subject.model.config.vocab_size
    trusted, regenerated = engine._recheck(m, probe, dataclasses.replace(ours, tokens=tuple(later)), tie_step=1)
    assert trusted.tokens == tuple(later) and not regenerated
    # A calls-only NSM carries its tokens only up to the divergence step: enough for a call re-check.
    partial = dataclasses.replace(ours, tokens=want.tokens[:2])
    checked, regenerated = engine._recheck(m, probe, partial, tie_step=1)
    assert checked.tokens == want.tokens[:2] and not regenerated


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_every_tiny_family(family):
    subject = tiny_model(family)
    reference = ReferenceEngine(subject)
    probes = prepare_probes(subject, reference, text_probes(6))
    plan = build_plan(PlanSpec.parse(kinds="max,min,zero"), subject.anatomy)
    mutations = plan.mutations[:: max(1, len(plan) // 24)]
    assert outcomes(BatchedEngine(subject, batch_size=16), mutations, probes) == outcomes(reference, mutations, probes)


@pytest.mark.parametrize("detection", ["forced", "incremental"])
def test_bfloat16(detection):
    subject = tiny_model("llama", dtype="bfloat16")
    reference = ReferenceEngine(subject)
    probes = prepare_probes(subject, reference, text_probes(6))
    plan = build_plan(PlanSpec.parse(layers="0,2", kinds="max,min,scale:0.5"), subject.anatomy)
    mutations = plan.mutations[::9]
    engine = BatchedEngine(subject, batch_size=16, detection=detection)
    assert outcomes(engine, mutations, probes) == outcomes(reference, mutations, probes)
    assert engine.detection == detection


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_bfloat16_incremental_detection_is_the_reference_bit_for_bit(family):
    """16-bit weights pick incremental detection; on this machine's kernels it reproduces ``generate``'s
    logits on every probe's wild type, so only exact ties are re-checked, and outcomes stay the reference's."""
    subject = tiny_model(family, dtype="bfloat16")
    reference = ReferenceEngine(subject)
    probes = prepare_probes(subject, reference, text_probes(4))
    mutations = covering_mutations(build_plan(PlanSpec.parse(kinds="max,min"), subject.anatomy))
    engine = BatchedEngine(subject, batch_size=8)
    assert engine.detection == "incremental" and BatchedEngine(tiny_model(family)).detection == "forced"
    assert outcomes(engine, mutations, probes) == outcomes(reference, mutations, probes)
    assert engine.stats["probes_exact"] == len(probes)
    assert all(state.ragged for state in engine._states.values())  # NSMs of all lengths continued together
    forced = BatchedEngine(subject, batch_size=8, detection="forced")
    outcomes(forced, mutations, probes)
    assert engine.stats["rechecked"] <= forced.stats["rechecked"]


def test_bfloat16_falls_back_to_the_bound_where_the_arithmetic_differs(monkeypatch):
    """If the wild type's logits are not the reference's bit for bit (other kernels), the engine keeps the
    dtype's near-tie bound: outcomes still equal the reference's, with more re-checks."""
    from mutascope.engine import batched

    subject = tiny_model("llama", dtype="bfloat16")
    reference = ReferenceEngine(subject)
    probes = prepare_probes(subject, reference, text_probes(4))
    real = batched.reference_run

    def shifted(*args, **kwargs):
        run = real(*args, **kwargs)
        return dataclasses.replace(run, logits=run.logits + 2.0**-6)

    monkeypatch.setattr(batched, "reference_run", shifted)
    mutations = covering_mutations(build_plan(PlanSpec.parse(kinds="max,min"), subject.anatomy))
    engine = BatchedEngine(subject, batch_size=8)
    assert outcomes(engine, mutations, probes) == outcomes(reference, mutations, probes)
    assert engine.stats["probes_exact"] == 0
    assert all(state.tolerance == engine.tie_tolerance for state in engine._states.values())


def test_detection_mode_is_checked():
    with pytest.raises(ValueError, match="detection"):
        BatchedEngine(tiny_model("llama"), detection="teacher")


def test_multiple_choice_probes_take_one_position():
    subject = tiny_model("llama")
    reference = ReferenceEngine(subject)
    probes = [Probe(f"q{i}", f"Question {i}? Answer:", 1, GREEDY, kind="choice", answer="A") for i in range(3)]
    prepared = prepare_probes(subject, reference, probes)
    mutations = build_plan(PlanSpec.parse(kinds="max,min"), subject.anatomy).mutations[::5]
    engine = BatchedEngine(subject, batch_size=32)
    seen = []
    handle = engine.decoder_model.register_forward_hook(lambda m, a, out: seen.append(out.last_hidden_state.shape[1]))
    try:
        got = outcomes(engine, mutations, prepared)
    finally:
        handle.remove()
    assert got == outcomes(reference, mutations, prepared)
    assert all(len(t) <= 1 for _, _, t, _, _ in got)
    # one WT pass and one detection pass per batch, over the prompt only; no continuation step
    assert set(seen) == {len(p.prompt) for p in prepared}


def test_extra_measurements():
    subject = tiny_model("llama")
    reference = ReferenceEngine(subject)
    probes = prepare_probes(subject, reference, text_probes(8))
    plan = build_plan(PlanSpec.parse(layers="1", kinds="max,zero,scale:1"), subject.anatomy)
    rows = [r for rs in BatchedEngine(subject, batch_size=64).run(plan.mutations, probes) for r in rs]
    assert all(isinstance(r, BatchedOutcomeRow) for r in rows)
    n_wt = {p.id: len(p.wt_tokens) for p in probes}
    for r in rows:
        assert r.min_margin >= 0 and math.isfinite(r.logprob_drop)
        assert r.logprob_drop_per_token == pytest.approx(r.logprob_drop / n_wt[r.probe_id])
        if r.nsm:
            assert r.margin is not None and r.margin >= r.min_margin
        else:
            assert r.margin is None
    by_kind = {}
    for m in plan.mutations:
        by_kind.setdefault(str(m.kind), set()).add(m.mutation_id)
    identity = [r for r in rows if r.mutation_id in by_kind["scale:1"]]
    assert all(not r.nsm and abs(r.logprob_drop) < 1e-4 for r in identity)
    strong = [r.logprob_drop for r in rows if r.mutation_id in by_kind["max"]]
    assert sum(strong) / len(strong) > 1.0


def test_weights_and_hooks_are_untouched_even_after_an_error():
    subject = tiny_model("gpt2")
    before = subject.content_hash()
    reference = ReferenceEngine(subject)
    probes = prepare_probes(subject, reference, text_probes(6))
    mutations = build_plan(PlanSpec.parse(layers="0,2", kinds="max,min"), subject.anatomy).mutations[::3]
    engine = BatchedEngine(subject, batch_size=8)
    list(engine.run(mutations, probes))
    calls = [0]

    def boom(module, args):
        calls[0] += 1
        if calls[0] == 3:
            raise RuntimeError("stop")

    handle = subject.model.get_decoder().register_forward_pre_hook(boom)
    try:
        with pytest.raises(RuntimeError):
            list(BatchedEngine(subject, batch_size=8).run(mutations, probes))
    finally:
        handle.remove()
    assert subject.content_hash() == before
    for module in subject.model.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks
        assert "forward" not in vars(module)


def test_screen_with_the_batched_engine_equals_the_reference(tmp_path):
    subject = tiny_model("llama")
    spec = PlanSpec.parse(layers="0,2", matrices="q,v,down", kinds="max,min")
    screen_of(subject, text_probes(6), spec, tmp_path / "ref.duckdb").run()
    screen_of(subject, text_probes(6), spec, tmp_path / "fast.duckdb", engine="batched", chunk_size=64).run()
    ref, fast = tables(tmp_path / "ref.duckdb"), tables(tmp_path / "fast.duckdb")
    assert ref["outcomes"] == fast["outcomes"] and ref["probes"] == fast["probes"]


def test_estimate_seconds():
    subject = tiny_model("llama")
    plan = build_plan(PlanSpec.parse(layers="0-2", kinds="max,min"), subject.anatomy)
    seconds = estimate_seconds(subject, text_probes(6), plan, sample=8)
    assert 0 < seconds["calls"] < seconds["full"] < 600


def test_estimate_times_blocks_spread_over_the_plan(monkeypatch):
    """A mutant's cost depends on its layer, so the timed blocks cover the plan evenly, early to late."""
    subject = tiny_model("llama")
    plan = build_plan(PlanSpec.parse(kinds="max,min"), subject.anatomy)
    timed = []
    run = BatchedEngine.run

    def recording(self, mutations, probes, **kwargs):
        timed.append([m.mutation_id for m in mutations])
        return run(self, mutations, probes, **kwargs)

    monkeypatch.setattr(BatchedEngine, "run", recording)
    estimate_seconds(subject, text_probes(2), plan, sample=4, blocks=4)
    starts = [ids[0] for ids in timed]
    quarter = len(plan.mutations) / 4
    assert [int(s // quarter) for s in starts] == [0, 1, 2, 3] and all(len(ids) == 4 for ids in timed)


def test_estimate_times_blocks_of_one_full_batch(monkeypatch):
    """A screen feeds the engine full batches, so the calibration does too: timed runs of 32
    mutants in batches of 128 paid each pass's fixed costs for a quarter of the rows and put
    a small screen at several times its time."""
    from mutascope.engine.batched import auto_batch_size

    subject = tiny_model("llama")
    plan = build_plan(PlanSpec.parse(kinds="max,min", tile="16"), subject.anatomy)
    timed = []
    run = BatchedEngine.run

    def recording(self, mutations, probes, **kwargs):
        timed.append(len(mutations))
        return run(self, mutations, probes, **kwargs)

    monkeypatch.setattr(BatchedEngine, "run", recording)
    probes = prepare_probes(subject, ReferenceEngine(subject), text_probes(2))
    estimate_seconds(subject, probes, plan)
    size = auto_batch_size(subject, max(len(p.prompt) + p.probe.max_new_tokens for p in probes))
    assert len(plan) > 4 * size and timed == [size] * 4


@pytest.mark.real_model
def test_smollm2_hundred_random_mutations_identical_to_the_reference():
    """SmolLM2-135M, 100 random mutations across layers and matrices, greedy + sampled, 8 tokens."""
    from mutascope.model.subject import load_model

    subject = load_model()
    text = "The life cycle of Drosophila:"
    probes = [Probe("greedy", text, 8, Decoding("greedy")), Probe("sampled", text, 8, Decoding("sample", 0.7, 0))]
    reference = ReferenceEngine(subject)
    prepared = prepare_probes(subject, reference, probes)
    plan = build_plan(PlanSpec.parse(kinds="max,min,zero"), subject.anatomy)
    mutations = sorted(random.Random(0).sample(plan.mutations, 100), key=lambda m: m.mutation_id)
    assert len({m.layer for m in mutations}) > 15 and len({m.matrix for m in mutations}) == 7
    engine = BatchedEngine(subject, batch_size=32)
    rows = [r for rs in engine.run(mutations, prepared) for r in rs]
    expected = outcomes(reference, mutations, prepared)
    assert [outcome(r) for r in rows] == expected
    assert any(r.nsm for r in rows) and any(not r.nsm for r in rows)


@pytest.mark.parametrize("outputs, tolerance", [("full", None), ("calls", None), ("full", math.inf)])
def test_rows_done_counts_every_row_once_batch_by_batch_without_changing_the_rows(outputs, tolerance):
    """An engine's ``rows_done`` grows after every batch (detection, continuation, re-check:
    infinite tolerance re-checks every row) to exactly mutants x probes, and the rows are
    those of a run without it."""
    subject = tiny_model("llama")
    probes = prepare_probes(subject, ReferenceEngine(subject), text_probes(6))
    mutations = covering_mutations(build_plan(PlanSpec.parse(kinds="max,min,scale:-2"), subject.anatomy))[::2]
    heard = []
    engine = BatchedEngine(subject, batch_size=4, tie_tolerance=tolerance)
    with_counts = [
        outcome(r) for rs in engine.run(mutations, probes, outputs=outputs, rows_done=heard.append) for r in rs
    ]
    without = [
        outcome(r)
        for rs in BatchedEngine(subject, batch_size=4, tie_tolerance=tolerance).run(mutations, probes, outputs=outputs)
        for r in rs
    ]
    assert with_counts == without
    assert heard == sorted(set(heard)) and heard[-1] == len(mutations) * len(probes)
    assert len(heard) > len(probes)  # more than one report per probe: batch by batch


def test_the_reference_engine_reports_each_probe_run():
    subject = tiny_model("llama")
    reference = ReferenceEngine(subject)
    probes = prepare_probes(subject, reference, text_probes(4))
    mutations = build_plan(PlanSpec.parse(layers="0", matrices="q", kinds="max,min"), subject.anatomy).mutations[:3]
    heard = []
    rows = [r for rs in reference.run(mutations, probes, rows_done=heard.append) for r in rs]
    assert heard == list(range(1, len(rows) + 1)) == list(range(1, 3 * len(probes) + 1))


def test_bfloat16_incremental_rows_skip_the_blocks_below_their_layer():
    """Where a probe is exact, an incremental batch's rows start at their own layer: rows of layer 1
    never compute block 0 (it runs on an empty batch), and outcomes stay the reference's."""
    subject = tiny_model("llama", dtype="bfloat16")
    reference = ReferenceEngine(subject)
    probes = prepare_probes(subject, reference, text_probes(2))
    plan = build_plan(PlanSpec.parse(layers="0,1", kinds="max,min"), subject.anatomy)
    mutations = [m for m in plan.mutations if m.layer == 1][:6] + [m for m in plan.mutations if m.layer == 0][:2]
    engine = BatchedEngine(subject, batch_size=8)
    rows_in_block = {0: [], 1: []}
    blocks = engine.blocks
    hooks = [
        blocks[i].mlp.register_forward_hook(lambda m, a, out, i=i: rows_in_block[i].append(a[0].shape[0]))
        for i in (0, 1)
    ]
    try:
        calls = [r.divergence for rows in engine.run(mutations, probes, outputs="calls") for r in rows]
    finally:
        for h in hooks:
            h.remove()
    assert calls == [r.divergence for rows in reference.run(mutations, probes) for r in rows]
    assert engine.stats["probes_exact"] == len(probes)
    # one detection batch of 8 rows, 2 of layer 0 and 6 of layer 1: block 0 computes 2 rows, block 1 all 8
    assert 2 in rows_in_block[0] and 8 not in rows_in_block[0]
    assert 8 in rows_in_block[1]
    # a batch with no row of layer 0 computes block 0 for no row, and still decodes as the reference
    upper = [m for m in plan.mutations if m.layer == 1][6:12]
    assert outcomes(BatchedEngine(subject, batch_size=8), upper, probes) == outcomes(reference, upper, probes)


def test_bfloat16_without_the_attention_registry_continues_rows_of_one_length_together():
    """A model whose attention is its own function ("eager", not in transformers' registry) cannot
    have its attention computed per row length: NSMs are continued by divergence step, still exactly."""
    subject = tiny_model("llama", dtype="bfloat16")
    subject.model.config._attn_implementation = "eager"
    reference = ReferenceEngine(subject)
    probes = prepare_probes(subject, reference, text_probes(6))
    mutations = covering_mutations(build_plan(PlanSpec.parse(kinds="max,min"), subject.anatomy))
    engine = BatchedEngine(subject, batch_size=8)
    assert outcomes(engine, mutations, probes) == outcomes(reference, mutations, probes)
    assert engine.stats["probes_exact"] == len(probes)
    assert not any(state.ragged for state in engine._states.values())
