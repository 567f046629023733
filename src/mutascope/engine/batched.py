"""The fast exact engine: many mutants per forward pass, same outcomes as the reference.

For each probe, once: a wild-type (WT) teacher-forced pass over
``prompt + WT[:-1]`` captures every decoder layer's input and keys/values
(:mod:`.prefix`). Then, for batches of mutations grouped by layer:

1. **Detection.** One parallel teacher-forced pass of the WT tokens through
   the batch, one mutant per row (:mod:`.deltas`), starting at the batch's
   lowest mutated layer. Decoding is a deterministic function of
   (logits, step), so a mutant is silent exactly when the decoder picks the WT
   token at every step; otherwise the first step where it does not is its
   divergence point. The same pass gives every mutant its effect size: the
   drop in log-probability of the WT continuation.
2. **Continuation.** NSMs are decoded from the divergence step on, batched,
   starting from the detection pass's keys/values (valid up to that step).
3. **Near ties.** Floating-point results of a batched pass differ from the
   reference's ``generate`` in the last bits. A decision whose top-1/top-2
   score margin is below ``tie_tolerance`` could flip, so every (mutation,
   probe) with such a decision is recomputed by the reference engine itself.
   Every other decision had a margin far above the numerical noise, so it is
   the reference's decision too.

Outcomes therefore equal the reference's, and do not depend on the batch size
or on which mutants share a batch (only the recorded margins and effect
sizes vary, in their last bits).

**Low precision.** In bfloat16 a teacher-forced pass and ``generate`` differ
by whole bfloat16 steps, so a bound covering that re-checks most decisions.
There detection runs one token at a time with the reference's own arithmetic
(:mod:`.incremental`), checked bit for bit against ``generate`` on the wild
type of each probe; where it matches, only exact ties are re-checked, and
where it does not (other kernels), the dtype's bound applies as before.

**Calls only.** The detection pass alone decides every NSM call and
divergence step and measures every effect size; continuing NSMs is most of
the cost. With ``outputs="calls"`` the engine stops there: an NSM's output
is left unknown (``tokens=None``) unless detection already finished it (it
diverged at its last step or into end-of-sequence) or a near-tie re-check
regenerated it. Call re-checks still run, so calls equal the reference's;
``mutascope fill`` later computes the outputs a user wants, identical to a
full screen's.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import torch
from transformers import DynamicCache

from ..model.subject import decode_text, eos_ids
from ..plan.mutation import Mutation, applied
from ..store.rows import MeasuredOutcomeRow, OutcomeRow
from .base import OUTPUTS, PreparedProbe, RowsDone, check_outputs, divergence_step, one_thread
from .continuation import RowState, Seed, continue_seeds
from .deltas import TileDelta, row_deltas
from .incremental import IncrementalPass, Starts, capture_incremental, incremental_pass, reference_run
from .prefix import (
    WildTypePass,
    cache_kwargs,
    capture_wild_type,
    decoder_blocks,
    layer_keys_values,
    skipping_below,
)
from .ragged import supported
from .reference import ReferenceEngine
from .rowwise import row_dependent
from .scoring import LogitHead, teacher_forced

if TYPE_CHECKING:  # annotations only: the model module imports torch and transformers
    from ..model.subject import Subject


# Decisions whose top-1/top-2 decoder-score margin is below this fraction of
# the largest |score| at that step are re-checked with the reference engine.
# Measured on SmolLM2-135M in float32, a batched pass and ``generate`` differ in
# that margin by at most 1.0e-6 of the largest |score| (max 3.4e-5 absolute);
# the float32 default leaves a factor 20. Low-precision defaults are guesses
# scaled by the unit roundoff (2^-8 for bfloat16, 2^-11 for float16).
# In bfloat16 the bound is a guess, and a large one: 16-bit models detect
# incrementally instead and need it only where the engine's check against the
# reference fails (module docstring, docs/engines.md).
DEFAULT_TIE_TOLERANCE = {torch.float32: 2e-5, torch.float64: 1e-12, torch.bfloat16: 2e-2, torch.float16: 3e-3}
# The call tolerance where detection's logits are the reference's bit for bit
# (:mod:`.incremental`): only a decision between equal scores is re-checked,
# since the two engines might break an exact tie differently.
EXACT_TIE = 1e-9
DETECTION = ("forced", "incremental")

# Throughput stops improving well before memory runs out on a CPU (measured on
# SmolLM2-135M, 2 cores: a 256-mutation chunk runs 14% faster at 128 than at 64,
# mostly because each decoding step streams the weights once for more rows).
MAX_BATCH = {"cpu": 128, "cuda": 512}


# The batched engine's rows are the store's measured rows: one declaration
# (:class:`~mutascope.store.rows.MeasuredOutcomeRow`) for the fields and the columns.
BatchedOutcomeRow = MeasuredOutcomeRow


@dataclass(kw_only=True)
class _ProbeState:
    """A probe's WT pass and WT log-probabilities, computed once per engine."""

    ids: torch.Tensor  # (1, T): prompt + WT[:-1]
    wt: WildTypePass
    wt_logprob: float
    wt_min_margin: float
    exact: bool  # detection and continuation compute the reference's logits bit for bit on this probe
    steps: WildTypePass | None = None  # where exact: the WT's incremental pass (what rows skip below their layer)
    ragged: bool = False  # where exact: NSMs of different lengths continue together (:mod:`.ragged`)

    @property
    def tolerance(self) -> float:
        """The near-tie tolerance of this probe's decisions (only exact ties where ``exact``)."""
        return EXACT_TIE if self.exact else self.bound

    bound: float = 0.0  # the engine's tolerance where not exact


