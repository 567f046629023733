"""Merging shard files into one results file: ``mutascope merge OUT SHARD...``.

For clusters without Ray (a SLURM array, separate machines), each job runs
``mutascope screen ... --shard I/N --out shardI.duckdb``; merging writes the
file the unsharded screen would have written. Shards end on the plan's
chunk grid (:data:`mutascope.plan.SHARD_BLOCK`), so each shard batched its
mutants exactly as one screen does, and the merged tables equal the
unsharded file's, timing columns (``seconds``, ``finished_at``,
``created_at``) apart.

Everything is checked before anything is written, and a refusal leaves every
file as it was:

* each shard is a results file, and all hold one screen: the same
  configuration but for the shard, and the same WT outputs;
* the shards are distinct parts of one split (``I/N`` with the same N), and
  every part is there: missing shards are named;
* every shard is complete: a shard whose screen stopped part way is named
  with how many mutants it lacks (rerun its command to finish it);
* no two shards hold the same mutation.

The merged file is written beside ``OUT`` under a temporary name
(``.OUT.PID.*.tmp``) and linked into place once complete, which fails if
``OUT`` appeared meanwhile: of two merges into one new file, the later is
refused, never silently replacing the other. ``OUT`` must not exist yet.
Temporary files of merges that were killed (their PID no longer runs) are
removed by the next merge into the same file. Predictions (``mutascope predict``,
``screen --order predicted``) are carried over: each shard's are its own
mutants'. Tables derived from outcomes
(phenotypes, analyses) are not carried over: run ``phenotype``/``analyze``
on the merged file.
"""

from __future__ import annotations

import contextlib
import glob
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import FileInUseError, InputError, ResultsFileError
from ..files.outputs import is_duckdb_file, refuse_file_parent
from ..store import Results
from ..store.merge import prediction_coverage, shard_facts, write_merged


@dataclass(frozen=True)
class _Shard:
    path: Path
    index: int
    count: int
    config: dict
    n_mutations: int
    n_done: int
    first: int | None
    last: int | None
    probes: list[tuple]
    schema_version: int


def _read_shard(path: Path) -> _Shard:
    with Results(path) as r:
        config = r.config
        index, _, count = str(config.get("shard", "0/1")).partition("/")
        n_mut, version, first, last, n_done, probes = shard_facts(r.con)
    return _Shard(path, int(index), int(count), config, n_mut, n_done, first, last, probes, version)


def check_shards(paths: Sequence[str | os.PathLike]) -> list[_Shard]:
    """The shards, in index order, after every check of the module docstring (one-line errors)."""
    if len(paths) < 1:
        raise InputError("give at least one shard file to merge")
    resolved = [Path(p).resolve() for p in paths]
    if len(set(resolved)) < len(resolved):
        raise InputError("the same shard file is given twice")
    shards = [_read_shard(Path(p)) for p in paths]
    base = shards[0]
    strip = lambda c: {k: v for k, v in c.items() if k != "shard"}  # noqa: E731
    for s in shards[1:]:
        if strip(s.config) != strip(base.config):
            differs = sorted(
                k for k in set(s.config) | set(base.config) if k != "shard" and s.config.get(k) != base.config.get(k)
            )
            raise ResultsFileError(f"{s.path} holds another screen than {base.path} (differs in: {', '.join(differs)})")
        if s.probes != base.probes:
            raise ResultsFileError(f"{s.path} has other wild-type outputs than {base.path}: not shards of one screen")
    counts = {s.count for s in shards}
    if len(counts) > 1:
        raise ResultsFileError(f"the shards come from different splits ({', '.join(sorted(f'/{c}' for c in counts))})")
    count = counts.pop()
    seen: dict[int, Path] = {}
    for s in shards:
        if s.index in seen:
            raise ResultsFileError(f"{s.path} and {seen[s.index]} are both shard {s.index}/{count}: they overlap")
        seen[s.index] = s.path
    missing = [i for i in range(count) if i not in seen]
    if missing:
        names = ", ".join(f"{i}/{count}" for i in missing)
        raise InputError(f"shard{'s' if len(missing) > 1 else ''} {names} missing: give all {count} shards")
    shards.sort(key=lambda s: s.index)
    for a, b in zip(shards, shards[1:]):
        if a.last is not None and b.first is not None and a.last >= b.first:
            raise ResultsFileError(f"{a.path} and {b.path} hold overlapping mutations")
    incomplete = [s for s in shards if s.n_done < s.n_mutations]
    if incomplete:
        s = incomplete[0]
        raise ResultsFileError(
            f"{s.path} (shard {s.index}/{count}) is incomplete: {s.n_mutations - s.n_done} of {s.n_mutations} "
            "mutants have no outcomes; rerun its screen command to finish it, then merge"
        )
    return shards


def merge(out: str | os.PathLike, paths: Sequence[str | os.PathLike]) -> Path:
    """Write the unsharded results file of ``paths`` to ``out`` (see the module docstring)."""
    out = Path(out)
    refuse_file_parent(out, "the merged file", "create")
    if out.exists():
        what = "a DuckDB file" if is_duckdb_file(out) else "a file"
        raise InputError(f"{out} already exists ({what}); merge writes a new file: choose another name")
    if any(Path(p).resolve() == out.resolve() for p in paths):
        raise InputError(f"{out} is also one of the shards")
    shards = check_shards(paths)
    config = dict(shards[0].config, shard="0/1")
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        _write(tmp, shards, config)
        try:
            os.link(tmp, out)  # never replaces: a merge into the same file that finished first wins
        except FileExistsError:
            raise FileInUseError(
                f"{out} was written by another merge meanwhile; it is kept, this merge's result is discarded"
            ) from None
    finally:
        for leftover in (tmp, Path(str(tmp) + ".wal")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
    return out


def predictions_note(path: str | os.PathLike) -> str | None:
    """What a merged file's predictions leave out, in one line (None when they are whole):
    shards of which only some were predicted, or predicted with and without ``--superweights``.
    Merging them is allowed (``mutascope predict`` on the merged file completes both), but the
    agreement quoted afterwards would rest on part of the screen, so it is said at once."""
    with Results(path) as r:
        if "predictions" not in r.table_names():
            return None
        total = int(r.runs["n_mutations"].iloc[0])
        have, marked = prediction_coverage(r.con)
    parts = []
    if have < total:
        parts.append(f"predictions cover {have} of {total} mutants (not every shard was predicted)")
    if 0 < marked < have:
        parts.append(
            f"super-weight marks cover {marked} of {have} predicted mutants (shards predicted with and "
            "without --superweights)"
        )
    if not parts:
        return None
    return (
        "; ".join(parts)
        + ": run `mutascope predict` with the screen's options (and --superweights) on the merged file to complete them"
    )


def remove_stale_temporaries(out: Path) -> list[Path]:
    """Remove what merges into ``out`` left behind when killed (kill -9 skips every ``finally``):
    ``.OUT.PID.*.tmp`` files (and their ``.wal``) of processes that no longer run."""
    removed = []
    for leftover in out.parent.glob(f".{glob.escape(out.name)}.*.tmp*"):
        parts = leftover.name[len(out.name) + 2 :].split(".")
        if not parts or not parts[0].isdigit() or _alive(int(parts[0])):
            continue
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
            removed.append(leftover)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _write(target: Path, shards: list[_Shard], config: dict) -> None:
    write_merged(target, [s.path for s in shards], n_mutations=sum(s.n_mutations for s in shards), config=config)
