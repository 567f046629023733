"""Running a screen and the commands that continue one: screen, fill, merge, and a screen read back.

* :mod:`.config`: :class:`ScreenConfig`, a screen's configuration, one
  frozen object per concern (:class:`ModelSource`, :class:`ProbeSet`,
  :class:`EngineChoice`, the plan, the placement, an adaptive screen's
  :class:`Adaptive` budget), checked once;
* :mod:`.screen`: :class:`Screen`: validate everything, compute the WT
  outputs, open (or resume) the store, hand the chunk grid to a backend,
  commit each chunk as it returns (in plan or predicted order), report
  progress; :func:`check_screen`, what can be refused before the model
  loads; :func:`predicted_coverage`, what a predicted-order screen covers;
* :mod:`.adaptive`: an adaptive screen's rounds, run and committed, and its
  estimated map stored;
* :mod:`.replay`: :class:`ReplayScreen`, a screen answered from a complete
  one (a results file or its compact export) without a model;
* :mod:`.fill`: ``mutascope fill``: the outputs of chosen NSMs of a
  calls-only screen, computed and written in place;
* :mod:`.merge`: ``mutascope merge``: shard files checked to be all the
  parts of one screen, then joined into the unsharded file;
* :mod:`.zoom`: ``mutascope zoom``: a tile refined into sub-blocks, down to
  single weights, into the file's ``zoom`` table;
* :mod:`.readback`: a screen read back from its file (its probes prepared
  for the engine, the model check).
"""

from .config import Adaptive, EngineChoice, ModelSource, ProbeSet, ScreenConfig
from .fill import FillSummary, Selection, check_fill, fill, select_rows
from .merge import check_shards, merge
from .screen import Screen, ScreenSummary, check_screen, predicted_coverage
from .zoom import ZoomRule, ZoomSummary, refine, zoom

__all__ = [
    "Adaptive",
    "EngineChoice",
    "FillSummary",
    "ModelSource",
    "ProbeSet",
    "Screen",
    "ScreenConfig",
    "ScreenSummary",
    "Selection",
    "ZoomRule",
    "ZoomSummary",
    "check_fill",
    "check_screen",
    "check_shards",
    "fill",
    "merge",
    "predicted_coverage",
    "refine",
    "select_rows",
    "zoom",
]
