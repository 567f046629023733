"""The replay backend: a task's rows read from a complete screen instead of computed by a model.

A source is a results file holding a complete screen, or its compact export
(``mutascope export --compact``: ``tiles``, ``runs``, ``probes`` and
``predictions`` as Parquet, as in docs/atlas/tables), so anyone can replay a
published atlas offline. It lets an adaptive screen be measured against the
full screen it would have sampled (docs/adaptive.md), and tests the round
logic without a model.

A replay answers only the screen it holds: a task naming a mutant the source
does not have or has at another site (another plan), or prepared probes other
than the source's, is refused in one line. Rows from an export carry the call,
divergence step and effect sizes but no output tokens (the export has none):
an NSM's row is stored unfilled, as a calls-only screen's is, and a silent
row's output is the stored WT output (empty: an export keeps no token arrays).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..engine.base import Engine
from ..errors import InputError, ResultsFileError
from ..plan.kinds import Kind
from ..plan.mutation import Mutation
from ..probes.prepared import PreparedProbe
from ..progress import Status
from ..store.reader import Results
from ..store.rows import MeasuredOutcomeRow, OutcomeRow, ProbeRecord
from .base import Backend, Placement, Task, TaskRowsDone

EXPORT_FILES = ("runs", "probes", "tiles")  # what a compact export must hold (predictions are optional)
_EFFECTS = ("margin", "min_margin", "logprob_drop", "logprob_drop_per_token", "rechecked")


def _none(v: Any) -> Any:
    """None for a missing value (NaN, NA, None), else the value."""
    if v is None or v is pd.NA:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def _tokens(v: Any) -> tuple[int, ...] | None:
    v = _none(v)
    return None if v is None else tuple(int(t) for t in v)


class ReplaySource:
    """A complete screen read back (a results file or a compact export directory), indexed by mutant."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        what = f"--replay {self.path}"
        if self.path.is_dir():
            missing = [n for n in EXPORT_FILES if not (self.path / f"{n}.parquet").is_file()]
            if missing:
                raise InputError(f"{what}: not a compact export (no {', '.join(missing)}.parquet)")
            runs = pd.read_parquet(self.path / "runs.parquet")
            probes = pd.read_parquet(self.path / "probes.parquet")
            rows = pd.read_parquet(self.path / "tiles.parquet")
            pred = self.path / "predictions.parquet"
            self.predictions: pd.DataFrame | None = pd.read_parquet(pred) if pred.is_file() else None
            mutations = rows.drop_duplicates("mutation_id")
        elif self.path.is_file():
            with Results(self.path) as r:
                runs, probes, rows, mutations = r.runs, r.probes, r.outcomes, r.mutations
                self.predictions = r.predictions
        else:
            raise InputError(f"{what}: no such results file or export directory")
        self.config: dict[str, Any] = json.loads(str(runs["config"].iloc[0]))
        self.run_row: dict[str, Any] = runs.iloc[0].to_dict()
        self.tile = (int(runs["tile_h"].iloc[0]), int(runs["tile_w"].iloc[0]))
        self._probes = probes.sort_values("position").reset_index(drop=True)
        self.probe_ids = [str(p) for p in self._probes["probe_id"]]
        self.mutations = self._mutations(mutations)
        n = int(runs["n_mutations"].iloc[0])
        per = rows.groupby("probe_id")["mutation_id"].nunique().reindex(self.probe_ids).fillna(0)
        if len(self.mutations) != n or bool((per != n).any()):
            raise ResultsFileError(
                f"{what}: not a complete screen ({len(rows)} outcomes of {n} mutants x {len(self.probe_ids)} probes)"
            )
        self._wt = {p.probe_id: p.wt_tokens for p in self.probe_records()}
        self._index = {
            (int(m), str(p)): i for i, (m, p) in enumerate(zip(rows["mutation_id"], rows["probe_id"], strict=True))
        }
        self._columns: dict[str, list[Any]] = {
            c: rows[c].astype(object).tolist()
            for c in ("divergence", "output_tokens", "output_text", *_EFFECTS)
            if c in rows.columns
        }

    def _mutations(self, frame: pd.DataFrame) -> dict[int, Mutation]:
        th, tw = self.tile
        has = set(frame.columns)
        out = {}
        for r in frame.to_dict("records"):
            r0 = int(r["r0"]) if "r0" in has else int(r["row"]) * th
            c0 = int(r["c0"]) if "c0" in has else int(r["col"]) * tw
            h = int(r["height"]) if "height" in has else th  # an export keeps no ragged edges' sizes
            w = int(r["width"]) if "width" in has else tw
            mid = int(r["mutation_id"])
            out[mid] = Mutation(
                mutation_id=mid,
                layer=int(r["layer"]),
                matrix=str(r["matrix"]),
                row=int(r["row"]),
                col=int(r["col"]),
                kind=Kind.parse(str(r["kind"])),
                value=float(r["value"]),
                r0=r0,
                r1=r0 + h,
                c0=c0,
                c1=c0 + w,
            )
        return dict(sorted(out.items()))

    def probe_records(self) -> list[ProbeRecord]:
        """The source's probes as the store keeps them (token arrays empty where an export dropped them)."""
        out = []
        for r in self._probes.to_dict("records"):
            logprob = _none(r.get("wt_logprob"))
            out.append(
                ProbeRecord(
                    probe_id=str(r["probe_id"]),
                    kind=str(r["kind"]),
                    text=str(r["text"]),
                    chat=bool(r["chat"]),
                    max_new_tokens=int(r["max_new_tokens"]),
                    decoding=str(r["decoding"]),
                    answer=_none(r.get("answer")),
                    group=_none(r.get("probe_group")),
                    prompt_tokens=_tokens(r.get("prompt_tokens")) or (),
                    wt_tokens=_tokens(r.get("wt_tokens")) or (),
                    wt_text=str(r["wt_text"]),
                    wt_logprob=None if logprob is None else float(logprob),
                )
            )
        return out

    def check_probes(self, probe_dicts: Sequence[dict[str, Any]]) -> None:
        """One line when the probes (as ``Probe.to_dict()``) are not the source's."""
        from ..probes import Probe

        held = [Probe.from_dict(d).to_dict() for d in self.config["probes"]]
        if list(probe_dicts) != held:
            mine = ", ".join(str(p["id"]) for p in probe_dicts)
            raise InputError(
                f"--replay {self.path} holds probes {', '.join(self.probe_ids)} as screened there, not these "
                f"({mine}): use the same --probe, --max-new-tokens and --decoding"
            )

    def check_mutations(self, mutations: Sequence[Mutation]) -> None:
        """One line when a mutant of ``mutations`` is absent from the source or another mutant there."""
        for m in mutations:
            held = self.mutations.get(m.mutation_id)
            if held is None or (held.layer, held.matrix, held.row, held.col, str(held.kind)) != (
                m.layer,
                m.matrix,
                m.row,
                m.col,
                str(m.kind),
            ):
                there = held.label() if held is not None else "absent"
                raise InputError(
                    f"--replay {self.path} holds another plan (mutant {m.mutation_id} is {there} there, "
                    f"{m.label()} here): use the plan options it was screened with"
                )

    def rows(self, mutations: Sequence[Mutation], probe_ids: Sequence[str]) -> list[OutcomeRow]:
        """The stored rows of ``mutations`` x ``probe_ids`` (mutation order, then probe order)."""
        cols = self._columns
        out: list[OutcomeRow] = []
        for m in mutations:
            for pid in probe_ids:
                i = self._index[(m.mutation_id, pid)]
                div = _none(cols["divergence"][i])
                if "output_tokens" in cols:
                    tokens = _tokens(cols["output_tokens"][i])
                    text = _none(cols["output_text"][i])
                else:  # an export: no outputs kept
                    tokens, text = (self._wt[pid], None) if div is None else (None, None)
                effects = {c: _none(cols[c][i]) for c in _EFFECTS if c in cols}
                out.append(
                    MeasuredOutcomeRow(
                        mutation_id=m.mutation_id,
                        probe_id=pid,
                        tokens=tokens,
                        text=None if text is None else str(text),
                        divergence=None if div is None else int(div),
                        margin=None if effects.get("margin") is None else float(effects["margin"]),
                        min_margin=None if effects.get("min_margin") is None else float(effects["min_margin"]),
                        logprob_drop=float(effects.get("logprob_drop") or 0.0),
                        logprob_drop_per_token=float(effects.get("logprob_drop_per_token") or 0.0),
                        rechecked=bool(effects.get("rechecked") or False),
                    )
                )
        return out


