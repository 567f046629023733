"""`mutascope merge`: shard files of one screen become the unsharded file; anything else is refused untouched."""

import hashlib
import shutil

import pytest

from mutascope.errors import MutascopeError
from mutascope.screen.merge import merge
from mutascope.plan import PlanSpec
from mutascope.screen import Screen
from mutascope.store import open_results
from mutascope.testing import tiny_model

from helpers import text_probes

SPEC = PlanSpec.parse(layers="0-1", matrices="q,k,gate", kinds="max,min", tile=16)  # 528 mutants: 3 blocks of 256


def screen_tables(path):
    """Every table of a screen file, timing columns (and the chunk's engine label) left out."""
    with open_results(path) as r:
        out = {t: r.con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in ("probes", "mutations", "outcomes")}
        out["runs"] = r.con.execute("SELECT * EXCLUDE (created_at) FROM runs").fetchall()
        out["progress"] = r.con.execute(
            "SELECT * EXCLUDE (seconds, finished_at) FROM progress ORDER BY ALL").fetchall()
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    subject = tiny_model("llama")
    tmp = tmp_path_factory.mktemp("merge")
    probes = text_probes(4)[:1]
    Screen(subject, probes, SPEC, tmp / "full.duckdb").run()
    for i in range(3):
        Screen(subject, probes, SPEC, tmp / f"s{i}.duckdb", shard=(i, 3)).run()
    Screen(subject, probes, SPEC, tmp / "half.duckdb", shard=(0, 2)).run()

    def stop(done, total):
        if done >= 8:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Screen(subject, probes, SPEC, tmp / "part1.duckdb", shard=(1, 3), chunk_size=8).run(stop)
    Screen(subject, probes, PlanSpec.parse(layers="0-1", matrices="q,k,up", kinds="max,min", tile=16),
           tmp / "other1.duckdb", shard=(1, 3)).run()
    return tmp


def test_three_shards_merged_equal_the_unsharded_screen(files, tmp_path):
    shards = [files / f"s{i}.duckdb" for i in (2, 0, 1)]  # any order
    out = merge(tmp_path / "merged.duckdb", shards)
    assert screen_tables(out) == screen_tables(files / "full.duckdb")
    assert not [p for p in tmp_path.iterdir() if p.name != "merged.duckdb"]  # no temporary file left


def digests(root):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in root.iterdir() if p.is_file()}


@pytest.mark.parametrize("names, message", [
    (["s0", "s1", "s1"], "given twice"),
    (["s0", "s1"], "missing"),
    (["s0", "s1", "other1"], "another screen"),
    (["s0", "half", "s2"], "different splits"),
    (["s0", "part1", "s2"], "incomplete"),
])
def test_bad_shard_sets_are_refused_and_nothing_changes(files, tmp_path, names, message):
    for name in set(names):
        shutil.copy(files / f"{name}.duckdb", tmp_path / f"{name}.duckdb")
    before = digests(tmp_path)
    with pytest.raises(MutascopeError, match=message):
        merge(tmp_path / "merged.duckdb", [tmp_path / f"{n}.duckdb" for n in names])
    assert digests(tmp_path) == before


def test_an_existing_output_is_never_overwritten(files, tmp_path):
    out = tmp_path / "out.duckdb"
    shutil.copy(files / "full.duckdb", out)
    before = digests(tmp_path)
    with pytest.raises(MutascopeError, match="already exists"):
        merge(out, [files / f"s{i}.duckdb" for i in range(3)])
    assert digests(tmp_path) == before
