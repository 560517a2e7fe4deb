"""Option types the commands share."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

__all__ = ["UTC_DATETIME"]


class _UtcDateTime(click.DateTime):
    """click's date and time formats; a time given without a zone is UTC, as the help says."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        parsed = super().convert(value, param, ctx)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


UTC_DATETIME = _UtcDateTime()
