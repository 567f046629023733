"""The package's shape: every import points down the layering of docs/architecture.md, none
forms a circle, every folder and module says what it is for, and the store owns persistence
(SQL runs only in ``mutascope/store/``, transactions only through its helper).

Imports are read with ``ast`` from the source (module level, inside functions and
under ``TYPE_CHECKING`` alike), so a late import cannot hide an upward edge.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from helpers import ROOT

PACKAGE = ROOT / "src" / "mutascope"

# Lowest first; a unit (a top-level module or package of mutascope) may import only units of
# lower layers, and the units of one layer do not import one another.
LAYERS = [
    ("version", "errors", "progress", "interrupts"),
    ("files",),
    ("model",),
    ("testing",),
    ("probes",),
    ("plan",),
    ("store",),
    ("engine",),
    ("backends", "predict"),
    ("screen",),
    ("phenotype",),
    ("analysis",),
    ("report",),
    ("evaluate",),
    ("superweights", "activation", "specialization"),
    ("commands",),
    ("cli",),
    ("__main__",),
]
LAYER = {unit: i for i, units in enumerate(LAYERS) for unit in units}


def _name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(2, len(parts))]


def imports(name: str) -> set[str]:
    """The mutascope modules ``name`` imports, and the packages whose ``__init__`` that runs.

    ``from pkg import sub`` (a submodule) is an edge to ``pkg.sub``; importing
    ``pkg.sub`` also runs ``pkg/__init__``, an edge unless ``name`` is inside ``pkg``.
    """
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    here = name.split(".") if _is_package(name) else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = (
                ".".join(here[: len(here) - node.level + 1] + ([node.module] if node.module else []))
                if node.level
                else (node.module or "")
            )
            subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES]
            targets = subs + ([base] if len(subs) < len(node.names) else [])
        else:
            continue
        for target in targets:
            if target != "mutascope" and not target.startswith("mutascope."):
                continue
            found.add(target)
            found.update(a for a in _ancestors(target) if a not in _ancestors(name) and a != name)
    found.discard(name)
    return found


def unit(name: str) -> str:
    return name.split(".")[1]


GRAPH = {name: imports(name) for name in MODULES}


def test_every_unit_has_a_layer():
    units = {unit(n) for n in MODULES if n != "mutascope"}
    assert units == set(LAYER), f"give every top-level module and package a layer: {units ^ set(LAYER)}"


def test_no_import_points_up_or_sideways():
    bad = []
    for name, targets in GRAPH.items():
        if name == "mutascope":  # the package's lazy facade (PEP 562) sits above everything
            continue
        for target in targets:
            if target == "mutascope":
                bad.append(f"{name} imports the package __init__ (import from the module that defines it)")
            elif unit(target) != unit(name) and LAYER[unit(target)] >= LAYER[unit(name)]:
                bad.append(f"{name} -> {target}")
    assert not bad, "imports against the layering:\n" + "\n".join(sorted(bad))


def test_no_import_circle():
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        path.append(name)
        for target in sorted(GRAPH.get(name, ())):
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target not in state:
                circle = visit(target)
                if circle:
                    return circle
        path.pop()
        state[name] = 2
        return None

    for name in sorted(GRAPH):
        if name not in state:
            circle = visit(name)
            assert circle is None, "import circle: " + " -> ".join(circle)


def test_the_checks_see_late_and_upward_imports():
    """The reader itself: a function-level import is an edge, and a circle or an upward edge is found."""
    assert "mutascope.store" in GRAPH["mutascope.screen.fill"]  # package __init__ runs for store.* imports
    assert "mutascope.model.subject" in GRAPH["mutascope.probes.resolve"]  # imported inside a function
    assert "mutascope.analysis" not in GRAPH["mutascope.analysis.registry"]  # own package: no edge


def test_every_command_is_its_own_module_importing_no_library_at_its_top():
    """``mutascope --help`` imports every command module: their top levels import only typer, rich,
    the standard library and ``commands.common`` (the library is imported inside each command)."""
    from mutascope.commands import COMMANDS

    modules = {n.rsplit(".", 1)[1] for n in MODULES if n.startswith("mutascope.commands.")} - {"common"}
    assert modules == set(COMMANDS)
    for name in [*COMMANDS, "common"]:
        tree = ast.parse(MODULES[f"mutascope.commands.{name}"].read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.level:
                spelled = node.module or ",".join(a.name for a in node.names)
                assert (node.level, spelled) in ((1, "common"), (2, "errors"), (2, "interrupts")), (
                    f"commands/{name}.py: {spelled}"
                )
            elif isinstance(node, ast.Import) or isinstance(node, ast.ImportFrom) and not node.level:
                top = (node.module if isinstance(node, ast.ImportFrom) else node.names[0].name).split(".")[0]
                assert top in {
                    "typer",
                    "rich",
                    "__future__",
                    "math",
                    "pathlib",
                    "typing",
                    "os",
                    "collections",
                    "contextlib",
                    "time",
                }, f"commands/{name}.py imports {top} at its top"
        assert any(isinstance(n, ast.FunctionDef) and n.name == name for n in tree.body) or name == "common"


def test_the_cli_is_registration_and_main_only():
    tree = ast.parse(MODULES["mutascope.cli"].read_text(encoding="utf-8"))
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert functions == {"main", "_click_errors", "_shown_help", "_version", "_options"}  # + --version


# The store owns persistence (docs/architecture.md): every table is declared in store/schema.py
# (or written whole by store.write_tables) and read or written through functions of store/, so
# only store modules run SQL, and only the transaction helper begins, commits or rolls back.
SQL_METHODS = ("execute", "executemany", "sql")
TRANSACTION_METHODS = ("begin", "commit", "rollback")
TRANSACTION_HELPER = "mutascope.store.db"  # store.db.transaction


def method_calls(source: str, methods: tuple[str, ...]) -> list[int]:
    """Lines of ``source`` that call a method named in ``methods`` on anything (``x.execute(...)``):
    read with ``ast``, so a call inside a function, a lambda or a comprehension is seen, and one
    in a string or a comment is not."""
    return sorted(
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in methods
    )


def _calls_outside(allowed, methods: tuple[str, ...]) -> list[str]:
    return [
        f"{MODULES[name].relative_to(ROOT)}:{line}"
        for name in sorted(MODULES)
        if not allowed(name)
        for line in method_calls(MODULES[name].read_text(encoding="utf-8"), methods)
    ]


def test_sql_runs_only_in_the_store():
    bad = _calls_outside(lambda name: name.startswith("mutascope.store."), SQL_METHODS)
    assert not bad, "SQL outside mutascope/store/ (move it into a store module and call its function):\n" + "\n".join(
        bad
    )


def test_transactions_only_through_the_helper():
    bad = _calls_outside(lambda name: name == TRANSACTION_HELPER, TRANSACTION_METHODS)
    assert not bad, "a hand-written begin/commit/rollback (use store.db.transaction):\n" + "\n".join(bad)


def test_the_sql_check_sees_calls_wherever_they_are():
    """The reader itself: a call on any object, nested in a function or a comprehension, is found;
    the word in a string or a comment is not."""
    source = (
        "def f(con):\n"
        "    rows = [con.execute(q).fetchall() for q in QUERIES]  # con.execute( in a comment\n"
        "    text = 'con.execute(x)'\n"
        "    return lambda: duckdb.sql('SELECT 1'), con.cursor().executemany('x', [])\n"
    )
    assert method_calls(source, SQL_METHODS) == [2, 4, 4]
    assert method_calls("with x:\n    con.begin()\n    con.commit()\n", TRANSACTION_METHODS) == [2, 3]


@pytest.mark.parametrize("name", sorted(n for n in MODULES if _is_package(n)))
def test_every_folder_says_what_it_is_for(name):
    doc = ast.get_docstring(ast.parse(MODULES[name].read_text(encoding="utf-8")))
    assert doc and len(doc.split()) >= 8, f"{MODULES[name]} needs a docstring saying what the folder is for"


def test_every_module_has_a_docstring():
    missing = [
        str(p.relative_to(ROOT))
        for n, p in MODULES.items()
        if not ast.get_docstring(ast.parse(p.read_text(encoding="utf-8")))
    ]
    assert not missing, f"modules without a docstring: {missing}"


def test_architecture_page_names_every_layer_in_order():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = text[text.index("## Layers") :]
    section = section[: section.index("\n## ", 4)] if "\n## " in section[4:] else section
    positions = []
    for units in LAYERS:
        for u in units:
            match = re.search(rf"`{re.escape(u)}[`/.]", section)
            assert match, f"docs/architecture.md, Layers, does not name `{u}`"
            positions.append((LAYER[u], match.start()))
    ordered = [layer for layer, _ in sorted(positions, key=lambda p: p[1])]
    assert ordered == sorted(ordered), "docs/architecture.md lists the layers in another order than LAYERS"


def test_no_module_cites_a_methods_file_outside_the_repository():
    cited = [str(p.relative_to(ROOT)) for p in MODULES.values() if "METHODS.md" in p.read_text(encoding="utf-8")]
    assert not cited, f"cite docs/methods.md instead: {cited}"
