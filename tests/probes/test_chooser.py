import torch

from mutascope.probes import Decoding
from mutascope.probes.chooser import TokenChooser


def test_greedy_is_argmax():
    d = TokenChooser(Decoding("greedy"), 5)
    logits = torch.tensor([[0.1, 2.0, -1.0, 0.0, 1.9]])
    assert d.choose(logits, 0).tolist() == [1]


def test_sampling_noise_depends_only_on_seed_and_step():
    a, b = TokenChooser(Decoding("sample", 0.7, 3), 100), TokenChooser(Decoding("sample", 0.7, 3), 100)
    assert torch.equal(a.noise(5), b.noise(5))
    assert not torch.equal(a.noise(5), a.noise(6))
    c = TokenChooser(Decoding("sample", 0.7, 4), 100)
    assert not torch.equal(a.noise(5), c.noise(5))


def test_sampling_is_a_deterministic_function_of_logits_and_step():
    torch.manual_seed(0)
    logits = torch.randn(3, 50)
    d = TokenChooser(Decoding("sample", 0.7, 0), 50)
    first = d.choose(logits, 2)
    torch.manual_seed(123)  # global RNG state must not matter
    assert torch.equal(TokenChooser(Decoding("sample", 0.7, 0), 50).choose(logits, 2), first)
    # batched rows decide like single rows
    assert [int(d.choose(logits[i], 2)) for i in range(3)] == first.tolist()


def test_sampling_follows_the_softmax_distribution():
    logits = torch.log(torch.tensor([0.5, 0.3, 0.2]))
    d = TokenChooser(Decoding("sample", 1.0, 0), 3)
    counts = torch.bincount(torch.stack([d.choose(logits, t) for t in range(4000)]), minlength=3).float() / 4000
    assert torch.allclose(counts, torch.tensor([0.5, 0.3, 0.2]), atol=0.03)


def test_row_scores_are_bit_identical_to_per_step_scores():
    from mutascope.probes import Decoding
    from mutascope.probes.chooser import TokenChooser

    decoder = TokenChooser(Decoding(method="sample", temperature=0.7, seed=5), 50)
    logits = torch.randn(6, 50, generator=torch.Generator().manual_seed(0))
    steps = torch.tensor([0, 3, 3, 70, 130, 1])  # past the first table size: the table grows
    rows = decoder.scores_rows(logits, steps)
    for i, step in enumerate(steps.tolist()):
        assert torch.equal(rows[i], decoder.scores(logits[i : i + 1], step)[0])
    index = torch.tensor([[1, 7], [0, 49], [2, 2], [5, 6], [9, 8], [3, 4]])
    assert torch.equal(decoder.scores_rows(logits.gather(1, index), steps, index), rows.gather(1, index))
