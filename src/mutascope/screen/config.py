"""A screen's configuration: one frozen object per concern, built once, by the CLI or a user.

A screen is defined by a handful of separate decisions: which model and how
to hold it (:class:`ModelSource`), which probes (:class:`ProbeSet`), which
mutations (:class:`~mutascope.plan.PlanSpec` and a shard), which engine with
which options (:class:`EngineChoice`), where chunks run
(:class:`~mutascope.backends.Placement`), what to store (``outputs``) and in
what order (``order``; an adaptive screen's budget: :class:`Adaptive`).
:class:`ScreenConfig` holds one object per concern, as an HTTP client holds a
timeout, limits and a transport. It is checked once, when it is built, and
the screen's identity (what a results file must match to be resumed) is
computed from it in one place (:meth:`ScreenConfig.identity`), both before the
model loads and after.

``Screen``, ``predict`` and ``plan --predicted`` take a :class:`ScreenConfig`;
``fill`` takes the two concerns it shares with a screen (:class:`EngineChoice`
and a placement); ``merge`` takes only files (each holds its configuration).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from ..backends import Placement, check_backend
from ..engine import DEFAULT_ENGINE, check_engine
from ..errors import InputError
from ..plan import PlanSpec
from ..probes import Decoding, Probe

Outputs = Literal["full", "calls"]
Order = Literal["plan", "predicted", "adaptive"]
Shard = tuple[int, int]  # (index, count): the contiguous part of the plan a file holds


@dataclass(kw_only=True, frozen=True)
class ModelSource:
    """Which model to screen and how to hold it: known before anything loads.

    ``name`` is a hub id, a local directory or a ``.gguf`` file (None: the
    bundled SmolLM2-135M-Instruct); other processes (Ray workers) load the
    model from it too.
    """

    name: str | None = None
    dtype: str = "float32"
    device: str = "cpu"

    def identity(self) -> dict[str, Any]:
        """The parts of a screen's identity known from the source alone (no hash, no EOS ids)."""
        from ..model.subject import model_id_of, parse_device, parse_dtype

        return {
            "model": {"id": model_id_of(self.name)},
            "dtype": str(parse_dtype(self.dtype)).replace("torch.", ""),
            "device": str(parse_device(self.device)),
        }

    def load(self) -> Any:
        """The loaded model (a :class:`~mutascope.model.subject.Subject`)."""
        from ..model.subject import load_model

        return load_model(self.name, dtype=self.dtype, device=self.device)


@dataclass(frozen=True)
class ProbeSet:
    """The probes a screen runs: built-in ids, probe files, ``mmlu21:``/``mmlu:`` sets, or
    :class:`~mutascope.probes.Probe` objects, plus the command line's overrides for free-text
    probes (``max_new_tokens``, ``decoding``) and where MMLU lives."""

    items: tuple[str | Probe, ...]
    mmlu_dir: Path | None = None
    max_new_tokens: int | None = None
    decoding: Decoding | None = None

    @classmethod
    def of(cls, probes: ProbeSet | Iterable[str | Probe]) -> ProbeSet:
        """A probe set from itself or from a sequence of specs and probes."""
        return probes if isinstance(probes, ProbeSet) else cls(tuple(probes))

    @property
    def needs_model(self) -> bool:
        """Whether resolving needs the loaded model (an ``mmlu21:`` set picks its questions by the
        unmutated model's answers)."""
        return any(isinstance(p, str) and p.startswith("mmlu21:") for p in self.items)

    def resolve(self, subject: Any = None) -> list[Probe]:
        """The probes, in order; ``subject`` is needed only where :attr:`needs_model`."""
        from ..probes import resolve_probes

        found: list[Probe] = []
        for item in self.items:
            if isinstance(item, Probe):
                found.append(item)
            else:
                found += resolve_probes(
                    [item],
                    subject,
                    mmlu_dir=self.mmlu_dir,
                    max_new_tokens=self.max_new_tokens,
                    decoding=self.decoding,
                )
        check_unique(found)
        return found


def check_unique(probes: Sequence[Probe]) -> None:
    """One line for no probes or a probe id given twice."""
    if not probes:
        raise InputError("no probes given: use --probe (e.g. --probe drosophila)")
    ids = [p.id for p in probes]
    dup = next((i for i in ids if ids.count(i) > 1), None)
    if dup is not None:
        raise InputError(f"probe id {dup!r} is given twice")


@dataclass(frozen=True)
class EngineChoice:
    """The engine that computes outcomes and its options.

    ``batch_size`` (mutants per forward pass) and ``fast_head`` (a low-precision
    LM head where exact) are the batched engine's; None leaves the engine's
    default. ``chunk_size`` is the mutations per committed transaction (None:
    the engine's).
    """

    name: str = DEFAULT_ENGINE
    batch_size: int | None = None
    fast_head: bool | None = None
    chunk_size: int | None = None

    @property
    def options(self) -> dict[str, Any]:
        """The keyword options the engine is built with (None values: its defaults)."""
        return {"batch_size": self.batch_size, "fast_head": self.fast_head}

    def check(self, outputs: str = "full") -> None:
        """One line where the engine cannot run ``outputs`` with these options, or the chunk
        size is impossible."""
        if self.chunk_size is not None and self.chunk_size < 1:
            raise InputError(f"--chunk-size must be at least 1, got {self.chunk_size}")
        check_engine(self.name, outputs=outputs, options=self.options)


ADAPTIVE_CHUNK_SIZE = 32  # an adaptive screen's default chunk size (docs/adaptive.md: measured against 16 and 64)


