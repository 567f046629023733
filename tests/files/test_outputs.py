"""The rule for every file a command writes (``mutascope.files.outputs``): never over a DuckDB file
or an input, atomic replacement otherwise, one-line errors before any work; and reading a user's
text file (``mutascope.files.text``)."""

from __future__ import annotations

import os

import duckdb
import pytest

from mutascope.errors import MutascopeError
from mutascope.files import (
    atomic_file,
    check_output_dir,
    check_output_file,
    is_duckdb_file,
    read_text_file,
    save_figure,
    write_bytes,
    write_text,
)


@pytest.fixture
def database(tmp_path):
    path = tmp_path / "results.duckdb"
    duckdb.connect(str(path)).close()
    return path


def test_a_duckdb_file_is_known_by_its_header_not_its_name(tmp_path, database):
    assert is_duckdb_file(database)
    renamed = tmp_path / "report.html"
    renamed.write_bytes(database.read_bytes())
    assert is_duckdb_file(renamed)
    (tmp_path / "fake.duckdb").write_text("not a database")
    assert not is_duckdb_file(tmp_path / "fake.duckdb")
    assert not is_duckdb_file(tmp_path / "absent") and not is_duckdb_file(tmp_path)


def test_check_output_file_refuses_what_must_not_be_overwritten(tmp_path, database):
    with pytest.raises(MutascopeError, match="report .* is a DuckDB file .*refusing to write over it"):
        check_output_file(database, what="report")
    source = tmp_path / "in.txt"
    source.write_text("x")
    with pytest.raises(MutascopeError, match="is also an input of this command"):
        check_output_file(tmp_path / "." / "in.txt", inputs=[source])
    with pytest.raises(MutascopeError, match="is a directory; give a file name"):
        check_output_file(tmp_path)
    with pytest.raises(MutascopeError, match=r"cannot write output .*: .*in\.txt is a file, not a directory"):
        check_output_file(source / "deeper" / "out.html")
    assert check_output_file(tmp_path / "new" / "out.html") == tmp_path / "new" / "out.html"


def test_check_output_dir(tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("x")
    with pytest.raises(MutascopeError, match="is an existing file, not a directory"):
        check_output_dir(source)
    with pytest.raises(MutascopeError, match="is also an input"):
        check_output_dir(source, inputs=[source])
    with pytest.raises(MutascopeError, match=r"cannot create figures .*: .* is a file"):
        check_output_dir(source / "figs", what="figures")
    assert check_output_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b"


def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_file(target) as f:
            f.write("half of the new")
            raise KeyboardInterrupt
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_a_replacement_is_complete_and_keeps_the_mode(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    os.chmod(target, 0o640)
    write_text(target, "new ✓")
    assert target.read_text(encoding="utf-8") == "new ✓"
    assert target.stat().st_mode & 0o777 == 0o640
    write_bytes(tmp_path / "sub" / "b.bin", b"\x00\x01")  # parents are created
    assert (tmp_path / "sub" / "b.bin").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt", "sub"]


def test_atomic_writes_never_replace_a_duckdb_file(database):
    before = database.read_bytes()
    with pytest.raises(MutascopeError, match="is a DuckDB file"):
        write_text(database, "oops")
    assert database.read_bytes() == before


def test_save_figure_writes_by_the_same_rule(tmp_path, database):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1, 1))
    fig.add_subplot().plot([0, 1], [1, 0])
    path = save_figure(fig, tmp_path / "f.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(MutascopeError, match="is a DuckDB file"):
        save_figure(fig, database)


def test_read_text_file_errors_name_the_file_and_what_it_was(tmp_path):
    with pytest.raises(MutascopeError, match=r"corpus file .*absent\.txt: not found; pass a plain-text file"):
        read_text_file(tmp_path / "absent.txt", "corpus file", "pass a plain-text file")
    binary = tmp_path / "b.txt"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(MutascopeError, match="domain file .*: not valid UTF-8 text"):
        read_text_file(binary, "domain file")
    good = tmp_path / "g.txt"
    good.write_text("héllo", encoding="utf-8")
    assert read_text_file(good, "probe file") == "héllo"
