"""The engine registry (``mutascope.engine``): engines say what they support, and callers choose by
capability (``check_engine``), with one-line errors before any model loads."""

from __future__ import annotations

import pytest

from mutascope.engine import DEFAULT_ENGINE, ENGINES, OUTPUTS, BatchedEngine, ReferenceEngine, check_engine, make_engine
from mutascope.errors import MutascopeError
from mutascope.testing import tiny_model


def test_every_engine_states_its_outputs_and_options():
    assert OUTPUTS == ("full", "calls") and DEFAULT_ENGINE == "batched"
    assert ENGINES == {"batched": BatchedEngine, "reference": ReferenceEngine}
    for cls in ENGINES.values():
        assert "full" in cls.outputs and set(cls.outputs) <= set(OUTPUTS)
        assert isinstance(cls.options, tuple)
    assert "calls" in BatchedEngine.outputs and ReferenceEngine.outputs == ("full",)


def test_check_engine_says_which_engines_can():
    assert check_engine("batched", outputs="calls", options={"batch_size": 4, "fast_head": None}) is BatchedEngine
    assert check_engine("reference", options={"batch_size": None}) is ReferenceEngine  # None: not given
    with pytest.raises(
        MutascopeError,
        match=r"^--outputs calls needs the batched engine \(the reference engine "
        r"always decodes in full\)$",
    ):
        check_engine("reference", outputs="calls")
    with pytest.raises(MutascopeError, match=r"^batch_size only apply to the batched engine, not 'reference'$"):
        check_engine("reference", options={"batch_size": 3})
    with pytest.raises(MutascopeError, match="unknown --outputs 'some': choose full or calls"):
        check_engine("batched", outputs="some")
    with pytest.raises(MutascopeError, match="unknown engine 'fast': choose from batched, reference"):
        check_engine("fast")
    with pytest.raises(MutascopeError, match="batch size must be at least 1, got 0"):
        check_engine("batched", options={"batch_size": 0})


def test_make_engine_builds_with_the_given_options():
    subject = tiny_model("llama")
    engine = make_engine("batched", subject, batch_size=3, fast_head=None)
    assert isinstance(engine, BatchedEngine) and engine.batch_size == 3
    assert isinstance(make_engine("reference", subject), ReferenceEngine)
