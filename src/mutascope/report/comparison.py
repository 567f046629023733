"""A comparison of analysed screens (:mod:`mutascope.analysis.compare`) as files: CSV, Markdown, figures.

The side-by-side table is written long (``statistics.csv``, one row per
statistic x key x model, with the numbers behind each verdict) and wide
(``comparison.csv``, and ``comparison.md`` with the header, the aligned
profiles over thirds of depth and the super-activation link), so a docs
page can quote it and a script can check it. One figure per matrix type
draws each model's per-layer profile against relative depth, because layer
numbers of models of different depth do not line up. Every file follows
:mod:`mutascope.files.outputs`: never over a DuckDB file or an input,
replaced atomically.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from ..analysis.compare import PROFILE_METRICS, Comparison, statistic_title
from ..files.outputs import atomic_file, check_output_dir, save_figure, write_text
from ..model.anatomy import MATRICES

LINESTYLES = ("-", "--", ":", "-.")


def profile_figure(profiles: pd.DataFrame, matrix: str, labels: list[str]) -> Figure:
    """One matrix type: effect bias, enriched share and NSM rate against relative depth,
    a colour per model and a line style per probe."""
    sub = profiles[profiles["matrix"] == matrix]
    fig = Figure(figsize=(11, 3.2), layout="constrained")
    axes = fig.subplots(1, len(PROFILE_METRICS), squeeze=False)[0]
    colours = {label: f"C{i}" for i, label in enumerate(labels)}
    for ax, (metric, title) in zip(axes, PROFILE_METRICS.items()):
        for (model, probe), g in sub.groupby(["model", "probe_id"], sort=False):
            probes = list(dict.fromkeys(sub.loc[sub["model"] == model, "probe_id"]))
            g = g.sort_values("depth")
            ax.plot(
                g["depth"],
                g[metric],
                marker="o",
                markersize=3,
                color=colours.get(model, "k"),
                linestyle=LINESTYLES[probes.index(probe) % len(LINESTYLES)],
                label=f"{model}: {probe}",
            )
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("relative depth (layer / (layers - 1))", fontsize=8)
        ax.set_xlim(-0.03, 1.03)
        ax.tick_params(labelsize=7)
        if metric == "effect_bias":
            ax.axhline(0, color="0.6", linewidth=0.8)
            ax.set_ylim(-1.05, 1.05)
        else:
            ax.set_ylim(-0.03, 1.03)
    handles, names = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, names, loc="outside right upper", fontsize=7)
    fig.suptitle(f"{matrix}: per-layer profile against relative depth", fontsize=10)
    return fig


def _cell(value) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _md_table(frame: pd.DataFrame) -> list[str]:
    cols = list(frame.columns)
    lines = ["| " + " | ".join(map(_cell, cols)) + " |", "| " + " | ".join("---" for _ in cols) + " |"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return lines


def markdown(c: Comparison) -> str:
    """The comparison as one Markdown page: header, statistics side by side, depth profiles, the link."""
    wide = c.side_by_side()
    wide.insert(0, "table", wide.pop("statistic").map(lambda n: f"{statistic_title(n)} (`analysis_{n}`)"))
    depth = c.depth_parts.copy()
    for metric in PROFILE_METRICS:
        depth[metric] = depth[metric].map(lambda x: "-" if pd.isna(x) else f"{x:.2f}")
    link = c.link[["model", "probe_id", "holds", "figure"]]
    out = [
        "# Screens compared",
        "",
        *[f"* {line}" for line in c.header],
        "",
        f"## Statistics side by side (q below {c.alpha} counted as hits)",
        "",
        *_md_table(wide),
        "",
        "## Profiles over thirds of relative depth (means over probes and layers)",
        "",
        *_md_table(depth),
        "",
        "## Does the most sensitive `v` column tile hold the model's super-activation channel?",
        "",
        *_md_table(link),
        "",
    ]
    return "\n".join(out)


def check_comparison_dir(out_dir: str | os.PathLike, inputs) -> Path:
    """The ``--out`` directory, checked before any work (not a file, not an input)."""
    return check_output_dir(out_dir, inputs=inputs, what="--out directory")


def write_comparison(c: Comparison, out_dir: str | os.PathLike, dpi: int = 110) -> list[Path]:
    """Every table as CSV, the Markdown page, and one PNG per matrix type, into ``out_dir``."""
    directory = check_comparison_dir(out_dir, [s.path for s in c.inputs])
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, table in (
        ("comparison", c.side_by_side()),
        ("statistics", c.statistics),
        ("profiles", c.profiles),
        ("depth", c.depth_parts),
        ("superactivation", c.link),
    ):
        with atomic_file(directory / f"{name}.csv", "w", encoding="utf-8", newline="") as f:
            table.to_csv(f, index=False)
        written.append(directory / f"{name}.csv")
    written.append(write_text(directory / "comparison.md", markdown(c)))
    labels = [s.label for s in c.inputs]
    present = set(c.profiles["matrix"])
    for matrix in [m for m in MATRICES if m in present] + sorted(present - set(MATRICES)):
        written.append(
            save_figure(profile_figure(c.profiles, matrix, labels), directory / f"profile_{matrix}.png", dpi=dpi)
        )
    return written


__all__ = ["check_comparison_dir", "markdown", "profile_figure", "write_comparison"]
