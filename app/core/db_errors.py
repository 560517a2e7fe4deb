"""A database error in one line that names the cause and the next step, for people: the CLI prints
it instead of a traceback, and `doctor` shows it. The driver's own reason is kept (it never holds the
password); what to do follows it."""

from __future__ import annotations

import re

from sqlalchemy.exc import SQLAlchemyError

__all__ = ["explain"]

_NOT_MIGRATED = re.compile(r"no such (table|column)|relation .* does not exist|column .* does not exist", re.I)
_NO_DATABASE = re.compile(r'database "([^"]+)" does not exist')
_UPGRADE = "run `reviewbridge db upgrade`"


def explain(exc: SQLAlchemyError) -> str:
    reason = _reason(exc)
    if match := _NO_DATABASE.search(reason):
        return f'database "{match[1]}" does not exist: create it (createdb {match[1]}) or correct DATABASE_URL'
    if _NOT_MIGRATED.search(reason):
        return f"the database is not migrated ({reason}): {_UPGRADE}"
    if "connect" in reason.lower() or "unable to open database" in reason:
        return f"cannot reach the database ({reason}): check DATABASE_URL and that the server runs"
    return f"database error ({reason})"


def _reason(exc: SQLAlchemyError) -> str:
    """The driver's message, first line, without SQLAlchemy's wrapping (the SQL, the help link)."""
    original = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(original).splitlines() if line.strip()]
    reason = lines[0] if lines else type(original).__name__
    return reason.removeprefix("(psycopg.OperationalError) ")
