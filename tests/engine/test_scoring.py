"""The fast (bfloat16-candidate) head decides exactly as the float32 head."""

import pytest
import torch

from mutascope.engine import scoring
from mutascope.engine.scoring import LogitHead, decide, teacher_forced
from mutascope.probes import Decoding
from mutascope.probes.chooser import TokenChooser
from mutascope.testing import tiny_model

DECODINGS = [Decoding(), Decoding(method="sample", temperature=0.7, seed=3)]


def hidden_states(d, n=96, seed=0):
    """Realistic-ish final hidden states: Gaussian rows, a few with massive outlier channels."""
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(n, d, generator=g) * 3
    h[::5, 7] *= 40  # an outlier channel, as in real models
    h[1::7] *= 10
    return h


def both(head, hidden, decoding, tolerance=2e-5, targets=None, steps=None):
    decoder = TokenChooser(decoding, head.vocab_size)
    steps = torch.arange(len(hidden)) % 11 if steps is None else steps
    head.fast = True
    fast = decide(hidden, head, decoder, steps, tolerance=tolerance, targets=targets)
    head.fast = False
    exact = decide(hidden, head, decoder, steps, tolerance=tolerance, targets=targets)
    return fast, exact


def assert_same_decisions(fast, exact, tolerance=2e-5):
    """Same token wherever the decision is clear; flagged as a near tie wherever it is not.

    Candidate logits are summed in another order than the full product, so a
    margin within float32 noise may flip: the engine re-checks those (margin
    below the tolerance) with the reference engine.
    """
    clear = exact.relative >= 2 * tolerance
    assert torch.equal(fast.tokens[clear], exact.tokens[clear])
    assert bool((fast.relative[exact.relative < tolerance / 2] < tolerance).all())


@pytest.fixture()
def head():
    return LogitHead(tiny_model("llama").model, fast=True)


@pytest.mark.parametrize("decoding", DECODINGS, ids=str)
def test_fast_decisions_equal_exact_ones(head, decoding):
    hidden = hidden_states(head.lm_head.weight.shape[1])
    targets = torch.randint(0, head.vocab_size, (len(hidden),), generator=torch.Generator().manual_seed(1))
    fast, exact = both(head, hidden, decoding, targets=targets)
    assert_same_decisions(fast, exact)
    assert torch.allclose(fast.margins, exact.margins, rtol=1e-4, atol=1e-5)
    # log-probabilities: the target logit is exact, the log-sum-exp's tail comes from bfloat16 logits
    assert torch.allclose(fast.logprobs, exact.logprobs, atol=1e-3, rtol=1e-4)


@pytest.mark.parametrize("decoding", DECODINGS, ids=str)
def test_near_ties_are_resolved_in_float32(decoding):
    """Two output rows closer than bfloat16 can tell apart: the fast head must still pick as float32 does."""
    model = tiny_model("llama").model
    w = model.get_output_embeddings().weight.data
    w[:, 0] = 0.0
    hidden = hidden_states(w.shape[1], n=1, seed=2).repeat(64, 1)
    t = decoding.temperature if decoding.method == "sample" else 1.0
    noise = TokenChooser(decoding, w.shape[0]).noise(0) if decoding.method == "sample" else torch.zeros(w.shape[0])
    a = int(((hidden[0] @ w.T) / t + noise).argmax())
    b = (a + 1) % w.shape[0]
    # Token b: a's weights plus h_0, so its step-0 score is a's plus up to 1e-2 / t, sign varying by row.
    w[b] = w[a]
    w[b, 0] = 1.0
    hidden[:, 0] = t * float(noise[a] - noise[b]) + torch.linspace(-1e-2, 1e-2, 64)
    head = LogitHead(model, fast=True)
    fast, exact = both(head, hidden, decoding, steps=torch.zeros(64, dtype=torch.long))
    assert_same_decisions(fast, exact)
    assert int((exact.relative >= 4e-5).sum()) >= 16
    assert set(exact.tokens.tolist()) == {a, b}  # the test does probe ties bfloat16 cannot resolve
    assert float(exact.margins.max()) < 0.02


@pytest.mark.parametrize("decoding", DECODINGS, ids=str)
def test_rows_with_too_many_candidates_still_decide_exactly(head, decoding, monkeypatch):
    monkeypatch.setattr(scoring, "MAX_CANDIDATES", 1)
    hidden = hidden_states(head.lm_head.weight.shape[1], n=32, seed=4)
    fast, exact = both(head, hidden, decoding)
    assert_same_decisions(fast, exact)
    assert torch.allclose(fast.margins, exact.margins, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("fast", [True, False])
def test_teacher_forced_decides_up_to_the_first_disagreement(head, monkeypatch, fast):
    monkeypatch.setattr(scoring, "LOGITS_BUDGET", 4 * 4 * head.vocab_size * 5)  # five rows per slice
    head.fast = fast
    hidden = hidden_states(head.lm_head.weight.shape[1], n=4 * 9).view(4, 9, -1)
    decoder = TokenChooser(DECODINGS[1], head.vocab_size)
    # Targets: row 0's own choices, so row 0 agrees everywhere and the others disagree somewhere.
    targets = decide(hidden[0], head, decoder, torch.arange(9), tolerance=2e-5).tokens
    got = teacher_forced(hidden, head, decoder, targets, tolerance=2e-5, chunk=2)
    assert got.tokens.shape == got.margins.shape == got.logprobs.shape == (4, 9)
    for b in range(4):
        one = decide(hidden[b], head, decoder, torch.arange(9), tolerance=2e-5, targets=targets)
        # Exact head: equal up to float32 rounding. Fast head: the bfloat16 tail of the log-sum-exp
        # depends on the product's shape, so equal up to rounding of logits this large (an effect size).
        assert torch.allclose(got.logprobs[b], one.logprobs, atol=1e-4 if fast else 1e-5, rtol=1e-4 if fast else 1e-5)
        differ = (one.tokens != targets).nonzero().flatten().tolist()
        end = (differ[0] // 2 + 1) * 2 if differ else 9  # the end of the chunk holding the disagreement
        assert torch.equal(got.tokens[b, :end], one.tokens[:end])
        assert bool((got.tokens[b, end:] == targets[end:]).all())  # undecided reads as agreeing
    assert not bool((got.tokens[0] != targets).any())
    assert bool((got.tokens[1:] != targets).any(dim=1).all())


def test_non_float32_heads_are_never_fast():
    model = tiny_model("llama", dtype="bfloat16").model
    assert not LogitHead(model, fast=True).fast


@pytest.mark.parametrize("decoding", DECODINGS, ids=str)
def test_heads_with_bias_scale_and_softcap(decoding):
    """The error bound carries through a bias, a logit scale and a final soft-cap (1-Lipschitz)."""
    model = tiny_model("llama").model
    d, vocab = model.config.hidden_size, model.config.vocab_size
    model.lm_head = torch.nn.Linear(d, vocab, bias=True)
    torch.nn.init.normal_(model.lm_head.bias, std=3.0, generator=torch.Generator().manual_seed(5))
    model.config.logit_scale = 0.7
    model.config.final_logit_softcapping = 15.0
    head = LogitHead(model, fast=True)
    assert not head.plain
    hidden = hidden_states(d)
    targets = torch.randint(0, vocab, (len(hidden),), generator=torch.Generator().manual_seed(1))
    fast, exact = both(head, hidden, decoding, targets=targets)
    assert_same_decisions(fast, exact)
    assert torch.allclose(fast.logprobs, exact.logprobs, atol=1e-3, rtol=1e-4)
