"""`mutascope merge`: shard files of one screen become the unsharded file; anything else is refused untouched."""

import hashlib
import shutil

import pytest

from helpers import screen_of, text_probes
from mutascope.errors import MutascopeError
from mutascope.plan import PlanSpec
from mutascope.screen.merge import merge
from mutascope.store import open_results
from mutascope.testing import tiny_model

SPEC = PlanSpec.parse(layers="0-1", matrices="q,k,gate", kinds="max,min", tile=16)  # 528 mutants: 3 blocks of 256


def screen_tables(path):
    """Every table of a screen file, timing columns (and the chunk's engine label) left out."""
    with open_results(path) as r:
        out = {
            t: r.con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in ("probes", "mutations", "outcomes")
        }
        out["runs"] = r.con.execute("SELECT * EXCLUDE (created_at) FROM runs").fetchall()
        out["progress"] = r.con.execute("SELECT * EXCLUDE (seconds, finished_at) FROM progress ORDER BY ALL").fetchall()
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    subject = tiny_model("llama")
    tmp = tmp_path_factory.mktemp("merge")
    probes = text_probes(4)[:1]
    screen_of(subject, probes, SPEC, tmp / "full.duckdb").run()
    for i in range(3):
        screen_of(subject, probes, SPEC, tmp / f"s{i}.duckdb", shard=(i, 3)).run()
    screen_of(subject, probes, SPEC, tmp / "half.duckdb", shard=(0, 2)).run()

    def stop(done, total):
        if done >= 8:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        screen_of(subject, probes, SPEC, tmp / "part1.duckdb", shard=(1, 3), chunk_size=8).run(stop)
    screen_of(
        subject,
        probes,
        PlanSpec.parse(layers="0-1", matrices="q,k,up", kinds="max,min", tile=16),
        tmp / "other1.duckdb",
        shard=(1, 3),
    ).run()
    return tmp


def test_three_shards_merged_equal_the_unsharded_screen(files, tmp_path):
    shards = [files / f"s{i}.duckdb" for i in (2, 0, 1)]  # any order
    out = merge(tmp_path / "merged.duckdb", shards)
    assert screen_tables(out) == screen_tables(files / "full.duckdb")
    assert not [p for p in tmp_path.iterdir() if p.name != "merged.duckdb"]  # no temporary file left


def digests(root):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in root.iterdir() if p.is_file()}


@pytest.mark.parametrize(
    "names, message",
    [
        (["s0", "s1", "s1"], "given twice"),
        (["s0", "s1"], "missing"),
        (["s0", "s1", "other1"], "another screen"),
        (["s0", "half", "s2"], "different splits"),
        (["s0", "part1", "s2"], "incomplete"),
    ],
)
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


def test_a_merge_that_finishes_second_is_refused_and_the_first_kept(files, tmp_path, monkeypatch):
    """Two merges into one new file: each checked that it did not exist; the one finishing
    later must not replace the other's file (before: os.replace did, silently)."""
    import sys

    merging = sys.modules["mutascope.screen.merge"]  # the package exports a function of the same name

    out = tmp_path / "m.duckdb"
    shards = [files / f"s{i}.duckdb" for i in range(3)]
    real = merging._write

    def other_merge_finishes_first(target, shards_, config):
        real(target, shards_, config)
        out.write_bytes(b"the other merge's file")

    monkeypatch.setattr(merging, "_write", other_merge_finishes_first)
    with pytest.raises(MutascopeError, match="another merge"):
        merge(out, shards)
    assert out.read_bytes() == b"the other merge's file"
    assert [p.name for p in tmp_path.iterdir()] == ["m.duckdb"]  # no temporary left


def test_two_concurrent_merge_processes_give_one_file_and_one_refusal(files, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "m.duckdb"
    args = [sys.executable, "-m", "mutascope", "merge", str(out), *[str(files / f"s{i}.duckdb") for i in range(3)]]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    refused = next(err for code, err in results if code == 2)
    assert len(refused.strip().splitlines()) == 1 and "m.duckdb" in refused
    with open_results(out) as r:
        assert len(r.outcomes) > 0
    assert [p.name for p in tmp_path.iterdir()] == ["m.duckdb"]


def test_temporaries_of_a_killed_merge_are_removed_by_the_next(files, tmp_path):
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "m.duckdb"
    stale = [tmp_path / f".m.duckdb.{dead.pid}.abcd1234.tmp", tmp_path / f".m.duckdb.{dead.pid}.abcd1234.tmp.wal"]
    for p in stale:
        p.write_bytes(b"left by kill -9")
    mine = tmp_path / f".m.duckdb.{__import__('os').getpid()}.live0000.tmp"  # a running merge's: kept
    mine.write_bytes(b"in use")
    merge(out, [files / f"s{i}.duckdb" for i in range(3)])
    assert not any(p.exists() for p in stale) and mine.exists()


def test_a_file_as_the_outputs_directory_is_one_line(files, tmp_path):
    from helpers import run_cli

    (tmp_path / "file.txt").write_text("not a directory")
    code, _, err = run_cli(
        ["merge", str(tmp_path / "file.txt" / "o.duckdb"), *[str(files / f"s{i}.duckdb") for i in range(3)]]
    )
    assert code == 2 and len(err.strip().splitlines()) == 1 and "file.txt" in err and "not a directory" in err, err
    assert (tmp_path / "file.txt").read_text() == "not a directory"
