"""Option types the commands share."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

__all__ = ["SEARCH_TEXT", "UTC_DATETIME"]


class _UtcDateTime(click.DateTime):
    """click's date and time formats; a time given without a zone is UTC, as the help says."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        parsed = super().convert(value, param, ctx)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


UTC_DATETIME = _UtcDateTime()


class _SearchText(click.ParamType):
    """Text to search the events for, no longer than the search takes (app/core/events.py)."""

    name = "text"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from app.core.events import SEARCH_MAX

        if len(value) > SEARCH_MAX:
            self.fail(f"at most {SEARCH_MAX} characters to search for", param, ctx)
        return value


SEARCH_TEXT = _SearchText()
