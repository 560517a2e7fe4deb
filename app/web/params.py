"""Reading what a person sends: each reader returns the value or aborts with 400 naming the field.

Shared by the admin JSON API (query strings and JSON bodies, whose declared fields in admin_api_inputs.py
are read by these) and the admin page (query strings and forms), so both say the same thing about the
same mistake.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from flask import Request, abort

from app.core.events import SEARCH_MAX, EventFilter
from app.core.models import EventStatus

__all__ = [
    "FILTER_FIELDS",
    "STATUSES",
    "event_filter",
    "filter_fields",
    "flag",
    "json_object",
    "search",
    "status",
    "text",
    "when",
    "whole",
]

STATUSES = tuple(status.value for status in EventStatus)
#: The fields of the events filter, as the page's form, its links and the admin API name them.
FILTER_FIELDS = ("status", "source", "account", "since", "until", "q")


def whole(args: Mapping[str, Any], name: str, default: int | None, low: int, high: int) -> int | None:
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        abort(400, description=f"{name}: expected a whole number from {low} to {high}")
    return value


def when(values: Mapping[str, Any], name: str) -> datetime | None:
    raw = values.get(name)
    if raw is None or raw == "":
        return None
    try:
        when = datetime.fromisoformat(raw)
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except (TypeError, ValueError, OverflowError):  # not text, not a time, or past the year 9999 in UTC
        abort(400, description=f"{name}: expected an ISO 8601 date or time, e.g. 2026-11-20T09:15:00Z")


def status(raw: Any) -> str | None:
    if raw is None or raw == "":
        return None
    if raw not in STATUSES:  # (a JSON body may hold anything: a list or an object is refused too)
        abort(400, description=f"status: expected one of {', '.join(STATUSES)}")
    return raw


def text(values: Mapping[str, Any], name: str) -> str | None:
    value = values.get(name)
    if value is not None and (not isinstance(value, str) or "\x00" in value):  # PostgreSQL refuses NUL
        abort(400, description=f"{name}: expected text (without NUL characters)")
    return value or None


def search(values: Mapping[str, Any], name: str) -> str | None:
    """Text to search for: as `text`, and at most SEARCH_MAX characters."""
    value = text(values, name)
    if value is not None and len(value) > SEARCH_MAX:
        abort(400, description=f"{name}: at most {SEARCH_MAX} characters to search for")
    return value


def flag(body: Mapping[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        abort(400, description=f"{name}: expected true or false")
    return value


def json_object(request: Request) -> dict:
    """The request's body as a JSON object, whatever its Content-Type (curl users forget it)."""
    try:
        body = request.get_json(force=True, silent=True)
    except RecursionError:
        abort(400, description="body: nested too deeply")
    if not isinstance(body, dict):
        abort(400, description="body: send a JSON object")
    return body


def event_filter(values: Mapping[str, Any]) -> EventFilter:
    """The events filter from a query string, a form or a JSON object (FILTER_FIELDS)."""
    return EventFilter(
        status=status(values.get("status")),
        source=text(values, "source"),
        account=text(values, "account"),
        since=when(values, "since"),
        until=when(values, "until"),
        text=search(values, "q"),
    )


def filter_fields(values: Mapping[str, Any]) -> dict[str, str]:
    """The filter's fields as sent (those not empty): what a link or a form carries on to the next page."""
    return {name: values[name] for name in FILTER_FIELDS if isinstance(values.get(name), str) and values[name]}
