"""A screen's configuration: checked once when built, frozen, and one identity before and after the
model loads (what the file check compares before loading is part of what the screen stores)."""

from __future__ import annotations

import dataclasses

import pytest

from helpers import text_probes
from mutascope.backends import Placement
from mutascope.errors import MutascopeError
from mutascope.plan import PlanSpec
from mutascope.screen import EngineChoice, ModelSource, ProbeSet, Screen, ScreenConfig
from mutascope.testing import tiny_model

SPEC = PlanSpec.parse(layers="0", matrices="q", kinds="max,min")


def config(tmp_path, **kw) -> ScreenConfig:
    return ScreenConfig(probes=text_probes(3), plan=SPEC, out=tmp_path / "s.duckdb", **kw)


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"order": "random"}, "unknown order 'random'"),
        ({"outputs": "some"}, "unknown --outputs 'some'"),
        ({"shard": (2, 2)}, "bad shard 2/2"),
        ({"engine": EngineChoice(chunk_size=0)}, "--chunk-size must be at least 1, got 0"),
        ({"engine": EngineChoice("reference", batch_size=4)}, "only apply to the batched engine"),
        ({"engine": EngineChoice("reference"), "outputs": "calls"}, "--outputs calls needs the batched engine"),
        ({"engine": EngineChoice("nope")}, "unknown engine 'nope'"),
        ({"placement": Placement(workers=0)}, "--workers must be at least 1, got 0"),
        ({"engine": EngineChoice("reference"), "placement": Placement(workers=2)}, "run the batched engine"),
    ],
)
def test_every_concern_is_checked_when_the_configuration_is_built(tmp_path, kw, message):
    with pytest.raises(MutascopeError, match=message):
        config(tmp_path, **kw)


def test_the_configuration_is_frozen_and_normalised(tmp_path):
    c = config(tmp_path, model=ModelSource(name="some/model"))
    assert isinstance(c.probes, ProbeSet) and c.probes.items == tuple(text_probes(3))
    assert c.placement.source == "some/model"  # where workers load the model from
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.order = "predicted"  # type: ignore[misc]


def test_the_identity_before_loading_is_part_of_the_identity_after(tmp_path):
    subject = tiny_model("llama")
    c = config(tmp_path)
    before = c.identity()
    after = Screen(subject, c).identity()
    assert set(before) < set(after) and {"eos"} <= set(after) - set(before)
    for key in ("dtype", "device", "plan", "shard", "probes"):
        assert before[key] == after[key]
    assert after["model"]["hash"] == subject.content_hash()


def test_a_probe_id_given_twice_is_refused_when_the_probes_resolve(tmp_path):
    c = ScreenConfig(probes=text_probes(3) * 2, plan=SPEC, out=tmp_path / "s.duckdb")
    with pytest.raises(MutascopeError, match="probe id 'hello' is given twice"):
        Screen(tiny_model("llama"), c)
