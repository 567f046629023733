"""Statistics of a screen, each a function from the site table to a DataFrame.

Every function takes the *site frame* (:func:`site_frame`: one row per
mutation x probe, multiple-choice questions collapsed into their set) and
returns a tidy DataFrame, so analyses are easy to test on planted data and to
recompute from a results file without rerunning anything. Bias, enrichment
and COPA take a ``readout``: ``"nsm"`` (the paper's binary call) or
``"effect"`` (the continuous effect size, rank-based tests).
"""

from .bias import bias
from .copa import copa
from .counts import nsm_counts
from .enrichment import enrichment
from .findings import findings, saturation_note
from .frame import site_frame, tile_map
from .overlap import overlap
from .readouts import READOUTS
from .recurrence import recurrence, recurrent_axes
from .registry import STATISTICS
from .reorder import reordered_map
from .saturation import saturation
from .severity import severity_distribution
from .superweight_tiles import marked_axes, read_superweights, superweight_tiles
from .writers import writer_groups

__all__ = [
    "READOUTS",
    "STATISTICS",
    "bias",
    "copa",
    "enrichment",
    "findings",
    "marked_axes",
    "nsm_counts",
    "overlap",
    "read_superweights",
    "recurrence",
    "recurrent_axes",
    "reordered_map",
    "saturation",
    "saturation_note",
    "severity_distribution",
    "site_frame",
    "superweight_tiles",
    "tile_map",
    "writer_groups",
]
