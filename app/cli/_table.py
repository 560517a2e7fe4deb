"""How every list command prints: aligned columns under a header row, or the rows as JSON.

A cell shows what a platform sent (ids, errors) with its control characters escaped
(app/core/printable.py); JSON escapes them by itself."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import click

from app.core.printable import printable

__all__ = ["aligned", "echo_rows"]


def echo_rows(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]], *, as_json: bool) -> None:
    """`columns` is (header, key) pairs; JSON keeps every key of every row. An empty list says "none"."""
    if as_json:
        click.echo(json.dumps(list(rows), indent=2, default=str))
        return
    if not rows:
        click.echo("none")
        return
    table = [[header for header, _ in columns]]
    table += [[_cell(row.get(key)) for _, key in columns] for row in rows]
    for line in aligned(table):
        click.echo(line)


def aligned(table: Sequence[Sequence[str]]) -> list[str]:
    """The rows of cells as lines, each column as wide as its widest cell."""
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in table]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return printable(str(value), tab=False)
