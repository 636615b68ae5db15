"""The floors of the project: loaders -> graph -> app, data flowing one way, DuckDB opened once.

These read the source, not behaviour: a new module that reaches up a floor, or opens DuckDB
with its own configuration, fails here before it can drift.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.append(node.module or "")
    return names


def test_graph_imports_nothing_from_loaders_or_app() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in sorted((ROOT / "graph").rglob("*.py"))
        for name in _imports(path)
        if name.split(".")[0] in ("loaders", "app")
    ]
    assert offenders == []


def test_loaders_import_nothing_from_app() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in sorted((ROOT / "loaders").rglob("*.py"))
        for name in _imports(path)
        if name.split(".")[0] == "app"
    ]
    assert offenders == []


def test_duckdb_is_opened_in_one_module() -> None:
    opened = sorted(
        str(path.relative_to(ROOT))
        for folder in ("app", "graph", "loaders", "bench")
        for path in (ROOT / folder).rglob("*.py")
        if re.search(r"\bduckdb\.connect\(", path.read_text(encoding="utf-8"))
    )
    assert opened == ["graph/staging/db.py"]
