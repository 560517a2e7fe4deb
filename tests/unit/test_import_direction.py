"""The house's rooms and the one direction of their imports (docs/design.md):

    app.cli, app.web  ->  app.bootstrap  ->  app.core  ->  connectors;   app.config (+ its helpers) below all

`connectors/` knows no framework, database or app; `app/core/` knows neither Flask nor click;
`app/web/` never imports `app/cli/`; and no module takes part in an import cycle. Imports inside
functions count too (they are how cycles hide); those under `if TYPE_CHECKING:` do not run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted([*ROOT.joinpath("app").rglob("*.py"), *ROOT.joinpath("connectors").rglob("*.py")])
FRAMEWORKS = {"flask", "flask_wtf", "werkzeug", "click"}
DATABASE = {"sqlmodel", "sqlalchemy", "alembic"}

#: The prefixes of our own modules each room may import (its own room included).
ALLOWED = {
    "connectors": ("connectors",),
    "app.config": ("app.config_env", "app.config_instance"),
    "app.config_env": (),  # how app.config reads one variable
    "app.config_instance": ("app.config_env",),  # the embedded mode's kept ADMIN_TOKEN and SECRET_KEY
    "app.core": ("app.config", "app.core", "connectors"),
    "app.bootstrap": ("app.config", "app.core", "connectors"),
    "app.web": ("app.config", "app.bootstrap", "app.core", "app.web", "connectors"),
    "app.cli": ("app.config", "app.bootstrap", "app.core", "app.web", "app.cli", "connectors"),
    "app": (),  # the package itself: its `app:create_app` (the Procfile's) imports app.web lazily
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in SOURCES}


def room(module: str) -> str:
    return max((prefix for prefix in ALLOWED if module == prefix or module.startswith(prefix + ".")), key=len)


def _runtime_nodes(tree: ast.AST):
    """Every node, except what sits under `if TYPE_CHECKING:`."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            yield from (inner for child in node.orelse for inner in [child, *_runtime_nodes(child)])
            continue
        yield node
        yield from _runtime_nodes(node)


def imports_of(path: Path, package: str) -> set[str]:
    """The modules a file imports; `from pkg import name` names the submodule when there is one."""
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return found


def _package(module: str) -> str:
    return module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]


GRAPH = {module: imports_of(path, _package(module)) for module, path in MODULES.items()}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_imports_only_its_own_room_and_the_rooms_below(module):
    ours = {name for name in GRAPH[module] if name.split(".")[0] in ("app", "connectors")}
    allowed = ALLOWED[room(module)]
    wrong = sorted(name for name in ours if not any(name == p or name.startswith(p + ".") for p in allowed))
    assert not wrong, f"{module} ({room(module)}) imports {wrong}"


_PURE = ("connectors", "app.core", "app.config", "app.config_instance")


@pytest.mark.parametrize("module", sorted(m for m in MODULES if room(m) in _PURE))
def test_core_and_connectors_import_no_web_framework_or_cli(module):
    roots = {name.split(".")[0] for name in GRAPH[module]}
    assert roots.isdisjoint(FRAMEWORKS), f"{module} imports {sorted(roots & FRAMEWORKS)}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if room(m) == "connectors"))
def test_connectors_import_no_database(module):
    roots = {name.split(".")[0] for name in GRAPH[module]}
    assert roots.isdisjoint(DATABASE), f"{module} imports {sorted(roots & DATABASE)}"


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in (n for n in graph[node] if n in graph):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph[node]:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_no_module_takes_part_in_an_import_cycle():
    assert cycles(GRAPH) == []


def test_import_check_sees_nested_and_relative_imports(tmp_path):
    # Guard: an import hidden in a function or a try block is still found; TYPE_CHECKING's is not.
    module = tmp_path / "sneaky.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import flask\n"
        "def f():\n    try:\n        from app.web import x\n    except ImportError:\n        import sqlalchemy.orm\n"
        "from . import queue\n"
    )

    assert imports_of(module, "app.core") == {"typing", "app.web", "sqlalchemy.orm", "app.core.queue"}


def test_cycle_check_finds_a_cycle_and_only_the_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert cycles(graph) == [["a", "b", "c"], ["e"]]