class BatchedEngine:
    """Batched teacher-forced detection + batched continuation; exact w.r.t. the reference.

    Args:
        subject: the loaded model.
        batch_size: mutants per forward pass; ``None`` picks one from free memory.
        tie_tolerance: a decision whose top-1/top-2 margin is below this
            fraction of the largest |score| at its step is re-checked with the
            reference engine; ``None`` uses a default for the model's dtype.
        prefix_reuse: skip the unmutated layers below each batch's lowest
            mutated layer (teacher-forced detection), or below each row's own
            (incremental detection, where it is exact); off only for testing
            the engine against itself.
        fast_head: decide from bfloat16 logits plus float32 candidates
            (:mod:`.scoring`); ``None`` uses it where bfloat16 is faster.
        detection: ``"forced"`` (one teacher-forced pass, with prefix reuse) or
            ``"incremental"`` (one token at a time, the reference's arithmetic);
            ``None`` picks incremental for 16-bit weights (module docstring).
    """

    name = "batched"
    chunk_size = 256  # mutations per committed chunk: enough to fill batches of every layer
    outputs: ClassVar[tuple[str, ...]] = OUTPUTS
    options: ClassVar[tuple[str, ...]] = ("batch_size", "tie_tolerance", "prefix_reuse", "fast_head", "detection")

    def __init__(
        self,
        subject: Subject,
        *,
        batch_size: int | None = None,
        tie_tolerance: float | None = None,
        prefix_reuse: bool = True,
        fast_head: bool | None = None,
        detection: str | None = None,
    ):
        self.subject = subject
        self.model = subject.model
        self.decoder_model = self.model.get_decoder()
        self.blocks = decoder_blocks(subject)
        self.head = LogitHead(self.model, fast=fast_head)
        self.eos = set(eos_ids(subject))
        self.device = next(self.model.parameters()).device
        self.dtype = next(self.model.parameters()).dtype
        self.reference = ReferenceEngine(subject)
        self.batch_size = batch_size
        self.tie_tolerance = DEFAULT_TIE_TOLERANCE.get(self.dtype, 0.5) if tie_tolerance is None else tie_tolerance
        self._given_tolerance = tie_tolerance
        if detection is not None and detection not in DETECTION:
            raise ValueError(f"detection must be one of {', '.join(DETECTION)}, not {detection!r}")
        self.detection = detection or ("incremental" if self.dtype.itemsize < 4 else "forced")
        self.prefix_reuse = prefix_reuse
        self._single_row: list[str] | None = None
        self._states: dict[tuple, _ProbeState] = {}
        self.stats: dict[str, float] = dict.fromkeys(
            (
                "outcomes",
                "rechecked",
                "continued",
                "wild_type_s",
                "detect_s",
                "continue_s",
                "recheck_s",
                "recheck_call_s",
                "probes_exact",
            ),
            0,
        )

    # -- the Engine interface ------------------------------------------------

    @property
    def description(self) -> str:
        """The name plus the head, which sets the effect sizes' precision (stored per chunk)."""
        head = f"{'bfloat16-candidate' if self.head.fast else 'float32'} head"
        return f"batched ({head}{', incremental detection' if self.detection == 'incremental' else ''})"

    def generate(self, probe: PreparedProbe) -> tuple[int, ...]:
        """The WT output, computed exactly as the reference engine does."""
        return self.reference.generate(probe)

    def run(
        self,
        mutations: Sequence[Mutation],
        probes: Sequence[PreparedProbe],
        outputs: str = "full",
        rows_done: RowsDone | None = None,
    ) -> Iterator[list[OutcomeRow]]:
        """Yield, per mutation in order, its rows for every probe.

        All mutations are run first (probe by probe), then yielded in order;
        pass chunks of a few hundred mutations at a time. ``outputs="calls"``
        skips the continuation of NSMs (see the module docstring). Since nothing
        is yielded until the end, ``rows_done`` hears of each row when its last
        piece of work is done: detection, continuation or a near-tie re-check.
        """
        check_outputs(outputs)
        mutations = list(mutations)
        results: list[list[OutcomeRow | None]] = [[None] * len(probes) for _ in mutations]
        tally = _Tally(rows_done)
        with torch.inference_mode():
            for p_index, probe in enumerate(probes):
                for i, row in self._run_probe(mutations, probe, outputs, tally):
                    results[i][p_index] = row
        yield from results  # type: ignore[misc]  # every slot was filled by the loop above

    # -- one probe -----------------------------------------------------------

    def _run_probe(
        self, mutations: list[Mutation], probe: PreparedProbe, outputs: str = "full", tally: _Tally | None = None
    ) -> Iterator[tuple[int, BatchedOutcomeRow]]:
        """Detection batch by batch (one layer each); NSMs pooled and continued in full batches.
        ``tally`` counts each row once, after the last piece of work it needs."""
        tally = tally or _Tally(None)
        state = self._state(probe)
        size = self.batch_size or auto_batch_size(self.subject, len(probe.prompt) + probe.probe.max_new_tokens)
        full = outputs == "full"
        states: dict[int, RowState] = {}
        pools: dict[int, list[Seed]] = {}  # by divergence step where exact and not ragged, else one pool
        for batch in self._detection_batches(mutations, size):
            deltas = [TileDelta.of(self.subject.anatomy, mutations[i]) for i in batch]
            layer = min(mutations[i].layer for i in batch) if self._skips else 0
            starts = self._starts(state, [mutations[i].layer for i in batch])
            t0 = time.perf_counter()
            finished = 0
            for i, row_state, seed in self._detect(probe, state, batch, deltas, layer, starts, seeds=full):
                states[i] = row_state
                if seed is not None:
                    by_step = state.exact and not state.ragged
                    pools.setdefault(row_state.divergence if by_step else 0, []).append(seed)  # type: ignore[arg-type]
                elif not _needs_recheck(row_state, full):
                    finished += 1
            self.stats["detect_s"] += time.perf_counter() - t0
            tally.add(finished)
            for pool in pools.values():
                if len(pool) >= size:
                    self._continue(probe, state, pool[:size], tally, full)
                    del pool[:size]
        for _, pool in sorted(pools.items()):
            if pool:
                self._continue(probe, state, pool, tally, full)
        for i, row_state in sorted(states.items()):
            yield i, self._outcome(mutations[i], probe, row_state, full)
            if _needs_recheck(row_state, full):
                tally.add(1)

    def _detection_batches(self, mutations: list[Mutation], size: int) -> list[list[int]]:
        """Indices of ``mutations`` in batches of at most ``size``, in layer order.

        Teacher-forced: one layer per batch. With prefix reuse a batch costs
        its rows times the layers from its lowest one up, so mixing layers
        wastes work; small batches cost little here because every row
        already spans all positions of the probe. Incremental: full batches,
        each row starting at its own layer (:class:`.incremental.Starts`
        needs them sorted), since every step of a small batch costs nearly
        as much as a full one's.
        """
        by_layer: dict[int, list[int]] = {}
        for i, m in enumerate(mutations):
            by_layer.setdefault(m.layer if self._skips else 0, []).append(i)
        if not self._skips:
            by_layer = {0: sorted(range(len(mutations)), key=lambda i: mutations[i].layer)}
        return [ids[j : j + size] for _, ids in sorted(by_layer.items()) for j in range(0, len(ids), size)]

    def _starts(self, state: _ProbeState, layers: list[int]) -> Starts | None:
        """Where an incremental batch's rows start: at their own layers where the probe is
        exact and layers are skipped; None (every row from the first block) otherwise."""
        if self.detection != "incremental" or not self.prefix_reuse or state.steps is None or not any(layers):
            return None
        return Starts(blocks=self.blocks, layers=layers, wt=state.steps)

    @property
    def _skips(self) -> bool:
        """Whether batches skip the layers below their lowest mutated one (teacher-forced detection only)."""
        return self.prefix_reuse and self.detection == "forced"

    def _outcome(self, mutation: Mutation, probe: PreparedProbe, s: RowState, full: bool = True) -> BatchedOutcomeRow:
        """The row of one mutant: re-checked if a decision was near a tie; without
        its output when only the call was computed and the output is unfinished."""
        row = BatchedOutcomeRow(
            mutation_id=mutation.mutation_id,
            probe_id=probe.id,
            tokens=tuple(s.tokens),
            text=None,
            divergence=s.divergence,
            margin=s.margin,
            min_margin=s.min_margin,
            logprob_drop=s.logprob_drop,
            logprob_drop_per_token=s.logprob_drop / len(probe.wt_tokens),
            rechecked=s.call_tie is not None,
        )
        self.stats["outcomes"] += 1
        complete = s.divergence is None or s.finished
        ties = [t for t in (s.call_tie, s.output_tie if full else None) if t is not None]
        if ties:
            row, regenerated = self._recheck(mutation, probe, row, max(ties), call=s.call_tie is not None)
            complete = complete or regenerated
        if not complete:  # a calls-only NSM: its output is computed by `mutascope fill`
            return dataclasses.replace(row, tokens=None, text=None)
        return dataclasses.replace(row, text=decode_text(self.subject, row.tokens))

    def _recheck(
        self, mutation: Mutation, probe: PreparedProbe, row: BatchedOutcomeRow, tie_step: int, call: bool = True
    ) -> tuple[BatchedOutcomeRow, bool]:
        """Re-decide a near-tie outcome with the reference engine (exact by definition).

        The reference first generates only up to ``tie_step``, the last
        decision within the tolerance: if it agrees there, every later
        decision (made on the same tokens, with a margin above the tolerance)
        is the reference's too. Otherwise the whole output is regenerated.
        ``row.tokens`` may be partial (a calls-only NSM ends at its divergence
        step, which is at or after every call decision). Returns the row and
        whether its tokens are now the reference's whole output.
        """
        t0 = time.perf_counter()
        anatomy = self.subject.anatomy
        with applied(anatomy.weight(mutation.layer, mutation.matrix), mutation):
            so_far = row.tokens or ()  # the engine's rows always carry their tokens so far
            prefix = self.reference.generate(probe, max_new_tokens=tie_step + 1)
            agrees = prefix == so_far[: tie_step + 1]
            tokens = so_far if agrees else self.reference.generate(probe)
        seconds = time.perf_counter() - t0
        self.stats["recheck_s"] += seconds
        if call:
            self.stats["recheck_call_s"] += seconds
        self.stats["rechecked"] += 1
        if agrees:
            return row, False
        divergence = divergence_step(tokens, probe.wt_tokens)
        return dataclasses.replace(
            row,
            tokens=tokens,
            text=None,
            divergence=divergence,
            margin=row.margin if divergence == row.divergence else None,
        ), True

    # -- the WT pass ---------------------------------------------------------

    def _state(self, probe: PreparedProbe) -> _ProbeState:
        key = (probe.prompt, probe.wt_tokens, probe.probe.decoding)
        state = self._states.get(key)
        if state is None:
            t0 = time.perf_counter()
            state = self._states[key] = self._wild_type(probe)
            self.stats["wild_type_s"] += time.perf_counter() - t0
        return state

    def _wild_type(self, probe: PreparedProbe) -> _ProbeState:
        """Teacher-force the WT output through the unmutated model once.

        On one thread: a single sequence gives torch's reductions too few rows
        to split across threads, so with several threads they split inside a
        row and the WT log-probability (every effect size's reference) would
        depend on the thread count in its last bits. Workers with different
        thread counts must record identical effect sizes.
        """
        if not probe.wt_tokens:
            raise ValueError(f"probe {probe.id!r} has no wild-type output: prepare it first")
        ids = torch.tensor([probe.prompt + probe.wt_tokens[:-1]], dtype=torch.long, device=self.device)
        with torch.inference_mode(), one_thread():
            wt = capture_wild_type(self.decoder_model, self.blocks, ids)
            targets = torch.tensor(probe.wt_tokens, device=self.device)
            scores = teacher_forced(
                wt.last_hidden[:, len(probe.prompt) - 1 :],
                self.head,
                probe.chooser,
                targets,
                tolerance=self.tie_tolerance,
            )
        checked = None
        if self.detection == "incremental" and self._given_tolerance is None:
            checked = self._matches_reference(probe)
        steps, ragged = checked if checked is not None else (None, False)
        exact = steps is not None
        self.stats["probes_exact"] += exact
        return _ProbeState(
            ids=ids,
            wt=wt,
            steps=steps,
            ragged=ragged,
            wt_logprob=float(scores.target_logprobs.sum()),
            wt_min_margin=float(scores.margins.min()),
            exact=exact,
            bound=self.tie_tolerance,
        )

    def _single_rows(self) -> list[str]:
        if self._single_row is None:
            self._single_row = row_dependent(self.model)
        return self._single_row

    def _matches_reference(self, probe: PreparedProbe) -> tuple[WildTypePass, bool] | None:
        """The wild type's incremental pass, if this engine's logits for it equal ``generate``'s
        bit for bit (None if not), and whether that holds for NSMs of different lengths continued
        together (each attending to its own positions, :mod:`.ragged`).

        The unmutated model runs alone (``generate`` itself, whose pass rows
        start from below their layer), then in a batch of three rows starting at the second, a middle
        and the last block: the incremental detection pass over every WT
        token, and a continuation from the second step on. Kernels that
        depend on shapes only then give every mutant the reference's logits
        too, and decisions need re-checking only at exact ties.
        """
        steps = len(probe.wt_tokens)
        pad = self.subject.tokenizer.pad_token_id or 0
        reference = reference_run(self.model, self.blocks, probe.prompt, steps, probe.chooser, pad)
        expected = reference.logits.float()
        if expected.shape[0] != steps:
            return None
        single = self._single_rows()
        alone = reference.wt or capture_incremental(
            self.decoder_model, self.blocks, probe.prompt, probe.wt_tokens, single, self.model
        )
        if not torch.equal(self.head(alone.last_hidden[0]).float(), expected):
            return None
        last = len(self.blocks) - 1  # no row from the first block, so one block runs no row at all
        layers = [min(1, last), len(self.blocks) // 2, last] if self.prefix_reuse else [0, 0, 0]
        rows = len(layers)
        starts = Starts(blocks=self.blocks, layers=layers, wt=alone)
        run = incremental_pass(self.decoder_model, probe.prompt, probe.wt_tokens, rows, single, self.model, starts)
        if not all(torch.equal(self.head(run.hidden[r]).float(), expected) for r in range(rows)):
            return None
        if steps < 3:
            return alone, False
        ragged = (
            steps > 3 and supported(self.model) and self._continues_exactly(probe, alone, run, layers, expected, True)
        )
        if not ragged and not self._continues_exactly(probe, alone, run, layers, expected, False):
            return None
        return alone, ragged

    def _continues_exactly(
        self,
        probe: PreparedProbe,
        alone: WildTypePass,
        run: IncrementalPass,
        layers: list[int],
        expected: torch.Tensor,
        ragged: bool,
    ) -> bool:
        """Whether continuing the wild type's rows of ``run`` (from the second step on; one
        row from the third where ``ragged``) gives ``generate``'s logits bit for bit."""
        divergences = [1, 2] + [1] * (len(layers) - 2) if ragged else [1] * len(layers)
        cached_keys, cached_values = layer_keys_values(run.cache)
        seeds = [
            Seed(
                state=RowState(
                    divergence=d,
                    tokens=list(probe.wt_tokens[: d + 1]),
                    margin=None,
                    min_margin=math.inf,
                    call_tie=None,
                    logprob_drop=0.0,
                    finished=False,
                ),
                delta=None,
                layer=layers[r],
                keys=_own(cached_keys, r, layers[r], len(probe.prompt) + d),
                values=_own(cached_values, r, layers[r], len(probe.prompt) + d),
            )
            for r, d in enumerate(divergences)
        ]
        same = [True]

        def observe(hidden: torch.Tensor, states: list[RowState]) -> None:
            logits = self.head(hidden).float()
            same[0] &= all(torch.equal(logits[i], expected[len(s.tokens)]) for i, s in enumerate(states))

        continue_seeds(
            self.model,
            self.decoder_model,
            self.head,
            probe.chooser,
            alone,
            len(probe.prompt),
            probe.probe.max_new_tokens,
            self.eos,
            seeds,
            0.0,
            self._single_rows(),
            observe=observe,
            ragged=ragged,
        )
        return same[0] and all(len(s.state.tokens) == len(probe.wt_tokens) for s in seeds)

    # -- detection -----------------------------------------------------------

    def _detect(
        self,
        probe: PreparedProbe,
        state: _ProbeState,
        batch: list[int],
        deltas: list[TileDelta],
        layer: int,
        starts: Starts | None = None,
        seeds: bool = True,
    ) -> Iterator[tuple[int, RowState, Seed | None]]:
        """Teacher-force the WT tokens through every mutant of the batch at once.

        Yields each row's state and, for NSMs that need more tokens (when
        ``seeds``), a seed holding its keys/values for the continuation.
        ``layer`` is the batch's first computed layer (teacher-forced),
        ``starts`` each row's (incremental).
        """
        b = len(deltas)
        p, wt = len(probe.prompt), probe.wt_tokens
        need_cache = seeds and probe.probe.max_new_tokens > 1
        cache: DynamicCache | None
        if self.detection == "incremental":
            computing = [sum(s <= own for s in starts.layers) for own in starts.layers] if starts else None
            with row_deltas(self.model, deltas, computing):
                run = incremental_pass(self.decoder_model, probe.prompt, wt, b, self._single_rows(), self.model, starts)
            final, cache = run.hidden, run.cache
        else:
            cache = DynamicCache() if need_cache else None
            hidden = state.wt.hidden_in[layer].expand(b, -1, -1).contiguous() if layer > 0 else None
            with row_deltas(self.model, deltas), skipping_below(self.blocks, layer, hidden, state.wt.returns_tuple):
                out = self.decoder_model(
                    input_ids=state.ids.expand(b, -1), use_cache=need_cache, **cache_kwargs(self.decoder_model, cache)
                )
            final = out.last_hidden_state[:, p - 1 :]
            del out
        targets = torch.tensor(wt, device=self.device)
        scores = teacher_forced(final, self.head, probe.chooser, targets, tolerance=state.tolerance)
        del final
        cached_keys, cached_values = layer_keys_values(cache, layer) if cache is not None else ([], [])
        mismatch = scores.tokens != targets
        diverged = mismatch.any(dim=1)
        first = torch.where(diverged, mismatch.int().argmax(dim=1), len(wt))
        steps = torch.arange(len(wt), device=self.device)
        undecided = steps > first[:, None]  # teacher-forced steps after the divergence decide nothing
        min_margin = scores.margins.masked_fill(undecided, math.inf).amin(dim=1).tolist()
        near = (scores.relative < state.tolerance) & ~undecided
        tie_steps = torch.where(near, steps, -1).amax(dim=1).tolist()
        tie_steps = [None if t < 0 else t for t in tie_steps]
        drops = (state.wt_logprob - scores.target_logprobs.sum(dim=1)).tolist()
        for row, i in enumerate(batch):
            if not bool(diverged[row]):
                yield (
                    i,
                    RowState(
                        divergence=None,
                        tokens=list(wt),
                        margin=None,
                        min_margin=min_margin[row],
                        call_tie=tie_steps[row],
                        logprob_drop=drops[row],
                    ),
                    None,
                )
                continue
            d = int(first[row])
            token = int(scores.tokens[row, d])
            tokens = list(wt[:d]) + [token]
            done = token in self.eos or len(tokens) >= probe.probe.max_new_tokens
            s = RowState(
                divergence=d,
                tokens=tokens,
                margin=float(scores.margins[row, d]),
                min_margin=min_margin[row],
                call_tie=tie_steps[row],
                logprob_drop=drops[row],
                finished=done,
            )
            seed = None
            if not done and need_cache:
                n = p + d  # positions whose keys/values the mutant shares with this pass
                own = starts.layers[row] if starts else layer  # below: the WT's
                keys = _own(cached_keys, row, own, n, layer)
                values = _own(cached_values, row, own, n, layer)
                seed = Seed(state=s, delta=deltas[row], layer=own, keys=keys, values=values)
            yield i, s, seed

    def _continue(
        self,
        probe: PreparedProbe,
        state: _ProbeState,
        seeds: list[Seed],
        tally: _Tally | None = None,
        full: bool = True,
    ) -> None:
        """Decode pooled NSMs from their divergence steps on."""
        t0 = time.perf_counter()
        continue_seeds(
            self.model,
            self.decoder_model,
            self.head,
            probe.chooser,
            state.steps or state.wt,  # the keys/values below a seed's layer, from the pass its rows skipped
            len(probe.prompt),
            probe.probe.max_new_tokens,
            self.eos,
            seeds,
            state.tolerance,
            self._single_rows() if state.exact else None,
            ragged=state.ragged,
        )
        self.stats["continue_s"] += time.perf_counter() - t0
        self.stats["continued"] += len(seeds)
        if tally is not None:
            tally.add(sum(not _needs_recheck(s.state, full) for s in seeds))


def _own(cached: list[torch.Tensor], row: int, own: int, n: int, first: int = 0) -> list[torch.Tensor | None]:
    """A row's keys (or values) over its first ``n`` positions, per layer: None below ``own``
    (the wild type's), then copies from ``cached``, whose entry ``i`` is layer ``first + i``.
    A cache layer holds the batch's rows from the first on (every row computing it)."""
    below: list[torch.Tensor | None] = [None] * own
    return below + [c[row : row + 1, :, :n].clone() for c in cached[own - first :]]


def _needs_recheck(s: RowState, full: bool) -> bool:
    """Whether :meth:`BatchedEngine._outcome` will re-check this row with the reference engine."""
    return s.call_tie is not None or (full and s.output_tie is not None)


class _Tally:
    """Rows finished so far in one :meth:`BatchedEngine.run`, told to its ``rows_done``."""

    def __init__(self, rows_done: RowsDone | None):
        self.rows_done, self.done = rows_done, 0

    def add(self, n: int) -> None:
        if n and self.rows_done is not None:
            self.done += n
            self.rows_done(self.done)


# -- sizing -------------------------------------------------------------------


def available_memory(device: torch.device) -> int:
    """Bytes free for this process's tensors on ``device``."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    import psutil

    return int(psutil.virtual_memory().available)


def row_bytes(subject: Subject, seq_len: int) -> int:
    """A generous estimate of the memory one batch row needs at ``seq_len`` positions."""
    config = subject.model.config.get_text_config()
    itemsize = torch.finfo(subject.dtype).bits // 8
    hidden = config.hidden_size
    inter = getattr(config, "intermediate_size", None) or getattr(config, "n_inner", None) or 4 * hidden
    heads = config.num_attention_heads
    layers = subject.anatomy.n_layers
    activations = seq_len * (8 * hidden + 3 * inter) * itemsize
    attention = heads * seq_len * seq_len * 4
    cache = layers * 2 * 2 * hidden * seq_len * itemsize  # detection cache + its left-aligned copy
    vocab = subject.model.get_output_embeddings().weight.shape[0]
    logits = 3 * 4 * vocab * 4  # a few steps of float32 logits and scores
    return activations + attention + cache + logits


def auto_batch_size(subject: Subject, seq_len: int, fraction: float = 0.3) -> int:
    """The batch size that fits ``fraction`` of free memory, capped where speed saturates."""
    device = next(subject.model.parameters()).device
    cap = MAX_BATCH.get(device.type, 64)
    fits = int(fraction * available_memory(device)) // max(1, row_bytes(subject, seq_len))
    return max(1, min(cap, fits))
