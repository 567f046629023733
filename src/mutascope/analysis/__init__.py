"""Statistics of a screen, each a function from the site table to a DataFrame.

Every function takes the *site frame* (:func:`site_frame`: one row per
mutation x probe, multiple-choice questions collapsed into their set) and
returns a tidy DataFrame, so analyses are easy to test on planted data and to
recompute from a results file without rerunning anything.
"""

from .bias import bias
from .copa import copa
from .counts import nsm_counts
from .enrichment import enrichment, recurrent_axes
from .frame import site_frame, tile_map
from .overlap import overlap
from .reorder import reordered_map
from .severity import severity_distribution
from .writers import writer_groups

__all__ = [
    "bias",
    "copa",
    "enrichment",
    "nsm_counts",
    "overlap",
    "recurrent_axes",
    "reordered_map",
    "severity_distribution",
    "site_frame",
    "tile_map",
    "writer_groups",
]
