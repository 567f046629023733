"""The local predicted effect against the real modules: the exact step equals the change that
writing the tile and running the model makes at the readout point (o's or down's input), and with
an objective read right after the mutated attention or MLP the whole estimate is the exact change."""

import pytest
import torch

from helpers import text_probes
from mutascope.engine import ReferenceEngine, prepare_probes
from mutascope.errors import MutascopeError
from mutascope.plan import PlanSpec, build_plan
from mutascope.plan.mutation import applied
from mutascope.predict import gradient_sums
from mutascope.predict.local import dense, is_local, local_changes, local_effects, recording
from mutascope.predict.scores import wt_loglik
from mutascope.testing import EXTRA_FAMILIES, TINY_FAMILIES, tiny_model

LAYER = 1


@pytest.fixture(scope="module", params=TINY_FAMILIES + EXTRA_FAMILIES)
def case(request):
    subject = tiny_model(request.param, dtype="float64")
    probes = prepare_probes(subject, ReferenceEngine(subject), text_probes(2))
    return subject, probes[0]


def _plan(subject, matrix, tile=(16, 16), kinds="max,min,scale:3"):
    spec = PlanSpec.parse(layers=str(LAYER), matrices=matrix, kinds=kinds, tile=list(tile))
    return build_plan(spec, subject.anatomy).mutations


def _readout(subject, matrix):
    anatomy = subject.anatomy
    return subject.model.get_submodule(anatomy.ref(LAYER, "o" if matrix in "qkvo" else "down").module_path)


def _run(subject, probe, module, *, output=False):
    """The readout module's input (or output) on the probe's teacher-forced sequence."""
    seen = {}

    def keep(t):  # (1, T, n), or (T, n) where the model flattens the batch (OPT's MLP)
        seen["x"] = (t[0] if t.dim() == 3 else t).detach().clone()

    if output:
        handle = module.register_forward_hook(lambda mod, args, out: keep(out))
    else:
        handle = module.register_forward_pre_hook(lambda mod, args: keep(args[0]))
    try:
        ids = torch.tensor([list(probe.prompt) + list(probe.wt_tokens[:-1])])
        with torch.no_grad():
            subject.model(input_ids=ids, use_cache=False)
    finally:
        handle.remove()
    return seen["x"]


def _recorded(subject, objective, keys):
    with recording(subject, keys) as rec:
        gradient_sums(subject, objective, (16, 16), keys)
    return rec


@pytest.mark.parametrize("matrix", ["q", "k", "gate", "up"])
def test_exact_step_equals_writing_the_tile(case, matrix):
    subject, probe = case
    if matrix not in subject.anatomy.matrices or not is_local(subject, matrix):
        pytest.skip(f"{matrix} has no exact step in this family")
    mutations = _plan(subject, matrix)[::7][:12]
    rec = _recorded(subject, wt_loglik(subject, probe), {(LAYER, matrix)})
    module = _readout(subject, matrix)
    wt = _run(subject, probe, module)
    checked = 0
    for chunk, part, index, grad in local_changes(subject, rec, LAYER, matrix, mutations):
        assert grad.shape == wt.shape
        for m, mine in zip(chunk, dense(part, index, wt.shape[1])):
            with applied(subject.anatomy.weight(m.layer, m.matrix), m):
                actual = _run(subject, probe, module) - wt
            assert actual.abs().max() > 1e-6, m.label()  # the mutation does change the readout
            torch.testing.assert_close(mine, actual, rtol=1e-6, atol=1e-9, msg=m.label)
            checked += 1
    assert checked == len(mutations)


@pytest.mark.parametrize("matrix", ["q", "k", "v", "o", "gate", "up", "down"])
def test_whole_estimate_is_exact_with_an_identity_downstream(case, matrix):
    """Objective: a fixed linear read of the mutated attention's or MLP's output."""
    subject, probe = case
    if matrix not in subject.anatomy.matrices:
        pytest.skip(f"no {matrix} in this family")
    anatomy = subject.anatomy
    out_module = subject.model.get_submodule(anatomy.ref(LAYER, "o" if matrix in "qkvo" else "down").module_path)
    hidden = _run(subject, probe, out_module, output=True)
    weights = torch.randn(hidden.shape, generator=torch.Generator().manual_seed(1), dtype=hidden.dtype)

    def objective():
        seen = {}
        handle = out_module.register_forward_hook(lambda mod, args, out: seen.__setitem__("x", out))
        try:
            ids = torch.tensor([list(probe.prompt) + list(probe.wt_tokens[:-1])])
            subject.model(input_ids=ids, use_cache=False)
        finally:
            handle.remove()
        return (seen["x"].reshape(weights.shape) * weights).sum()

    def value():
        with torch.no_grad():
            return float(objective())

    mutations = _plan(subject, matrix)[::11][:8]
    key = (LAYER, matrix)
    rec = _recorded(subject, objective, {key})
    if is_local(subject, matrix):
        estimate = local_effects(subject, rec, {key: mutations})
    else:  # first order is exact here: -sum g (V - W) over the tile
        from mutascope.predict.scores import first_order

        sums = gradient_sums(subject, objective, (16, 16), {key})
        estimate = {
            m.mutation_id: first_order(m, sums.g[key][m.row, m.col], sums.gw[key][m.row, m.col]) for m in mutations
        }
    base = value()
    for m in mutations:
        with applied(anatomy.weight(m.layer, m.matrix), m):
            exact = -(value() - base)
        assert estimate[m.mutation_id] == pytest.approx(exact, rel=1e-6, abs=1e-9), m.label()


def test_an_uncovered_family_is_refused_in_one_line(monkeypatch):
    subject = tiny_model("llama", dtype="float64")
    monkeypatch.setattr(subject.anatomy, "family", "newfamily")
    with pytest.raises(MutascopeError, match="newfamily models' q matrices") as err:
        with recording(subject, {(LAYER, "q")}):
            pass
    assert "\n" not in str(err.value)


def test_an_mlp_without_a_known_activation_is_refused_in_one_line(monkeypatch):
    subject = tiny_model("llama", dtype="float64")
    monkeypatch.delattr(subject.model.model.layers[0].mlp, "act_fn")
    with pytest.raises(MutascopeError, match="llama models' gate matrices") as err:
        with recording(subject, {(LAYER, "gate")}):
            pass
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("matrix", ["q", "k"])
def test_a_float32_layernorm_on_queries_and_keys(matrix):
    """Phi's optional query/key norm is an ``nn.LayerNorm``, which refuses the float64 changes with
    a float32 model's weights: the exact step casts its weight and bias, and still matches writing
    the tile (to float32's tolerance)."""
    subject = tiny_model("phi", dtype="float32")
    probe = prepare_probes(subject, ReferenceEngine(subject), text_probes(1))[0]
    assert isinstance(subject.model.model.layers[LAYER].self_attn.q_layernorm, torch.nn.LayerNorm)
    mutations = _plan(subject, matrix)[::5][:6]
    rec = _recorded(subject, wt_loglik(subject, probe), {(LAYER, matrix)})
    module = _readout(subject, matrix)
    wt = _run(subject, probe, module)
    for chunk, part, index, _grad in local_changes(subject, rec, LAYER, matrix, mutations):
        for m, mine in zip(chunk, dense(part, index, wt.shape[1])):
            with applied(subject.anatomy.weight(m.layer, m.matrix), m):
                actual = (_run(subject, probe, module) - wt).to(torch.float64)
            assert actual.abs().max() > 1e-3, m.label()
            torch.testing.assert_close(mine, actual, rtol=1e-3, atol=1e-4, msg=m.label)
