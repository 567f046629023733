"""Deterministic decoding: the next token is a function of (logits, step) only.

A probe's :class:`~.probe.Decoding` says *how* tokens are chosen (greedy, or
sampling at a temperature with a seed); a :class:`TokenChooser` is that
policy made executable for one vocabulary, shared by every engine.

The paper reset one random seed before every generation so the wild type and
every mutant shared their randomness. We make that exact: sampling is
Gumbel-max, ``argmax(logits / T + g_t)``, where the Gumbel noise ``g_t`` for
step ``t`` is drawn from a generator seeded by ``(seed, t)`` alone. Two models
that produce the same logits at a step therefore choose the same token, and
any engine (Hugging Face ``generate``, a batched teacher-forced pass) that
computes the same scores makes the same choice.
"""

from __future__ import annotations

import torch
from transformers import LogitsProcessor

from .probe import Decoding

_MIX_A = 0x9E3779B97F4A7C15
_MIX_B = 0xBF58476D1CE4E5B9


def step_seed(seed: int, step: int) -> int:
    """A 63-bit generator seed for one decoding step, mixed from (seed, step)."""
    x = (seed * _MIX_A + (step + 1) * _MIX_B) & 0xFFFFFFFFFFFFFFFF
    x ^= x >> 31
    return x & 0x7FFFFFFFFFFFFFFF


class TokenChooser:
    """Chooses tokens from logits; identical choices for identical logits.

    ``scores(logits, step)`` returns float32 scores whose argmax is the token;
    ``choose`` takes that argmax. Noise vectors are cached per step, so a
    screen pays for them once, however many mutants it decodes.
    """

    def __init__(self, decoding: Decoding, vocab_size: int):
        self.decoding = decoding
        self.vocab_size = vocab_size
        self._noise: dict[int, torch.Tensor] = {}
        self._tables: dict[torch.device, dict[str, torch.Tensor]] = {}  # per-step tables, per device

    def noise(self, step: int) -> torch.Tensor:
        """The Gumbel noise of ``step`` (float32, on the CPU)."""
        cached = self._noise.get(step)
        if cached is None:
            gen = torch.Generator().manual_seed(step_seed(self.decoding.seed, step))
            u = torch.rand(self.vocab_size, generator=gen, dtype=torch.float64)
            u = u.clamp(min=1e-300, max=1.0 - 1e-16)
            cached = (-torch.log(-torch.log(u))).to(torch.float32)
            self._noise[step] = cached
        return cached

    def scores(self, logits: torch.Tensor, step: int) -> torch.Tensor:
        """Float32 scores over the vocabulary whose argmax is the chosen token."""
        logits = logits.to(torch.float32)
        if self.decoding.method == "greedy":
            return logits
        vocab = logits.shape[-1]
        noise = self.noise(step)
        if noise.shape[0] != vocab:
            raise ValueError(f"logits have {vocab} entries, chooser was built for {noise.shape[0]}")
        return logits / self.decoding.temperature + noise.to(logits.device)

    def _table(self, steps: torch.Tensor, view: str = "noise") -> torch.Tensor:
        """A per-step table covering ``steps`` on their device: ``noise`` (S, vocab), or derived from it.

        ``scaled``: temperature * noise (S, vocab); ``bound``: max |noise| (S,).
        Grown geometrically and rebuilt together, so the derived views always
        cover what the noise table covers.
        """
        need = int(steps.max()) + 1 if steps.numel() else 0
        tables = self._tables.get(steps.device)
        if tables is None or tables["noise"].shape[0] < need:
            have = 0 if tables is None else tables["noise"].shape[0]
            size = max(need, 64, 2 * have)
            noise = torch.stack([self.noise(s) for s in range(size)]).to(steps.device)
            tables = {"noise": noise, "scaled": noise * self.decoding.temperature, "bound": noise.abs().amax(dim=-1)}
            self._tables[steps.device] = tables
        return tables[view]

    def scaled_noise_rows(self, steps: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """Write ``temperature * noise`` of each row's step into ``out`` (N, vocab); zeros for greedy.

        Scores times the temperature are ``logits + T * noise``: one addition
        ranks a whole vocabulary (used to pre-select candidates, never to decide).
        """
        if self.decoding.method == "greedy":
            return out.zero_()
        return torch.index_select(self._table(steps, "scaled"), 0, steps, out=out)

    def noise_bound(self, steps: torch.Tensor) -> torch.Tensor:
        """max |noise| over the vocabulary at each row's step (N,); zeros for greedy."""
        if self.decoding.method == "greedy":
            return torch.zeros(len(steps), device=steps.device)
        return self._table(steps, "bound")[steps]

    def scores_rows(self, logits: torch.Tensor, steps: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        """:meth:`scores` for rows at different ``steps`` (N,), optionally at vocabulary ``index`` (N, K) only.

        Element by element the same float32 operations as :meth:`scores`, so
        a score computed here is bit-identical to the one ``scores`` gives.
        """
        logits = logits.to(torch.float32)
        if self.decoding.method == "greedy":
            return logits
        table = self._table(steps)
        if index is not None:
            noise = table[steps[:, None], index]
        elif table.shape[1] != logits.shape[-1]:
            raise ValueError(f"logits have {logits.shape[-1]} entries, chooser was built for {table.shape[1]}")
        else:
            noise = table[steps]
        return logits / self.decoding.temperature + noise

    def choose(self, logits: torch.Tensor, step: int) -> torch.Tensor:
        """The chosen token id(s) for ``logits`` of shape (..., vocab)."""
        return self.scores(logits, step).argmax(dim=-1)


class ChooserLogitsProcessor(LogitsProcessor):
    """Plugs a :class:`TokenChooser` into Hugging Face ``generate`` (run greedily).

    ``generate`` then takes the argmax of our scores at every step, which is
    exactly the chooser's choice.
    """

    def __init__(self, chooser: TokenChooser, prompt_length: int):
        self.chooser = chooser
        self.prompt_length = prompt_length

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        step = input_ids.shape[1] - self.prompt_length
        return self.chooser.scores(scores, step)
