"""Storing into the inbox: a delivery's items as rows, written with duplicates left to the unique
constraint; and the counter of rejected deliveries.

A row starts pending, quarantined (verified but unusable, with the reason) or ignored (an event type
we do not act on); app/core/queue.py moves it on from there.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, String

from app.core.db import insert_for, transaction, writing
from app.core.models import EventStatus, InboxEvent, WebhookRejection, table
from connectors.base import Event, EventKind, PayloadError

__all__ = ["count_rejection", "enqueue", "inbox_rows", "store"]

_inbox = table(InboxEvent)
#: The inbox's text columns an event fills in, and how long their values may be (None: unbounded).
_LENGTHS = {
    name: column.type.length if isinstance(column.type, String) else None
    for name in ("account", "event_id", "subject_id", "topic", "delivery_id")
    for column in [_inbox.c[name]]
}


def enqueue(
    engine: Engine,
    source: str,
    account: str,
    items: Sequence[Event | PayloadError],
    *,
    now: datetime,
    quarantine_id: str,
) -> int:
    """Store a verified delivery, one row per item, in one transaction; return how many were new.

    Duplicates are left to the unique constraint (ON CONFLICT DO NOTHING), never looked up first.
    An unusable item is stored as quarantined under an id derived from the delivery.
    """
    return store(engine, [inbox_rows(source, account, items, now=now, quarantine_id=quarantine_id)])[0]


def inbox_rows(
    source: str, account: str, items: Sequence[Event | PayloadError], *, now: datetime, quarantine_id: str
) -> list[dict]:
    """The inbox rows of one delivery (`store` writes them). An account that cannot be stored as it
    is (too long, a NUL) quarantines every item, kept under a storable form of it."""
    problem = _unstorable("account", account)
    if problem:
        items = [
            item if isinstance(item, PayloadError) else PayloadError(problem, payload=item.payload) for item in items
        ]
        account = _storable(account, _LENGTHS["account"])
    return [_row(item, source, account, now, f"{quarantine_id}:{i}") for i, item in enumerate(items)]


def _storable(text: str, limit: int | None = None) -> str:
    """`text` as a column can hold it, for a quarantine record: NUL (which PostgreSQL refuses) and
    lone surrogates (which no database encodes) written as escapes, and, past `limit`, cut short and
    ended with a digest of the whole, so that different values stay apart."""
    escaped = text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    if limit is not None and len(escaped) > limit:
        digest = hashlib.sha256(escaped.encode()).hexdigest()[:12]
        escaped = f"{escaped[: limit - 13]}…{digest}"
    return escaped


def store(engine: Engine, deliveries: Sequence[list[dict]]) -> list[int]:
    """Write the rows of several deliveries in one transaction; return how many of each were new.
    A row that two of them share counts for the first."""
    flat = [row for delivery in deliveries for row in delivery]
    if not flat:
        return [0 for _ in deliveries]
    with writing(engine) as connection:
        # RETURNING says what was inserted; rowcount is unreliable for multi-row INSERTs. The rows go
        # as parameters of one cached statement, not as literal VALUES compiled anew for each delivery.
        # On PostgreSQL the inbox's trigger notifies the listening workers (app/core/inbox_signal.py).
        new = {tuple(row) for row in connection.execute(_insert_ignoring_duplicates(engine), flat)}
    counts = []
    for delivery in deliveries:
        keys = {(row["source"], row["account"], row["event_id"]) for row in delivery}
        counts.append(len(keys & new))
        new -= keys
    return counts


def _row(item: Event | PayloadError, source: str, account: str, now: datetime, quarantine_id: str) -> dict:
    if isinstance(item, Event):
        problems = (
            _unstorable(name, getattr(item, name)) for name in ("event_id", "subject_id", "topic", "delivery_id")
        )
        if problem := next((p for p in problems if p), None):
            item = PayloadError(problem, payload=item.payload)  # kept, with the reason, not refused by the database
    # A multi-row INSERT needs the same keys in every row.
    common = {
        "source": source,
        "account": account,
        "attempts": 0,
        "received_at": now,
        "next_attempt_at": now,
        "delivery_id": None,
        "sequence": None,
        "last_error": None,
        "finished_at": None,
    }
    if isinstance(item, PayloadError):
        return common | {
            "event_id": quarantine_id,
            "topic": "unknown",
            "kind": "unknown",
            "subject_id": quarantine_id,
            "occurred_at": now,
            "payload": _json_text(item.payload, default=str),
            "status": EventStatus.QUARANTINED.value,
            "last_error": _storable(item.reason),
            "finished_at": now,
            "next_attempt_at": None,
        }
    row = common | {
        "event_id": item.event_id,
        "topic": item.topic,
        "kind": item.kind.value,
        "subject_id": item.subject_id,
        "delivery_id": item.delivery_id,
        "occurred_at": item.occurred_at,
        "sequence": item.sequence,
        "payload": _json_text(item.payload, separators=(",", ":")),
        "status": EventStatus.PENDING.value,
    }
    if item.kind is EventKind.IGNORED:
        row |= {"status": EventStatus.IGNORED.value, "next_attempt_at": None, "finished_at": now}
    return row


def _unstorable(name: str, value: str | None) -> str | None:
    """Why a verified identifier cannot be stored as it is, if it cannot: too long for its column,
    holding a NUL character (which PostgreSQL refuses in text) or a lone surrogate (no encoding)."""
    if value is None:
        return None
    if "\x00" in value:
        return f"{name} holds a NUL character"
    if not _encodable(value):
        return f"{name} is not valid Unicode (a lone surrogate)"
    limit = _LENGTHS[name]
    if limit is not None and len(value) > limit:
        return f"{name} is longer than {limit} characters"
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _json_text(value: Any, **options: Any) -> str:
    """A payload as stored text: readable UTF-8, or all-ASCII escapes when it holds a lone surrogate.
    (JSON writes a NUL as an escape either way.)"""
    text = json.dumps(value, ensure_ascii=False, **options)
    return text if _encodable(text) else json.dumps(value, ensure_ascii=True, **options)


@functools.lru_cache(maxsize=16)
def _insert_ignoring_duplicates(engine: Engine):
    return (
        insert_for(engine, _inbox)
        .on_conflict_do_nothing(index_elements=["source", "account", "event_id"])
        .returning(_inbox.c.source, _inbox.c.account, _inbox.c.event_id)
    )


def count_rejection(engine: Engine, source: str, reason: str, *, now: datetime) -> None:
    """Add one to the rejected-delivery counter of (source, reason)."""
    rejections = table(WebhookRejection)
    statement = insert_for(engine, rejections).values(source=source, reason=reason, count=1, last_at=now)
    statement = statement.on_conflict_do_update(
        index_elements=["source", "reason"],
        set_={"count": rejections.c.count + 1, "last_at": statement.excluded.last_at},
    )
    with transaction(engine) as session:
        session.execute(statement)
