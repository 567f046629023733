"""The backend interface is one base class: a toy backend registered from outside the package runs a
whole screen (chosen by name through the placement) with the local backend's results, a subclass
missing a member cannot be built, and the registry requires exactly one backend per placement."""

from __future__ import annotations

import pytest

from helpers import screen_of, tables, text_probes
from mutascope.backends import BACKENDS, Backend, Placement, chosen_backend, register_backend
from mutascope.backends.local import run_task
from mutascope.errors import MutascopeError
from mutascope.plan import PlanSpec
from mutascope.testing import tiny_model

SPEC = PlanSpec.parse(layers="0", matrices="q,down", kinds="max,min")


class ReversedBackend(Backend):
    """A toy transport: runs the tasks last to first on the driver's engine, in this process."""

    engines = None
    asked_by = "Placement(backend='reversed')"
    built: list[ReversedBackend] = []

    def __init__(self, engine):
        self.engine, self.closed, self.seen = engine, False, []

    @classmethod
    def chosen(cls, placement):
        return False  # only when named

    @classmethod
    def build(cls, subject, engine, engine_options, placement, status=None):
        backend = cls(engine)
        cls.built.append(backend)
        return backend

    @property
    def description(self):
        return "reversed " + self.engine.description

    def run(self, tasks, probes, rows_done=None):
        for task in reversed(list(tasks)):
            self.seen.append(task.index)
            rows, seconds = run_task(self.engine, task, probes)
            yield task, rows, seconds

    def close(self):
        self.closed = True


def test_a_registered_toy_backend_runs_a_screen_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setitem(BACKENDS, "reversed", ReversedBackend)
    subject = tiny_model("llama")
    screen_of(subject, text_probes(5), SPEC, tmp_path / "local.duckdb", chunk_size=4).run()
    ReversedBackend.built.clear()
    toy = tmp_path / "toy.duckdb"
    screen_of(subject, text_probes(5), SPEC, toy, chunk_size=4, placement=Placement(backend="reversed")).run()
    (backend,) = ReversedBackend.built
    assert backend.closed and backend.seen == sorted(backend.seen, reverse=True) and len(backend.seen) > 1
    assert tables(toy) == tables(tmp_path / "local.duckdb")


def test_register_backend_takes_backend_subclasses_only(monkeypatch):
    monkeypatch.setattr("mutascope.backends.BACKENDS", dict(BACKENDS))
    register_backend("reversed", ReversedBackend)
    assert chosen_backend(Placement(backend="reversed")) == "reversed"
    with pytest.raises(TypeError, match="not a mutascope.backends.Backend"):
        register_backend("plain", object)
    with pytest.raises(MutascopeError, match="unknown backend 'nope'"):
        chosen_backend(Placement(backend="nope"))


def test_a_backend_missing_a_member_cannot_be_built():
    class NoRun(Backend):
        @classmethod
        def chosen(cls, placement):
            return False

        @classmethod
        def build(cls, subject, engine, engine_options, placement, status=None):
            return cls()

        @property
        def description(self):
            return "none"

    with pytest.raises(TypeError, match="run"):
        NoRun()


def test_exactly_one_backend_must_claim_a_placement(monkeypatch):
    class Greedy(ReversedBackend):
        @classmethod
        def chosen(cls, placement):
            return True  # claims everything, as the local backend does without workers

    monkeypatch.setitem(BACKENDS, "greedy", Greedy)
    with pytest.raises(MutascopeError, match=r"2 backends \(local, greedy\) claim these placement options"):
        chosen_backend(Placement())
    assert chosen_backend(Placement(backend="local")) == "local"
