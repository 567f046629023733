"""The local backend and how the library chooses a backend (``mutascope.backends``), without Ray:
tasks run in order on one engine, outputs modes pass through, placements are checked before any
slow work, and every backend closes as a context manager."""

from __future__ import annotations

import pytest

from helpers import text_probes
from mutascope.backends import (
    BACKENDS,
    LocalBackend,
    Placement,
    Task,
    backend_class,
    check_backend,
    chosen_backend,
    chunk_grid,
    make_backend,
)
from mutascope.backends.local import select_probes
from mutascope.engine import BatchedEngine, ReferenceEngine, prepare_probes
from mutascope.errors import MutascopeError
from mutascope.plan import PlanSpec, build_plan
from mutascope.testing import tiny_model


@pytest.fixture(scope="module")
def setup():
    subject = tiny_model("llama")
    engine = BatchedEngine(subject)
    probes = prepare_probes(subject, engine, text_probes(5))
    plan = build_plan(PlanSpec.parse(layers="0", matrices="q,down", kinds="max,min"), subject.anatomy)
    return subject, engine, probes, list(plan)


def test_tasks_run_in_order_with_their_probes_and_outputs(setup):
    subject, engine, probes, mutations = setup
    tasks = [
        Task(index=0, mutations=tuple(mutations[:3]), probe_ids=("story",), outputs="full"),
        Task(index=1, mutations=tuple(mutations[3:6]), probe_ids=None, outputs="calls"),
    ]
    with LocalBackend(engine) as backend:
        assert backend.description == engine.description
        done = list(backend.run(tasks, probes))
    assert [t.index for t, _, _ in done] == [0, 1]
    first, second = done[0][1], done[1][1]
    assert [(r.mutation_id, r.probe_id) for r in first] == [(m.mutation_id, "story") for m in mutations[:3]]
    assert [(r.mutation_id, r.probe_id) for r in second] == [
        (m.mutation_id, p) for m in mutations[3:6] for p in ("hello", "story")
    ]
    assert all(r.tokens is not None for r in first)  # full: every output known
    full = {(r.mutation_id, r.probe_id): r for rows in engine.run(mutations[3:6], probes) for r in rows}
    for r in second:  # calls only: the same calls and effect sizes, outputs where detection finished them
        assert r.divergence == full[(r.mutation_id, r.probe_id)].divergence
        assert r.logprob_drop == pytest.approx(full[(r.mutation_id, r.probe_id)].logprob_drop)
        assert r.tokens is None or r.tokens == full[(r.mutation_id, r.probe_id)].tokens
    assert all(seconds >= 0 for _, _, seconds in done)


def test_select_probes_keeps_screen_order(setup):
    _, _, probes, _ = setup
    assert [p.id for p in select_probes(probes, ("story", "hello"))] == ["hello", "story"]
    assert select_probes(probes, None) == list(probes)


def test_the_chunk_grid_is_fixed_whatever_is_done(setup):
    mutations = setup[3]
    tasks = chunk_grid(mutations, 4, done={0, 1, 5})
    assert [(t.index, [m.mutation_id for m in t.mutations]) for t in tasks][:2] == [(0, [2, 3]), (1, [4, 6, 7])]
    with pytest.raises(ValueError):
        chunk_grid(mutations, 0)


def test_the_library_chooses_the_backend_from_plain_arguments(setup):
    subject, engine, _, _ = setup
    assert list(BACKENDS) == ["ray", "replay", "local"]
    assert chosen_backend(Placement()) == "local"
    assert chosen_backend(Placement(replay="docs/atlas/tables")) == "replay"
    assert chosen_backend(Placement(workers=2)) == "ray" == chosen_backend(Placement(ray_address="auto"))
    assert backend_class("local") is LocalBackend
    with make_backend(subject, engine) as backend:
        assert isinstance(backend, LocalBackend) and backend.engine is engine
    with pytest.raises(MutascopeError, match="unknown backend 'slurm'"):
        backend_class("slurm")


def test_placements_and_engines_are_checked_before_any_work():
    with pytest.raises(MutascopeError, match="--workers must be at least 1, got 0"):
        check_backend("batched", Placement(workers=0))
    with pytest.raises(MutascopeError, match="--threads-per-worker must be at least 1, got 0"):
        check_backend("batched", Placement(threads_per_worker=0))
    with pytest.raises(
        MutascopeError, match="--workers and --ray-address run the batched engine; drop --engine reference"
    ):
        check_backend("reference", Placement(workers=2))
    assert check_backend("reference", Placement()) is LocalBackend


def test_the_local_backend_runs_any_engine(setup):
    subject, _, probes, mutations = setup
    reference = ReferenceEngine(subject)
    with make_backend(subject, reference) as backend:
        ((task, rows, _),) = backend.run([Task(index=0, mutations=tuple(mutations[:1]), probe_ids=("hello",))], probes)
    assert backend.description == "reference" and rows[0].mutation_id == mutations[0].mutation_id
