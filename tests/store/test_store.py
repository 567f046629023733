"""The results store on its own (no model): schema, identity, atomic chunks, phenotype ids, reading
back, the mutations format both ways, and the DuckDB helpers every analysis writes with."""

from __future__ import annotations

import dataclasses

import duckdb
import pandas as pd
import pytest

from mutascope.errors import Interrupted, MutascopeError
from mutascope.plan import Kind, Mutation
from mutascope.store import (
    SCHEMA_VERSION,
    TABLES,
    OutcomeRow,
    ProbeRecord,
    Results,
    RunRecord,
    Store,
    check_tables_file,
    check_target,
    config_hash,
    connect,
    mutation_table,
    open_results,
    read_mutations,
    replace_tables,
    transaction,
    write_tables,
)

RUN = RunRecord(
    model_id="m",
    model_hash="h" * 16,
    dtype="float32",
    device="cpu",
    decoding="greedy",
    tile=(2, 2),
    shard="0/1",
    versions={"mutascope": "test"},
)
CONFIG = {
    "model": {"id": "m", "hash": "h" * 16},
    "dtype": "float32",
    "device": "cpu",
    "plan": {"layers": [0]},
    "shard": "0/1",
    "probes": [{"id": "a"}, {"id": "b"}],
    "eos": [2],
}
PROBES = [
    ProbeRecord(
        probe_id="a",
        kind="text",
        text="A",
        chat=False,
        max_new_tokens=3,
        decoding="greedy",
        answer=None,
        group=None,
        prompt_tokens=(1, 5),
        wt_tokens=(7, 8, 9),
        wt_text="wt a",
        wt_logprob=-1.5,
    ),
    ProbeRecord(
        probe_id="b",
        kind="text",
        text="B",
        chat=False,
        max_new_tokens=3,
        decoding="greedy",
        answer=None,
        group=None,
        prompt_tokens=(1, 6),
        wt_tokens=(4, 4, 4),
        wt_text="wt b",
    ),
]


def mutations(n: int = 6) -> list[Mutation]:
    kinds = [Kind("max"), Kind("min"), Kind.parse("sym:-1")]
    return [
        Mutation(
            mutation_id=i,
            layer=i // 3,
            matrix="q",
            row=0,
            col=i % 2,
            kind=kinds[i % 3],
            value=float(i) - 2.5,
            r0=0,
            r1=2,
            c0=2 * (i % 2),
            c1=2 * (i % 2) + 1,
        )
        for i in range(n)
    ]


def row(mid: int, pid: str, tokens, divergence) -> OutcomeRow:
    return OutcomeRow(
        mutation_id=mid,
        probe_id=pid,
        tokens=None if tokens is None else tuple(tokens),
        text=None if tokens is None else "t",
        divergence=divergence,
    )


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "s.duckdb", CONFIG, run=RUN, probes=PROBES, mutations=mutations()) as s:
        yield s


