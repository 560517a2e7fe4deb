"""Nothing in connectors/ knows Flask, the database or the app (STYLE.md, rule 8)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CONNECTORS = Path(__file__).resolve().parents[2] / "connectors"
FORBIDDEN = ("flask", "sqlmodel", "sqlalchemy", "alembic", "werkzeug", "app")
SOURCES = sorted(CONNECTORS.rglob("*.py"))


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_connectors_folder_has_modules():
    assert {"base.py", "trustoo.py"} <= {path.name for path in SOURCES}


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: path.relative_to(CONNECTORS).as_posix())
def test_connectors_module_imports_no_framework_database_or_app(path):
    assert _imported_roots(path).isdisjoint(FORBIDDEN)


def test_connectors_import_check_sees_nested_imports(tmp_path):
    # Guard: an import hidden in a function or a try block is still found.
    module = tmp_path / "sneaky.py"
    module.write_text(
        "def f():\n    try:\n        from app.db import x\n    except ImportError:\n        import sqlalchemy.orm\n"
    )

    assert _imported_roots(module) == {"app", "sqlalchemy"}
