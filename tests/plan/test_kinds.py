"""The table of kinds (``mutascope.plan.kinds.KINDS``): parsing, the written value and the tile
all come from one rule per kind, so a new kind is one entry."""

from __future__ import annotations

import pytest
import torch

from mutascope.errors import MutascopeError
from mutascope.plan import BASE_KINDS, KINDS, PARAMETRIC, Kind, KindRule, Mutation, applied, kind_value, parse_kinds


def test_the_table_holds_the_documented_kinds_in_order():
    assert list(KINDS) == ["max", "min", "zero", "value", "scale", "sym", "noise"]
    assert BASE_KINDS == ("max", "min", "zero")
    assert PARAMETRIC == ("value", "scale", "sym", "noise")
    with pytest.raises(
        MutascopeError,
        match=r"^unknown kind 'twice': use max, min, zero, value:X, scale:X, sym:X "
        r"or noise:X$",
    ):
        Kind.parse("twice")
    assert parse_kinds("sym,max") == (Kind("sym", 1.0), Kind("sym", -1.0), Kind("max"))


def test_a_new_kind_is_one_rule(monkeypatch):
    """Registering a rule is all it takes: it parses, states its value and writes its tile."""
    rule = KindRule(
        True, lambda x, w: x * float(w.abs().mean()), tile=lambda original, value, site, kind: -original * value
    )
    monkeypatch.setitem(KINDS, "flip", rule)
    kind = Kind.parse("flip:2")
    assert kind == Kind("flip", 2.0) and str(kind) == "flip:2"
    weight = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    assert kind_value(kind, weight) == pytest.approx(2 * float(weight.abs().mean()))
    m = Mutation(mutation_id=0, layer=0, matrix="q", row=0, col=0, kind=kind, value=3.0, r0=0, r1=2, c0=0, c1=2)
    before = weight.clone()
    with applied(weight, m):
        assert torch.equal(weight[:2, :2], -before[:2, :2] * 3.0) and torch.equal(weight[2:], before[2:])
    assert torch.equal(weight, before)


def test_a_rules_check_of_its_argument_is_one_line():
    with pytest.raises(MutascopeError, match=r"^kind 'noise:0': the noise scale must be above 0, e\.g\. noise:0\.001$"):
        Kind.parse("noise:0")
    with pytest.raises(MutascopeError, match="is not a number"):
        Kind.parse("scale:x")
