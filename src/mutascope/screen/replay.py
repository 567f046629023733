"""A screen replayed from a complete one (:mod:`mutascope.backends.replay`), without a model.

Everything that would come from the model (the identity, the probes' prompts
and WT outputs, the plan's mutations, the predictions) comes from the source
instead, so the replayed file holds the source's screen: the same
configuration hash, the same rows for every mutant it ran. The configuration
still says which screen is meant (plan, probes), and a source that holds
another is refused in one line. This is how an adaptive screen is measured
offline against the full one (docs/adaptive.md).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pandas as pd

from ..backends import Placement
from ..backends.replay import ReplayBackend, ReplaySource
from ..errors import InputError
from ..plan import PlanSpec
from ..probes import Probe
from ..probes.chooser import TokenChooser
from ..probes.prepared import PreparedProbe
from ..progress import Progress, Status
from ..store import RunRecord, Store, check_target
from .config import ADAPTIVE_CHUNK_SIZE, Adaptive, EngineChoice, ProbeSet, ScreenConfig
from .screen import Screen


def replay_config(
    source: str | Path,
    out: str | Path,
    *,
    order: str = "plan",
    adaptive: Adaptive | None = None,
    chunk_size: int | None = None,
) -> ScreenConfig:
    """The configuration of a replay of ``source`` into ``out``: its own plan and probes."""
    held = ReplaySource(source) if not isinstance(source, ReplaySource) else source
    return ScreenConfig(
        probes=ProbeSet(tuple(Probe.from_dict(d) for d in held.config["probes"])),
        plan=PlanSpec.from_dict(held.config["plan"]),
        out=Path(out),
        engine=EngineChoice(chunk_size=chunk_size),
        order=order,  # type: ignore[arg-type]  # checked by the configuration
        adaptive=adaptive,
        placement=Placement(replay=str(held.path)),
    )


class ReplayScreen(Screen):
    """:class:`Screen` answered by a :class:`ReplaySource` (``config.placement.replay``): the
    configuration's plan and probes must be the source's (one-line refusal otherwise)."""

    def __init__(self, config: ScreenConfig, *, source: ReplaySource | None = None):
        if config.placement.replay is None:
            raise InputError("a replayed screen needs a source: Placement(replay=FILE or export directory)")
        self.source = source or ReplaySource(config.placement.replay)
        if config.out.resolve() == self.source.path.resolve():
            raise InputError(f"--out {config.out} is the --replay source: write the replay to another file")
        held_plan = PlanSpec.from_dict(self.source.config["plan"])
        if config.plan.to_dict() != held_plan.to_dict():
            raise InputError(
                f"--replay {self.source.path} holds another plan ({json.dumps(self.source.config['plan'])}); "
                "use the plan options it was screened with"
            )
        self.probes = config.probes.resolve()
        self.source.check_probes([p.to_dict() for p in self.probes])
        self.config = config
        self.subject = None
        self.replayer = ReplayBackend(self.source)
        self.backend = self.replayer
        self.mutations = tuple(self.source.mutations.values())
        default = ADAPTIVE_CHUNK_SIZE if config.order == "adaptive" else 256
        self.chunk_size = config.engine.chunk_size or default
        records = {r.probe_id: r for r in self.source.probe_records()}
        self._records = [records[p.id] for p in self.probes]
        # No engine runs here: a chooser that is never asked (no vocabulary) keeps the record's shape.
        self._prepared = [
            PreparedProbe(probe=p, prompt=r.prompt_tokens, chooser=TokenChooser(p.decoding, 0), wt_tokens=r.wt_tokens)
            for p, r in zip(self.probes, self._records)
        ]
        check_target(config.out, self.identity())

    def identity(self) -> dict[str, Any]:
        """The source's identity: a replayed file is the source's screen."""
        return dict(self.source.config)

    def _open_store(self) -> Store:
        r = self.source.run_row
        run = RunRecord(
            model_id=str(r["model_id"]),
            model_hash=str(r["model_hash"]),
            dtype=str(r["dtype"]),
            device=str(r["device"]),
            decoding=str(r["decoding"]),
            tile=self.source.tile,
            shard=str(r["shard"]),
            versions={"replayed": str(self.source.path)},
        )
        return Store.open(self.out, self.identity(), run=run, probes=self._records, mutations=self.mutations)

    def _backend(self, status: Status | None) -> contextlib.AbstractContextManager[ReplayBackend]:
        return contextlib.nullcontext(self.replayer)

    def _predictions(self, store: Store, progress: Progress | None, status: Status | None) -> pd.DataFrame | None:
        """The source's predictions, stored in the replayed file too (none: the surrogate does without)."""
        frame = self.source.predictions
        if frame is None:
            return store.read_predictions()
        if not store.has_predictions():
            store.write_predictions(frame.assign(**{c: None for c in ("local",) if c not in frame.columns}))
        return frame
