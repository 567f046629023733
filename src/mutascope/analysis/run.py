"""Run every analysis of a screen and keep the tables.

``analyze()`` reads a results file, computes every statistic of
:data:`~.registry.STATISTICS` that the screen allows, writes them back into
the file as ``analysis_<name>`` tables (replacing older ones, and dropping
``analysis_`` tables this run did not produce) and, when asked, as CSV
files. Tables needing phenotypes are skipped until ``mutascope phenotype``
has been run; a screen without effect sizes (the reference engine) gets the
effect tables empty, with their columns.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from ..errors import InputError, ResultsFileError
from ..files.outputs import atomic_file, check_output_dir
from ..store import open_results, write_tables
from .findings import findings
from .frame import DEFAULT_EFFECT, check_effect, probe_context, site_frame
from .registry import Context, compute_all
from .superweight_tiles import check_same_model, marked_axes, read_superweights


def check_options(alpha: float, n_perm: int) -> None:
    """One-line errors for a false discovery rate outside (0, 1) or no permutations."""
    if not 0 < alpha < 1:
        raise InputError(f"--alpha must be between 0 and 1 (exclusive), got {alpha}")
    if n_perm < 1:
        raise InputError(f"--permutations must be at least 1, got {n_perm}")


def analysis_tables(
    frame: pd.DataFrame,
    *,
    alpha: float = 0.05,
    n_perm: int = 999,
    marks: pd.DataFrame | None = None,
    probes: pd.DataFrame | None = None,
    effect: str = DEFAULT_EFFECT,
    progress: Callable[[str], None] | None = None,
    predictions: pd.DataFrame | None = None,
) -> dict[str, pd.DataFrame]:
    """Every analysis table of a site frame, by name.

    ``marks`` (from :func:`~.superweight_tiles.marked_axes`) adds the
    super-weight tables; ``predictions`` (the file's table of that name) adds
    ``prediction_agreement``; ``probes`` (:func:`~.frame.probe_context`) joins the
    probes' WT length and likelihood to the tables with effect sizes;
    ``n_perm`` is the least number of permutations (families may need more).
    """
    ctx = Context(
        frame=frame, alpha=alpha, n_perm=n_perm, effect=effect, marks=marks, probes=probes, predictions=predictions
    )
    return compute_all(ctx, progress)


def control_frames(results, controls, effect: str, frame: pd.DataFrame) -> list[pd.DataFrame]:
    """The site frames of control screens, checked to be of the same model, probes and tiles,
    with mutation ids moved past the main file's (they are another file's ids)."""
    run = results.runs.iloc[0]
    wt = results.probes.set_index("probe_id")["wt_tokens"].map(tuple).to_dict()
    out, offset = [], int(frame["mutation_id"].max()) + 1 if len(frame) else 0
    for control in controls:
        with open_results(control) as c:
            other = c.runs.iloc[0]
            for key, what in (
                ("model_hash", "model weights"),
                ("dtype", "dtype"),
                ("tile_h", "tile"),
                ("tile_w", "tile"),
            ):
                if other[key] != run[key]:
                    raise ResultsFileError(
                        f"control {control} differs from {results.path} in its {what}; "
                        "a control must screen the same model with the same tiles"
                    )
            theirs = c.probes.set_index("probe_id")["wt_tokens"].map(tuple).to_dict()
            if theirs != wt:
                raise ResultsFileError(
                    f"control {control} has other probes (or WT outputs) than {results.path}; "
                    "screen the control with the same --probe options"
                )
            part = site_frame(c, effect)
        part = _covering(part[~part["kind"].isin(set(frame["kind"]))], frame, control, results.path)
        part = part.assign(mutation_id=part["mutation_id"] + offset)
        offset = int(part["mutation_id"].max()) + 1 if len(part) else offset
        out.append(part)
    return out


SITE = ["layer", "matrix", "row", "col"]


def _covering(part: pd.DataFrame, frame: pd.DataFrame, control, path) -> pd.DataFrame:
    """The control's mutants at the screen's sites, refusing a control that does not cover them.

    The rule: every kind the control adds must have been screened at every site of the
    screen (a control of more sites is fine: only the screen's sites are kept). A control
    of a subset, of other sites, or the screen itself (no kind to add) is refused, since a
    statistic would otherwise set a handful of control tiles beside the whole screen.
    """
    if part.empty:
        raise ResultsFileError(
            f"control {control} adds no kind that {path} lacks; a control screens "
            "control kinds (sym:X, noise:X) at the screen's sites"
        )
    sites = frame[SITE].drop_duplicates()
    for kind, screened in part.groupby("kind", sort=True):
        missing = sites.merge(screened[SITE].drop_duplicates(), how="left", on=SITE, indicator=True)
        missing = missing[missing["_merge"] == "left_only"]
        if len(missing):
            first = missing.iloc[0]
            raise ResultsFileError(
                f"control {control} does not cover the screen's sites: kind {kind} misses {len(missing)} of "
                f"{len(sites)} (first: layer {first['layer']} {first['matrix']} tile row {first['row']} col "
                f"{first['col']}); screen the control with the same --layers/--matrices/--rows/--cols"
            )
    return part.merge(sites, on=SITE, how="inner")


def screen_marks(results, frame: pd.DataFrame, superweights: str | os.PathLike) -> pd.DataFrame:
    """The axes of the screened matrices that ``superweights`` marks (refusing another model's file)."""
    sw = read_superweights(superweights)
    run = results.runs.iloc[0].to_dict()
    check_same_model(sw, run, results.path)
    matrices = frame[["layer", "matrix"]].drop_duplicates().itertuples(index=False, name=None)
    return marked_axes(sw, [(int(layer), str(m)) for layer, m in matrices], (int(run["tile_h"]), int(run["tile_w"])))


def analyze(
    path: str | os.PathLike,
    *,
    csv_dir: str | os.PathLike | None = None,
    alpha: float = 0.05,
    n_perm: int = 999,
    effect: str = DEFAULT_EFFECT,
    superweights: str | os.PathLike | None = None,
    controls: Sequence[str | os.PathLike] = (),
    progress: Callable[[str], None] | None = None,
) -> dict[str, pd.DataFrame]:
    """Compute all tables for the screen in ``path``; store them in the file (and CSV).

    ``effect`` names the outcome column read as the effect size;
    ``superweights`` (a ``mutascope superweights`` DuckDB file or JSON
    export of the same model) adds ``analysis_superweight_tiles``;
    ``controls`` are screens of control kinds (``sym:X``, ``noise:X``) of the
    same model, probes and tiles, whose mutants join the site frame (kinds
    the main file has are taken from the main file).
    """
    check_options(alpha, n_perm)
    check_effect(effect)
    if csv_dir is not None:
        inputs = [path, *controls] + ([superweights] if superweights else [])
        check_output_dir(csv_dir, inputs=inputs, what="--csv directory")
    with open_results(path) as results:
        frame = site_frame(results, effect)
        frame = pd.concat([frame, *control_frames(results, controls, effect, frame)], ignore_index=True)
        probes = probe_context(results)
        marks = screen_marks(results, frame, superweights) if superweights is not None else None
        predicted = results.predictions
        stale = [t for t in results.table_names() if t.startswith("analysis_")]
    if frame.empty:
        raise ResultsFileError(f"{path} has no outcomes yet: run the screen first")
    tables = analysis_tables(
        frame,
        alpha=alpha,
        n_perm=n_perm,
        marks=marks,
        probes=probes,
        effect=effect,
        progress=progress,
        predictions=predicted,
    )
    stored = {f"analysis_{name}": _storable(table) for name, table in tables.items()}
    write_tables(path, stored, drop=[t for t in stale if t not in stored])
    if csv_dir is not None:
        directory = Path(csv_dir)
        directory.mkdir(parents=True, exist_ok=True)
        for name, table in tables.items():
            with atomic_file(directory / f"{name}.csv", "w", encoding="utf-8", newline="") as f:
                table.to_csv(f, index=False)
    return tables


def _storable(table: pd.DataFrame) -> pd.DataFrame:
    """An empty table with object columns typed as text, so DuckDB can create it."""
    if len(table):
        return table
    return table.astype({c: "string" for c in table.columns if table[c].dtype == object})


__all__ = ["analysis_tables", "analyze", "check_options", "findings", "screen_marks"]
