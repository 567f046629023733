"""Files at the edges of every command: the text files a user gives, the files a command writes.

* :mod:`.text`: reading a user's text file (probes, concepts, corpora,
  domains) with one-line errors that name it;
* :mod:`.outputs`: the rule for every file a command writes: never over a
  DuckDB file or an input, atomic replacement otherwise, checked before slow
  work.

The lowest layer above :mod:`mutascope.errors`: it knows nothing of models,
screens or tables (DuckDB ``--out`` files are checked by
:func:`mutascope.store.check_tables_file`).
"""

from .outputs import (
    atomic_file,
    check_output_dir,
    check_output_file,
    is_duckdb_file,
    save_figure,
    write_bytes,
    write_text,
)
from .text import read_text_file

__all__ = [
    "atomic_file",
    "check_output_dir",
    "check_output_file",
    "is_duckdb_file",
    "read_text_file",
    "save_figure",
    "write_bytes",
    "write_text",
]