def test_a_new_file_has_every_table_at_the_current_schema(store):
    tables = {r[0] for r in store.con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert set(TABLES) <= tables
    version, digest = store.con.execute("SELECT schema_version, config_hash FROM runs").fetchone()
    assert version == SCHEMA_VERSION and digest == config_hash(CONFIG)
    assert store.con.execute("SELECT wt_logprob FROM probes ORDER BY position").fetchall() == [(-1.5,), (None,)]


def test_the_config_hash_is_canonical():
    shuffled = dict(reversed(list(CONFIG.items())))
    assert config_hash(shuffled) == config_hash(CONFIG)
    assert config_hash({**CONFIG, "dtype": "bfloat16"}) != config_hash(CONFIG)


def test_chunks_commit_with_their_progress_and_number_outputs_in_plan_order(store):
    store.write_chunk(
        [row(0, "a", (7, 8, 9), None), row(0, "b", (5, 5), 0), row(1, "a", (7, 1), 1), row(1, "b", (5, 5), 0)],
        engine="e",
        seconds=0.5,
    )
    store.write_chunk([row(2, "a", None, 2), row(2, "b", (6,), 0)], engine="e", seconds=0.25)
    assert store.done_mutations() == {0, 1, 2}
    got = store.con.execute(
        "SELECT mutation_id, probe_id, nsm, phenotype_id, filled FROM outcomes ORDER BY ALL"
    ).fetchall()
    assert got == [
        (0, "a", False, 0, True),
        (0, "b", True, 1, True),
        (1, "a", True, 1, True),
        (1, "b", True, 1, True),
        (2, "a", True, None, False),
        (2, "b", True, 2, True),
    ]
    assert store.con.execute(
        "SELECT first_mutation_id, last_mutation_id, n_mutations FROM progress ORDER BY 1"
    ).fetchall() == [(0, 1, 2), (2, 2, 1)]
    assert store.renumber_phenotypes() == 0  # written in plan order: already canonical


def test_a_failed_chunk_leaves_nothing_behind(store):
    store.write_chunk([row(0, "a", (7, 8, 9), None)], engine="e", seconds=0.1)
    with pytest.raises(duckdb.Error):  # a duplicate (mutation, probe): the whole chunk is refused
        store.write_chunk([row(1, "a", (1,), 0), row(0, "a", (7, 8, 9), None)], engine="e", seconds=0.1)
    assert store.done_mutations() == {0}
    assert store.con.execute("SELECT count(*) FROM progress").fetchone()[0] == 1


@pytest.mark.parametrize("stop", [KeyboardInterrupt, Interrupted, MutascopeError, duckdb.Error])
def test_a_transaction_is_all_or_nothing_however_its_block_stops(tmp_path, stop):
    """The one begin/commit/rollback of the package: whatever escapes the block (Ctrl-C, our
    Interrupted, a user error, a DuckDB error) rolls back every write in it and is raised again;
    a block that ends commits, and the connection takes the next transaction."""
    con = duckdb.connect(str(tmp_path / "t.duckdb"))
    try:
        con.execute("CREATE TABLE t (x INTEGER)")
        with transaction(con):
            con.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(stop), transaction(con):
            con.execute("INSERT INTO t VALUES (2)")
            con.execute("CREATE TABLE u (y INTEGER)")
            raise stop("stopped")
        assert con.execute("SELECT x FROM t").fetchall() == [(1,)]
        assert con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'u'").fetchone()[0] == 0
        with transaction(con):
            con.execute("INSERT INTO t VALUES (3)")
    finally:
        con.close()
    con = duckdb.connect(str(tmp_path / "t.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT x FROM t ORDER BY x").fetchall() == [(1,), (3,)]
    finally:
        con.close()


def test_out_of_order_chunks_are_renumbered_to_the_canonical_ids(store):
    store.write_chunk([row(3, "b", (1,), 0)], engine="e", seconds=0.1)
    store.write_chunk([row(1, "b", (2,), 0), row(2, "b", (1,), 0)], engine="e", seconds=0.1)
    assert store.renumber_phenotypes() > 0
    ids = dict(store.con.execute("SELECT mutation_id, phenotype_id FROM outcomes").fetchall())
    assert ids == {1: 1, 2: 2, 3: 2}


def test_fill_chunk_writes_outputs_only_once(store):
    store.write_chunk([row(0, "a", None, 1), row(1, "a", None, 0)], engine="e", seconds=0.1)
    assert store.fill_chunk([row(0, "a", (7, 3), 1)], engine="e", seconds=0.1) == 1
    assert store.fill_chunk([row(0, "a", (7, 3), 1)], engine="e", seconds=0.1) == 0  # idempotent
    assert store.con.execute("SELECT count(*) FROM fills").fetchone()[0] == 2
    filled = store.con.execute("SELECT mutation_id, filled, output_tokens FROM outcomes ORDER BY 1").fetchall()
    assert filled == [(0, True, [7, 3]), (1, False, None)]


def test_reopening_checks_probes_and_mutations(tmp_path, store):
    path = store.path
    store.close()
    changed = [PROBES[0], dataclasses.replace(PROBES[1], wt_tokens=(9, 9, 9), wt_text="other")]
    with pytest.raises(MutascopeError, match="wild-type output of probe 'b' differs"):
        Store.open(path, CONFIG, run=RUN, probes=changed, mutations=mutations())
    with pytest.raises(MutascopeError, match="holds mutations 0-5"):
        Store.open(path, CONFIG, run=RUN, probes=PROBES, mutations=mutations(4))
    Store.open(path, CONFIG, run=RUN, probes=PROBES, mutations=mutations()).close()


def test_a_different_screen_is_refused_and_the_file_left_untouched(store):
    path = store.path
    store.close()
    before = path.read_bytes()
    with pytest.raises(MutascopeError, match=r"holds a different screen \(differs in: dtype\)"):
        check_target(path, {**CONFIG, "dtype": "bfloat16"})
    with pytest.raises(MutascopeError, match=r"differs in: model\.id"):
        check_target(path, {"model": {"id": "other"}})  # a partial configuration, before the model loads
    check_target(path, {"model": {"id": "m"}, "shard": "0/1"})
    assert path.read_bytes() == before


def test_check_target_on_paths_that_cannot_hold_a_screen(tmp_path):
    check_target(tmp_path / "new.duckdb", CONFIG)  # missing: fine
    with pytest.raises(MutascopeError, match="is a directory"):
        check_target(tmp_path, CONFIG)
    other = tmp_path / "other.duckdb"
    write_tables(other, {"t": pd.DataFrame({"x": [1]})})
    with pytest.raises(MutascopeError, match="holds no mutascope screen"):
        check_target(other, CONFIG)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(MutascopeError, match="is not a readable mutascope results file"):
        check_target(text, CONFIG)


def test_results_reads_every_table_in_order(store):
    store.write_chunk([row(0, "a", (7, 8, 9), None), row(0, "b", (5,), 0)], engine="e", seconds=0.1)
    path = store.path
    store.close()
    with open_results(path) as r:
        assert isinstance(r, Results)
        assert r.table_names()[: len(TABLES)] == list(TABLES)
        assert list(r.probes["probe_id"]) == ["a", "b"]
        assert r.config == CONFIG
        sites = r.sites()
        assert list(sites[["mutation_id", "probe_id", "kind", "nsm"]].itertuples(index=False, name=None)) == [
            (0, "a", "max", False),
            (0, "b", "max", True),
        ]
        with pytest.raises(MutascopeError, match="unknown table 'nope'"):
            r.table("nope")
    with pytest.raises(MutascopeError, match="results file not found"):
        open_results(path.with_name("absent.duckdb"))


def test_export_writes_parquet_and_refuses_a_duckdb_file_in_the_way(store, tmp_path):
    path = store.path
    store.close()
    with open_results(path) as r:
        written = r.export(tmp_path / "pq")
        assert sorted(p.name for p in written)[:2] == ["fills.parquet", "mutations.parquet"]
        assert pd.read_parquet(tmp_path / "pq" / "mutations.parquet")["mutation_id"].tolist() == list(range(6))
        compact = r.export(tmp_path / "small", compact=True)
        assert {p.stem for p in compact} == {"runs", "probes", "tiles"}
        blocker = tmp_path / "blocked"
        blocker.mkdir()
        write_tables(blocker / "tiles.parquet", {"t": pd.DataFrame({"x": [1]})})
        with pytest.raises(MutascopeError, match="is a DuckDB file"):
            r.export(blocker, compact=True)


def test_the_mutations_format_round_trips(tmp_path):
    plan = mutations()
    con = duckdb.connect(str(tmp_path / "m.duckdb"))
    con.register("_m", mutation_table(plan))
    con.execute("CREATE TABLE mutations AS SELECT * FROM _m")
    assert read_mutations(con) == {m.mutation_id: m for m in plan}
    assert read_mutations(con, [4, 1]) == {1: plan[1], 4: plan[4]}
    con.close()


def test_write_tables_replaces_and_replace_tables_drops_a_methods_stale_tables(tmp_path):
    path = tmp_path / "t.duckdb"
    write_tables(
        path, {"a": pd.DataFrame({"x": [1, 2]}), "b": pd.DataFrame({"y": ["u"]}), "keep": pd.DataFrame({"z": [0]})}
    )
    write_tables(path, {"a": pd.DataFrame({"x": [3]})})
    replace_tables(path, {"a": pd.DataFrame({"x": [4]})}, owned=("a", "b"))
    con = connect(path, read_only=True, purpose="DuckDB file")
    try:
        names = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        assert names == {"a", "keep"}  # b belonged to the method and this run did not produce it
        assert con.execute("SELECT x FROM a").fetchall() == [(4,)]
    finally:
        con.close()


def test_check_tables_file_and_connect_say_why_in_one_line(tmp_path):
    assert check_tables_file(tmp_path / "new.duckdb") == tmp_path / "new.duckdb"
    with pytest.raises(MutascopeError, match="is a directory; give a DuckDB file name"):
        check_tables_file(tmp_path)
    text = tmp_path / "fig.png"
    text.write_bytes(b"\x89PNG not a database")
    with pytest.raises(MutascopeError, match="exists and is not a DuckDB file"):
        check_tables_file(text)
    with pytest.raises(MutascopeError, match="is also an input"):
        check_tables_file(text, inputs=[text])
    with pytest.raises(MutascopeError, match=r"cannot write --out file .*: .* is a file, not a directory"):
        check_tables_file(text / "x.duckdb")
    with pytest.raises(MutascopeError, match="is a directory, not a DuckDB file"):
        connect(tmp_path, purpose="DuckDB file")


def test_an_export_directory_holds_exactly_one_screens_export(store, tmp_path):
    """A compact export over another screen's export, or a full one over a compact one, used to
    leave the earlier export's tables (analysis_*, predictions, tiles) beside the new ones."""
    import json

    path = store.path
    store.close()
    write_tables(path, {"analysis_bias": pd.DataFrame({"x": [1]})})
    other = tmp_path / "other.duckdb"
    with Store.open(other, dict(CONFIG, plan={"layers": [1]}), run=RUN, probes=PROBES, mutations=mutations(3)):
        pass
    out = tmp_path / "pq"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    (out / "mine.parquet").write_bytes(b"not an export's")
    with open_results(path) as r:
        first = {p.name for p in r.export(out, compact=True)}
    assert "analysis_bias.parquet" in first
    with open_results(other) as r:
        second = {p.name for p in r.export(out, compact=True)}
    assert {p.name for p in out.iterdir()} == second | {"export.json", "notes.txt", "mine.parquet"}
    with open_results(path) as r:
        full = {p.name for p in r.export(out)}
        r.export(out, compact=True)
    assert "tiles.parquet" not in full and "outcomes.parquet" in full
    names = {p.name for p in out.iterdir()}
    assert "outcomes.parquet" not in names and "tiles.parquet" in names  # the full export's tables removed
    assert json.loads((out / "export.json").read_text())["compact"] is True
    # an export from before manifests: its tables are recognised by name
    (out / "export.json").unlink()
    (out / "analysis_stale.parquet").write_bytes(b"x")
    with open_results(other) as r:
        r.export(out, compact=True)
    assert not (out / "analysis_stale.parquet").exists() and (out / "mine.parquet").exists()


def test_the_effect_columns_are_the_measured_rows_fields_and_the_tables():
    """One declaration: MeasuredOutcomeRow's fields beyond OutcomeRow's are EFFECT_COLUMNS, in order,
    and the outcomes table declares each of them (a renamed field would otherwise write NULLs)."""
    import duckdb

    from mutascope.engine import BatchedOutcomeRow
    from mutascope.store import EFFECT_COLUMNS, MeasuredOutcomeRow, OutcomeRow
    from mutascope.store.schema import create

    base = {f.name for f in dataclasses.fields(OutcomeRow)}
    measured = [f.name for f in dataclasses.fields(MeasuredOutcomeRow) if f.name not in base]
    assert measured == list(EFFECT_COLUMNS) and BatchedOutcomeRow is MeasuredOutcomeRow
    con = duckdb.connect()
    create(con)
    columns = {r[0] for r in con.execute("DESCRIBE outcomes").fetchall()}
    assert set(EFFECT_COLUMNS) <= columns


def test_a_compact_export_carries_the_texts_and_the_controls_tiles_and_only_adds_a_table(tmp_path):
    """``outputs``: each filled NSM's text (a calls-only screen's unfilled NSMs have none);
    ``--control``: another screen's tiles as ``control_tiles``, refused for another model or
    probes; ``only``: one table added to an export, the others left as they are."""

    def screen(name, model_hash=RUN.model_hash):
        run = dataclasses.replace(RUN, model_hash=model_hash)
        with Store.open(tmp_path / f"{name}.duckdb", CONFIG, run=run, probes=PROBES, mutations=mutations()) as s:
            s.write_chunk(
                [row(0, "a", (7, 8, 9), None), row(0, "b", (5,), 0), row(1, "a", None, 1)], engine="e", seconds=0
            )
            return s.path

    main, control = screen("main"), screen("control")
    with open_results(main) as r:
        written = r.export(tmp_path / "x", compact=True, control=control)
        assert {p.stem for p in written} == {"runs", "probes", "tiles", "outputs", "control_tiles"}
        texts = pd.read_parquet(tmp_path / "x" / "outputs.parquet")
        assert list(zip(texts["mutation_id"], texts["probe_id"])) == [(0, "b")]  # the filled NSM, not (1, a)
        assert len(pd.read_parquet(tmp_path / "x" / "control_tiles.parquet")) == 3
        (tmp_path / "x" / "mine.txt").write_text("kept")
        r.export(tmp_path / "x", compact=True, only=["outputs"])  # tiles etc. stay
        assert (tmp_path / "x" / "control_tiles.parquet").is_file() and (tmp_path / "x" / "tiles.parquet").is_file()
        with pytest.raises(MutascopeError, match="--only nope"):
            r.export(tmp_path / "x", compact=True, only=["nope"])
        with pytest.raises(MutascopeError, match="add --compact"):
            r.export(tmp_path / "y", control=control)
        with pytest.raises(MutascopeError, match="another model"):
            r.export(tmp_path / "y", compact=True, control=screen("other", model_hash="d" * 16))