class ReplayBackend(Backend):
    """Answers every task from a :class:`ReplaySource`, in the order given."""

    engines = None
    asked_by = "--replay"

    def __init__(self, source: ReplaySource):
        self.source = source

    @classmethod
    def chosen(cls, placement: Placement) -> bool:
        """The backend when a replay source is given."""
        return placement.replay is not None

    @classmethod
    def build(
        cls,
        subject: Any,
        engine: Engine,
        engine_options: dict[str, Any],
        placement: Placement,
        status: Status | None = None,
    ) -> ReplayBackend:
        assert placement.replay is not None
        return cls(ReplaySource(placement.replay))

    @property
    def description(self) -> str:
        return f"replay of {self.source.path.name}"

    def run(
        self, tasks: Sequence[Task], probes: Sequence[PreparedProbe], rows_done: TaskRowsDone | None = None
    ) -> Iterator[tuple[Task, list[OutcomeRow], float]]:
        """Each task's rows read back (``rows_done`` is not called: a task is answered at once)."""
        self.source.check_probes([p.probe.to_dict() for p in probes])
        self.source.check_mutations([m for t in tasks for m in t.mutations])
        for task in tasks:
            ids = [p.id for p in probes if task.probe_ids is None or p.id in task.probe_ids]
            yield task, self.source.rows(task.mutations, ids), 0.0
