"""What every table module shares: the typed Table of a model, and the clock's "now" in UTC."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Table
from sqlmodel import SQLModel

__all__ = ["table", "utcnow"]


def table(model: type[SQLModel]) -> Table:
    """A model's Table, typed: SQLModel creates `__table__` at run time, out of the type checker's sight."""
    return SQLModel.metadata.tables[str(model.__tablename__)]


def utcnow() -> datetime:
    return datetime.now(UTC)