@dataclass(frozen=True, kw_only=True)
class Adaptive:
    """An adaptive screen's budget and rounds (``order="adaptive"``; docs/adaptive.md).

    ``budget``: the mutants to screen, a count (``5000``) or a share of the plan
    (``"10%"``). ``seed`` draws the audit sample; ``audit`` is its least number
    of mutants (None: :data:`~mutascope.predict.adaptive.AUDIT_MINIMUM`; a
    smaller one for small plans, where the default would be the whole budget).
    The seed and the audit size fix the rounds, so a file is resumed only with
    the same ones (the budget may change: a larger one continues the rounds).
    """

    budget: str | int | None = None
    seed: int = 0
    audit: int | None = None

    def check(self) -> None:
        """One line for a missing or malformed budget or an audit under one mutant."""
        from ..predict.adaptive import parse_budget

        if self.audit is not None and self.audit < 1:
            raise InputError(f"--audit {self.audit}: the audit sample needs at least 1 mutant")
        parse_budget(self.budget, 1 << 30)


@dataclass(frozen=True)
class ScreenConfig:
    """Everything that defines a screen, one object per concern (module docstring).

    Checked once, when built: the order, outputs, engine and its options, the
    placement and that the engine can run there. ``probes`` and ``out`` may
    be given as a sequence and a string; they are stored as a
    :class:`ProbeSet` and a :class:`~pathlib.Path`. The placement's
    ``source`` defaults to ``model.name`` (where workers load the model from).

    ``outputs`` (``"full"`` or ``"calls"``) and ``order`` (``"plan"``,
    ``"predicted"`` or ``"adaptive"``, with its :class:`Adaptive` settings) are
    not part of the screen's identity: a file may be resumed with either.
    ``marked`` holds the ``(layer, matrix, axis, index)`` axes a super-weights
    file marks, for the predictions' ``superweight`` score (None: left null).
    """

    probes: ProbeSet
    plan: PlanSpec
    out: Path
    model: ModelSource = field(default_factory=ModelSource)
    shard: Shard = (0, 1)
    engine: EngineChoice = field(default_factory=EngineChoice)
    outputs: Outputs = "full"
    placement: Placement = field(default_factory=Placement)
    order: Order = "plan"
    marked: frozenset[tuple[int, str, str, int]] | None = None
    adaptive: Adaptive | None = None

    def __post_init__(self) -> None:
        from ..predict.order import check_order

        set_ = object.__setattr__  # normalising the inputs of a frozen dataclass, once
        set_(self, "probes", ProbeSet.of(self.probes))
        set_(self, "out", Path(self.out))
        if self.marked is not None:
            set_(self, "marked", frozenset(self.marked))
        if self.placement.source is None and self.model.name is not None:
            set_(self, "placement", replace(self.placement, source=self.model.name))
        index, count = self.shard
        if count < 1 or not 0 <= index < count:
            raise InputError(f"bad shard {index}/{count}: use INDEX/COUNT with 0 <= INDEX < COUNT, e.g. 0/4")
        check_order(self.order)
        if self.placement.replay is not None and self.model.name is not None:
            # a replay runs no model: a --model would be silently ignored, so it is refused
            raise InputError(
                f"--replay answers every chunk from {self.placement.replay} without a model; drop --model "
                "(the replayed file records the source's model)"
            )
        self._check_adaptive()
        self.engine.check(self.outputs)
        check_backend(self.engine.name, self.placement)

    def _check_adaptive(self) -> None:
        """One line for what an adaptive screen cannot do: no budget, a budget with another
        order, a shard (rounds span the whole plan), an engine without effect sizes."""
        if self.order != "adaptive":
            if self.adaptive is not None:
                raise InputError("--budget, --audit and --seed are for --order adaptive")
            return
        if self.adaptive is None:
            raise InputError("--order adaptive needs --budget (a count of mutants, or a share such as 10%)")
        self.adaptive.check()
        if tuple(self.shard) != (0, 1):
            raise InputError("--order adaptive chooses chunks from the whole plan round by round; drop --shard")
        if self.engine.name == "reference":
            raise InputError(
                "--order adaptive needs effect sizes, which the reference engine does not record; use --engine batched"
            )

    def identity(self, subject: Any = None, probes: Sequence[Probe] | None = None) -> dict[str, Any]:
        """What a results file must match to take this screen.

        With the loaded ``subject`` and the resolved ``probes``, the whole identity
        (the model's content hash and EOS ids included); without them, the parts
        known before the model loads (no ``probes`` key where an ``mmlu21:`` set
        needs the model), which :func:`~mutascope.store.check_target` compares
        with a file's as far as they go.
        """
        from ..model.subject import eos_ids

        known: dict[str, Any]
        if subject is not None:
            known = {
                "model": {"id": subject.model_id, "hash": subject.content_hash()},
                "dtype": str(subject.dtype).replace("torch.", ""),
                "device": str(subject.device),
            }
        else:
            known = self.model.identity()
        known["plan"] = self.plan.to_dict()
        known["shard"] = f"{self.shard[0]}/{self.shard[1]}"
        if probes is None and not self.probes.needs_model:
            probes = self.probes.resolve()
        if probes is not None:
            known["probes"] = [p.to_dict() for p in probes]
        if subject is not None:
            known["eos"] = eos_ids(subject)
        return known

    def check_out_file(self) -> None:
        """Refuse an ``out`` file that cannot take this screen, before the model loads."""
        from ..store import check_target
        from ..store.adaptive import check_resume

        check_target(self.out, self.identity())
        check_resume(self.out, self.order)  # the order now; the adaptive settings once the plan is built
