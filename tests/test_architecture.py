"""docs/architecture.md is a tested contract: every module is named in it, and the imports follow its
"may import" column (the archive imports nothing but the errors, the sandbox nothing, convert no I/O)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from migrator.archive import Archive

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "migrator"
DOC = (ROOT / "docs" / "architecture.md").read_text()

# Modules that do I/O: none of them may be imported by the converter (openai only for its types).
IO_MODULES = {
    "asyncio", "http", "io", "os", "pathlib", "shutil", "socket", "sqlite3", "sqlite_utils", "ssl",
    "subprocess", "tempfile", "urllib", "httpx", "httpx2", "requests", "openai",
}  # fmt: skip


def _table(heading: str) -> list[list[str]]:
    """The rows of the first markdown table after a heading, as cells (header and rule left out)."""
    lines = DOC.split(heading, 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


def _names(cell: str) -> list[str]:
    """The backticked names of a cell, with `pkg/{a,b}.py` expanded."""
    out: list[str] = []
    for name in re.findall(r"`([^`]+)`", cell):
        if m := re.fullmatch(r"(.*)\{([^}]*)\}(.*)", name):
            out += [m[1] + part + m[3] for part in m[2].split(",")]
        else:
            out.append(name)
    return out


ROOMS = {row[0].strip("`"): row for row in _table("# Architecture") if row[0].startswith("`")}


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _room_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return "migrator" if parts == ("__init__.py",) else parts[0].removesuffix(".py")


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def test_every_module_under_migrator_is_named_in_the_architecture():
    named: set[str] = set()
    for row in ROOMS.values():
        named.update(_names(row[1]))
    missing = []
    for path in _modules():
        rel = path.relative_to(PACKAGE)
        shown = (
            f"{rel.parent.as_posix()}/" if rel.name == "__init__.py" and rel.parent.parts else rel.as_posix()
        )
        if shown not in named:
            missing.append(shown)
    assert missing == [], f"modules not in docs/architecture.md: {missing}"
    assert set(ROOMS) == {_room_of(p) for p in _modules()}, "a room in the table that has no module, or none"


@pytest.mark.parametrize("room", sorted(ROOMS))
def test_each_room_imports_only_what_the_architecture_allows(room):
    allowed = ROOMS[room][3]
    if allowed == "everything":
        return
    prefixes = [] if allowed == "nothing" else _names(allowed)
    wrong = []
    for path in _modules():
        if _room_of(path) != room:
            continue
        for name in _imports(path):
            parts = name.split(".")
            if parts[0] != "migrator" or len(parts) < 2 or parts[1] == room:
                continue
            inner = ".".join(parts[1:])
            if not any(inner == p or inner.startswith(p + ".") for p in prefixes):
                wrong.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert wrong == [], f"{room} may import {allowed}"


def test_the_archive_imports_nothing_of_the_project_but_the_errors_and_the_redaction_step():
    # `redact` imports nothing either: a server's text is cleaned where it is stored, in one place.
    assert ROOMS["archive"][3] == "`errors`, `redact`"
    assert ROOMS["redact"][3] == "nothing"
    assert ROOMS["sandbox"][3] == "nothing" and ROOMS["convert"][3] == "nothing"


# The converter's one read: the tokenizer's data files shipped in that folder (docs/architecture.md).
_READS_ITS_OWN_DATA = {PACKAGE / "convert" / "encodings" / "__init__.py": {"os", "pathlib"}}


def test_the_converter_does_no_io():
    for path in (PACKAGE / "convert").rglob("*.py"):
        allowed = _READS_ITS_OWN_DATA.get(path, set())
        tree = ast.parse(path.read_text())
        for name in _imports(path):
            top = name.split(".")[0]
            assert top not in IO_MODULES - allowed or name.startswith("openai.types"), (path.name, name)
        calls = [
            n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
        ]
        assert "open" not in calls, path.name


def test_every_table_belongs_to_exactly_one_room_that_names_it(tmp_path):
    owners: dict[str, str] = {"meta": "database.py", "_sqlite_migrations": "database.py"}
    with Archive.create(tmp_path / "a.db") as archive:
        tables = {r[0] for r in archive.db.execute("select name from sqlite_master where type = 'table'")}
        for attribute, file, owns in _table("## The archive's rooms"):
            path = _names(file)[0]
            room = getattr(archive, _names(attribute)[0].split(".")[1])
            assert type(room).__module__ == "migrator." + path.removesuffix(".py").replace("/", "."), (
                attribute
            )
            doc = ast.get_docstring(ast.parse((PACKAGE / path).read_text())) or ""
            for table in _names(owns):
                assert table not in owners, f"{table} owned twice"
                owners[table] = path
                assert f"`{table}`" in doc, f"{path}'s opening comment does not name {table}"
    assert set(owners) == tables
