"""How every list command prints: aligned columns under a header row, or the rows as JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import click

__all__ = ["echo_rows"]


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
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    for line in table:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
