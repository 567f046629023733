"""``mutascope merge OUT SHARD...``: the shard files of one screen joined into the unsharded file."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import err, out


def merge(
    out_file: Path = typer.Argument(..., help="The merged results file to write (must not exist)."),
    shards: list[Path] = typer.Argument(..., help="Every shard file of one screen (screen --shard I/N)."),
) -> None:
    """Merge the shard files of one screen into the file an unsharded screen would have written."""
    from ..screen import merge as run_merge
    from ..screen.merge import predictions_note
    from ..store import open_results

    with err.status("merging ..."):
        path = run_merge(out_file, shards)
    with open_results(path) as results:
        n = results.query("SELECT count(DISTINCT mutation_id) AS n FROM outcomes")["n"][0]
    out.print(f"merged {len(shards)} shards ({n} mutants) into {path}")
    note = predictions_note(path)
    if note:
        err.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)
