"""Maps, figures and a one-file interactive HTML report of a screen.

:func:`write_report` turns a results file into one offline HTML page
(summary, interactive tile maps, statistics tables, figures);
:func:`save_figures` writes the static PNG figures on their own;
:func:`zoom_figure` draws a zoomed tile's regions coloured by effect.
"""

from .figures import (
    TILE_CLASSES,
    enrichment_figure,
    figure_set,
    overlap_figure,
    overview_figure,
    save_figures,
    tile_classes,
    tile_map_figure,
    top_matrices,
)
from .html import check_report, write_report
from .payload import build_payload
from .zoom import zoom_figure

__all__ = [
    "TILE_CLASSES",
    "build_payload",
    "check_report",
    "enrichment_figure",
    "figure_set",
    "overlap_figure",
    "overview_figure",
    "save_figures",
    "zoom_figure",
    "tile_classes",
    "tile_map_figure",
    "top_matrices",
    "write_report",
]
