"""From final hidden states to decoding decisions, without batch x positions x vocab logits.

The LM head is applied a few rows at a time and each slice is reduced at once
to what an engine needs per (row, step): the chooser's token, the
top-1 minus top-2 score margin (how close the decision was to a tie)
and the log-probability of a given target token.

**Fast head.** For a float32 model, the vocabulary-wide product runs in
bfloat16 (several times faster on CPUs with AMX and on GPUs) and is used only
to *select candidates*: with ``u = 2^-8`` the bfloat16 unit roundoff, every
approximate logit is within

    err_v = (2u + u^2 + d 2^-24) ||h|| ||w_v|| + u |approx_v|

of the float32 one (rounding of ``h`` and ``w_v``, float32 accumulation over
``d`` terms, rounding of the output; Cauchy-Schwarz bounds
``sum_i |h_i w_vi|``). A token whose upper bound falls below the lower bound
of the approximate winner cannot be chosen, so the decision, its margin and
the target's logit are computed in float32 on the few tokens left (typically
a dozen), exactly as the chooser scores them. A row with more than
``MAX_CANDIDATES`` candidates scores all of them, on its own. Candidates also
include every token that could come within the tie tolerance of winning, so a
margin below the tolerance is exact and the engine's near-tie re-check sees
it. The log-sum-exp of a
log-probability (an effect size, not a decision) takes its 32 largest terms in
float32 and the tail from the bfloat16 logits.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass
from typing import Any

import torch

from ..probes.chooser import TokenChooser

# Bytes of float32 vocabulary-wide temporaries held at once per scoring slice.
LOGITS_BUDGET = 128 * 2**20
# Candidates per row in the batched float32 rescoring; a row needing more is rescored on its own.
MAX_CANDIDATES = 64
_U = 2.0**-8  # bfloat16 unit roundoff


@functools.cache
def bf16_is_faster(device_type: str) -> bool:
    """Whether bfloat16 matrix products beat float32 here (AMX/AVX512-BF16 CPUs, recent GPUs).

    Either answer gives the same decisions, only the speed differs. On a CPU
    the answer comes from its instruction set: without bfloat16 units
    (AVX2-only machines) torch emulates bfloat16 products hundreds of times
    slower than float32. Timing is only the fallback where torch cannot say,
    because a timed probe is unreliable on a busy machine.
    """
    if device_type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device_type != "cpu":
        return False
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    avx512_bf16 = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    if amx is not None and avx512_bf16 is not None:
        return bool(amx() or avx512_bf16())
    return _timed_bf16_is_faster()


def _timed_bf16_is_faster() -> bool:
    def seconds(m: int, k: int, n: int, dtype: torch.dtype, reps: int) -> float:
        x, y = torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)
        x @ y  # first call: kernel selection, JIT
        t0 = time.perf_counter()
        for _ in range(reps):
            x @ y
        return (time.perf_counter() - t0) / reps

    if seconds(32, 256, 1024, torch.bfloat16, 1) > 3 * seconds(32, 256, 1024, torch.float32, 3):
        return False
    return seconds(256, 512, 4096, torch.bfloat16, 5) * 1.5 < seconds(256, 512, 4096, torch.float32, 5)


class LogitHead:
    """The model's output layer, as its own causal-LM forward applies it.

    Found generically (``get_output_embeddings``) plus the two post-processing
    steps some families apply (Gemma 2/3 final soft-capping, Cohere's logit
    scale); both are 1-Lipschitz up to the scale, so error bounds carry over.

    Args:
        model: a causal LM.
        fast: use the bfloat16 candidate head (float32 heads only); ``None``
            decides from :func:`bf16_is_faster`.
    """

    def __init__(self, model: Any, *, fast: bool | None = None):  # a transformers causal LM
        self.lm_head = model.get_output_embeddings()
        config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
        self.softcap = getattr(config, "final_logit_softcapping", None)
        self.scale = getattr(config, "logit_scale", None)
        weight = self.lm_head.weight
        self.vocab_size = int(weight.shape[0])
        bias = getattr(self.lm_head, "bias", None)
        self.bias = None if bias is None else bias.detach()  # the head never needs gradients
        usable = isinstance(self.lm_head, torch.nn.Linear) and weight.dtype == torch.float32
        self.fast = usable and (bf16_is_faster(weight.device.type) if fast is None else fast)
        if self.fast:
            w = weight.detach()
            self.low = w.to(torch.bfloat16).t().contiguous()  # (d, V)
            self.norms = w.norm(dim=1)
            self.coef = (2 * _U + _U * _U + w.shape[1] * 2.0**-24) * 1.02
            self.max_norm = float(self.norms.max())
            self.plain = self.bias is None and self.scale is None and self.softcap is None
            self._work: torch.Tensor | None = None

    def workspace(self, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Two reusable (rows, V) float32 buffers (grown on demand, never shrunk)."""
        if self._work is None or self._work.shape[1] < rows:
            self._work = self.low.new_empty((2, rows, self.vocab_size), dtype=torch.float32)
        return self._work[0, :rows], self._work[1, :rows]

    def _post(self, logits: torch.Tensor) -> torch.Tensor:
        if self.scale is not None:
            logits = logits * self.scale
        if self.softcap is not None:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        return logits

    def __call__(self, hidden: torch.Tensor) -> torch.Tensor:
        """Exact logits, as the model computes them."""
        return self._post(self.lm_head(hidden))

    def approx_logits(self, low: torch.Tensor) -> torch.Tensor:
        """Float32 logits from the bfloat16 product ``low`` = bf16(h) @ bf16(W).T (bias, scale, softcap)."""
        pre = low.to(torch.float32)
        if self.bias is not None:
            pre = pre + self.bias
        return self._post(pre)

    def exact_at(self, hidden: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Float32 logits of tokens ``index`` (N, K) for rows ``hidden`` (N, d)."""
        w = self.lm_head.weight.detach()[index]  # (N, K, d)
        pre = torch.bmm(w, hidden.to(w.dtype).unsqueeze(-1)).squeeze(-1)
        if self.bias is not None:
            pre = pre + self.bias[index]
        return self._post(pre).to(torch.float32)


@dataclass(kw_only=True)
class StepScores:
    """Per decision: chosen token, top-1/top-2 score margin and its relative size, log p(target)."""

    tokens: torch.Tensor  # long
    margins: torch.Tensor  # float32
    relative: torch.Tensor  # float32: margin / largest |score|
    logprobs: torch.Tensor | None  # float32, when targets were given

    @property
    def target_logprobs(self) -> torch.Tensor:
        """``logprobs`` of scores computed with targets (an error for scores without)."""
        if self.logprobs is None:
            raise ValueError("these scores were computed without targets")
        return self.logprobs


def _from_scores(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    top = scores.topk(2, dim=-1)
    margin = top.values[:, 0] - top.values[:, 1]
    lo, hi = scores.aminmax(dim=-1)
    return top.indices[:, 0], margin, margin / torch.maximum(hi.abs(), lo.abs()).clamp(min=1.0)


def _exact(hidden, head, chooser, steps, targets):
    logits = head(hidden).to(torch.float32)
    token, margin, relative = _from_scores(chooser.scores_rows(logits, steps))
    logprob = None
    if targets is not None:
        logprob = logits.gather(1, targets[:, None]).squeeze(1) - torch.logsumexp(logits, dim=-1)
    return token, margin, relative, logprob


def _fast(hidden, head, chooser, steps, targets, tolerance):
    """Candidates from the bfloat16 head, decided in float32; rows that do not fit go exact.

    Works in logit units (scores times the temperature ``T``): ``z = T * noise
    + approximate logits`` is the only vocabulary-wide arithmetic before the
    top-k, written into reused buffers (fresh multi-megabyte tensors cost page
    faults on every step).
    """
    n = hidden.shape[0]
    temperature = 1.0 if chooser.decoding.method == "greedy" else chooser.decoding.temperature
    low = hidden.to(torch.bfloat16) @ head.low  # (N, V) bfloat16, pre-bias
    z, upper_all = head.workspace(n)
    chooser.scaled_noise_rows(steps, out=z)
    if head.plain:
        z.add_(upper_all.copy_(low))  # convert first: a mixed-dtype in-place add takes a slow path
    else:
        z.add_(head.approx_logits(low))
    zmax, best = z.max(dim=-1)
    gain = abs(head.scale) if head.scale is not None else 1.0
    scale = (zmax.abs() / temperature).clamp(min=1.0)  # ~ largest |score|
    slack = temperature * (1e-6 * scale + 1e-6)  # float32 rounding of the score arithmetic itself
    # |z_v - T s_v| <= a ||w_v|| + u |low_v|  (a: products and accumulation; u: rounding of the output)
    a = head.coef * gain * hidden.norm(dim=-1)
    u = _U * 1.01 * gain
    floor = zmax - a * head.norms[best] - u * low.gather(1, best[:, None]).squeeze(1).abs() - slack
    # Where z_v >= 0, |low_v| <= max(z) + T max|noise| (plain heads); elsewhere a token is
    # below ``a ||w_v|| + u T max|noise|``, which ``safe`` requires to be under the cut.
    noise = temperature * chooser.noise_bound(steps)
    biggest = zmax.clamp(min=0) + noise
    if not head.plain:
        lo, hi = low.aminmax(dim=-1)
        biggest = torch.maximum(hi.abs(), lo.abs()).to(torch.float32)
    r = u * biggest + slack
    # Below ``cut`` a token can neither win nor come within the tie tolerance of winning.
    cut = floor - r - 2 * tolerance * scale * temperature
    safe = cut > a * head.max_norm + u * noise + slack if head.plain else torch.ones_like(cut, dtype=torch.bool)
    torch.addcmul(z, a[:, None], head.norms, out=upper_all)
    upper, index = upper_all.topk(min(MAX_CANDIDATES + 1, z.shape[1]), dim=-1)
    alive = upper >= cut[:, None]
    fits = ~alive[:, -1] if upper.shape[1] > MAX_CANDIDATES else torch.ones_like(cut, dtype=torch.bool)
    fits &= safe
    k = max(2, int(alive[fits].sum(dim=1).max()) if bool(fits.any()) else 2)
    index = index[:, :k]  # each fitting row's live tokens are a prefix (sorted by upper bound)
    exact = chooser.scores_rows(head.exact_at(hidden, index), steps, index)
    top = exact.topk(2, dim=-1)
    token = index.gather(1, top.indices[:, :1]).squeeze(1)
    margin = top.values[:, 0] - top.values[:, 1]
    for row in (~fits).nonzero().flatten().tolist():  # rare: many tokens near the top
        above = upper_all[row] >= cut[row] if bool(safe[row]) else torch.ones_like(upper_all[row], dtype=torch.bool)
        live = above.nonzero().flatten()[None]
        row_scores = chooser.scores_rows(head.exact_at(hidden[row : row + 1], live), steps[row : row + 1], live)
        row_top = row_scores.topk(2, dim=-1)
        token[row] = live[0, row_top.indices[0, 0]]
        margin[row] = row_top.values[0, 0] - row_top.values[0, 1]
    logprob = None
    if targets is not None:
        logprob = head.exact_at(hidden, targets[:, None]).squeeze(1) - _refined_logsumexp(head, hidden, low)
    return token, margin, margin / scale, logprob


def _refined_logsumexp(head, hidden, low, top: int = 32):
    """log sum_v exp(logit_v), with the ``top`` largest terms in float32 and the rest from bfloat16.

    The largest logits carry most of the mass, so the bfloat16 error left is
    that of the tail's share.
    """
    logits = head.approx_logits(low)
    approx_top, index = logits.topk(min(top, logits.shape[1]), dim=-1)
    peak = approx_top[:, :1]
    total = torch.exp(logits.sub_(peak)).sum(dim=-1) - torch.exp(approx_top - peak).sum(dim=-1)
    total = total.clamp(min=0) + torch.exp(head.exact_at(hidden, index) - peak).sum(dim=-1)
    return peak.squeeze(1) + torch.log(total)


def decide(
    hidden: torch.Tensor,
    head: LogitHead,
    chooser: TokenChooser,
    steps: torch.Tensor,
    *,
    tolerance: float = 0.0,
    targets: torch.Tensor | None = None,
) -> StepScores:
    """Decide rows ``hidden`` (N, d), row ``i`` at decoding step ``steps[i]``.

    ``tolerance`` is the engine's relative near-tie threshold: the fast head
    keeps every token within it of winning, so margins below it are exact.
    ``targets`` (N,) are tokens whose log-probability (under the model's own
    softmax, whatever the decoding policy) is wanted.
    """
    if head.fast and math.isfinite(tolerance):
        token, margin, relative, logprob = _fast(hidden, head, chooser, steps, targets, tolerance)
    else:
        token, margin, relative, logprob = _exact(hidden, head, chooser, steps, targets)
    return StepScores(tokens=token, margins=margin, relative=relative, logprobs=logprob)


def logprobs(hidden: torch.Tensor, head: LogitHead, targets: torch.Tensor) -> torch.Tensor:
    """log p(target) under the model's own softmax for rows ``hidden`` (N, d), no decision."""
    if head.fast:
        low = hidden.to(torch.bfloat16) @ head.low
        return head.exact_at(hidden, targets[:, None]).squeeze(1) - _refined_logsumexp(head, hidden, low)
    logits = head(hidden).to(torch.float32)
    return logits.gather(1, targets[:, None]).squeeze(1) - torch.logsumexp(logits, dim=-1)


def _rows_per_slice(head: LogitHead) -> int:
    return max(1, LOGITS_BUDGET // (4 * 4 * head.vocab_size))


def teacher_forced(
    hidden: torch.Tensor,
    head: LogitHead,
    chooser: TokenChooser,
    targets: torch.Tensor,
    *,
    tolerance: float = 0.0,
    chunk: int = 8,
) -> StepScores:
    """Decisions and log p(target) at every position of ``hidden`` (B, n, d); position ``j`` is step ``j``.

    The target tokens were fed, so a row's decisions matter only up to its
    first disagreement with them: steps are decided ``chunk`` at a time and a
    row that has disagreed gets only its log-probabilities afterwards. Steps
    left undecided read as agreeing (token = target, margin = inf).
    Results are (B, n).
    """
    b, n, d = hidden.shape
    device = hidden.device
    targets = targets.to(device)
    tokens = targets.expand(b, n).clone()
    margins = torch.full((b, n), torch.inf, device=device)
    relative = torch.full((b, n), torch.inf, device=device)
    out_logprobs = torch.empty(b, n, device=device)
    active = torch.ones(b, dtype=torch.bool, device=device)
    per_slice = _rows_per_slice(head)
    for s0 in range(0, n, chunk):
        s1 = min(n, s0 + chunk)
        width = s1 - s0
        deciding = active.nonzero().flatten()
        for rows, decides in ((deciding, True), ((~active).nonzero().flatten(), False)):
            if not len(rows):
                continue
            flat = hidden[rows, s0:s1].reshape(-1, d)
            steps = torch.arange(s0, s1, device=device).repeat(len(rows))
            want = targets[s0:s1].repeat(len(rows))
            parts = []
            for r0 in range(0, len(flat), per_slice):
                part = slice(r0, r0 + per_slice)
                if decides:
                    parts.append(
                        decide(flat[part], head, chooser, steps[part], tolerance=tolerance, targets=want[part])
                    )
                else:
                    scored = logprobs(flat[part], head, want[part])
                    none = torch.empty(0)  # no decisions taken: only the targets' log-probabilities
                    parts.append(StepScores(tokens=none, margins=none, relative=none, logprobs=scored))
            out_logprobs[rows, s0:s1] = torch.cat([p.target_logprobs for p in parts]).view(len(rows), width)
            if decides:
                tokens[rows, s0:s1] = torch.cat([p.tokens for p in parts]).view(len(rows), width)
                margins[rows, s0:s1] = torch.cat([p.margins for p in parts]).view(len(rows), width)
                relative[rows, s0:s1] = torch.cat([p.relative for p in parts]).view(len(rows), width)
        if len(deciding):
            disagree = (tokens[deciding, s0:s1] != targets[s0:s1]).any(dim=1)
            active[deciding[disagree]] = False
    return StepScores(tokens=tokens, margins=margins, relative=relative, logprobs=out_logprobs)
