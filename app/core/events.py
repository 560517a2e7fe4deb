"""Events as a person sees them: find them, read one with its attempts and ledger rows, group the
dead letters. Replaying and discarding them are moves in the queue (app/core/queue.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, func, or_, select

from app.core.db import transaction
from app.core.models import Attempt, EventStatus, InboxEvent, LedgerEntry, table
from connectors.base import EventKind
from connectors.commercetools_mapping import review_key

__all__ = [
    "LIST_COLUMNS",
    "SEARCH_MAX",
    "EventFilter",
    "commercetools_key",
    "dead_by_reason",
    "dead_letter_groups",
    "find",
    "get",
    "in_dead_group",
    "iter_matching",
    "resolve_ids",
    "waiting_by_product",
]

_inbox = table(InboxEvent)
_attempts = table(Attempt)
_ledger = table(LedgerEntry)
_NO_ERROR = "(no error recorded)"
#: What a text search looks in: the payload holds the author, the product and the review's text.
_SEARCHED = ("event_id", "subject_id", "topic", "last_error", "payload")
#: The longest text a search takes. SQLite refuses a LIKE pattern over 50,000 bytes ("too complex"),
#: and an id, a topic or a phrase of an error is far shorter.
SEARCH_MAX = 200


@dataclass(frozen=True)
class EventFilter:
    status: str | None = None
    source: str | None = None
    account: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None  # any case, in the ids, the topic, the last error or the payload (author, product)
    error: str | None = None  # any case, in the last error only
    #: The newest event a bulk action counted (app/core/bulk.py): events received after it are left alone.
    up_to_id: int | None = None

    @property
    def empty(self) -> bool:
        """No criterion at all: the filter matches every event."""
        return not self.where()

    def where(self):
        clauses = []
        if self.status:
            clauses.append(_inbox.c.status == self.status)
        if self.source:
            clauses.append(_inbox.c.source == self.source)
        if self.account:
            clauses.append(_inbox.c.account == self.account)
        if self.since:
            clauses.append(_inbox.c.received_at >= self.since)
        if self.until:
            clauses.append(_inbox.c.received_at < self.until)
        if self.text:
            pattern = f"%{self.text}%"
            clauses.append(or_(*(_inbox.c[name].ilike(pattern) for name in _SEARCHED)))
        if self.error:
            clauses.append(_inbox.c.last_error.ilike(f"%{self.error}%"))
        if self.up_to_id is not None:
            clauses.append(_inbox.c.id <= self.up_to_id)
        return clauses


#: What a listed event shows (the export adds to these: app/core/export.py).
LIST_COLUMNS = (
    "id",
    "received_at",
    "source",
    "account",
    "event_id",
    "topic",
    "kind",
    "subject_id",
    "status",
    "outcome",
    "attempts",
    "last_error",
    "next_attempt_at",
    "finished_at",
)


def find(
    engine: Engine, where: EventFilter, *, limit: int = 50, before_id: int | None = None, payload: bool = False
) -> list[dict]:
    """Newest first; page on with `before_id` = the last id of the previous page. With `payload`, each
    row also holds the payload as stored (text)."""
    names = (*LIST_COLUMNS, "payload") if payload else LIST_COLUMNS
    query = select(*(_inbox.c[name] for name in names)).where(*where.where())
    if before_id is not None:
        query = query.where(_inbox.c.id < before_id)
    query = query.order_by(_inbox.c.id.desc()).limit(limit)
    with transaction(engine) as session:
        return [_plain(row) for row in session.execute(query).mappings()]


def iter_matching(engine: Engine, where: EventFilter, *, batch: int = 500) -> Iterator[dict]:
    """Every event the filter matches, with its payload, newest first, `batch` rows per read: each read
    is a short transaction that pages on by id (keyset), so going through the whole inbox holds neither
    every row in memory nor a transaction open meanwhile. Events received after the first read have
    larger ids than it saw, and are not reached."""
    before: int | None = None
    while True:
        rows = find(engine, where, limit=batch, before_id=before, payload=True)
        yield from rows
        if len(rows) < batch:
            return
        before = rows[-1]["id"]


def get(engine: Engine, event_pk: int) -> dict | None:
    """One event with its payload, its attempts and the ledger rows of the review it names."""
    with transaction(engine) as session:
        row = session.execute(select(_inbox).where(_inbox.c.id == event_pk)).mappings().first()
        if row is None:
            return None
        attempts = (
            session.execute(select(_attempts).where(_attempts.c.event_pk == event_pk).order_by(_attempts.c.number))
            .mappings()
            .all()
        )
        ledger = (
            session.execute(
                select(_ledger).where(
                    _ledger.c.source == row["source"],
                    _ledger.c.account == row["account"],
                    _ledger.c.source_review_id == row["subject_id"],
                )
            )
            .mappings()
            .all()
        )
    event = _plain(row)
    event["payload"] = _json_or_text(row["payload"])
    event["attempt_history"] = [_plain(a) for a in attempts]
    event["ledger"] = [_plain(entry) for entry in ledger]
    return event


def resolve_ids(engine: Engine, references: Sequence[str]) -> list[int]:
    """Row ids from what a person types: the number shown in lists, or the platform's event id."""
    numbers = [int(ref) for ref in references if ref.isdigit() and int(ref) < 2**63]
    names = [ref for ref in references if not ref.isdigit()]
    with transaction(engine) as session:
        found = (
            session.execute(select(_inbox.c.id).where(or_(_inbox.c.id.in_(numbers), _inbox.c.event_id.in_(names))))
            .scalars()
            .all()
        )
    return sorted(found)


def dead_by_reason(engine: Engine, source: str | None = None, *, chars: int = 120) -> dict[str, int]:
    """Dead letters counted by the start of their error: what keeps failing, and how often."""
    reason = func.substr(_inbox.c.last_error, 1, chars)
    query = select(reason, func.count()).where(_inbox.c.status == EventStatus.DEAD.value).group_by(reason)
    if source:
        query = query.where(_inbox.c.source == source)
    with transaction(engine) as session:
        return {text or _NO_ERROR: count for text, count in session.execute(query).all()}


def dead_letter_groups(engine: Engine, *, chars: int = 120, rows: int = 500) -> list[dict]:
    """Dead letters by the start of their error, most first: {reason, count, events}, with the newest
    `rows` dead letters shared out among their groups (the counts cover all of them)."""
    groups: dict[str, dict[str, Any]] = {
        reason: {"reason": reason, "count": count, "events": []}
        for reason, count in dead_by_reason(engine, chars=chars).items()
    }
    for event in find(engine, EventFilter(status=EventStatus.DEAD.value), limit=rows):
        reason = (event["last_error"] or "")[:chars] or _NO_ERROR
        if reason in groups:  # (a dead letter that arrived between the two reads waits for the next view)
            groups[reason]["events"].append(event)
    return sorted(groups.values(), key=lambda group: (-group["count"], group["reason"]))


def in_dead_group(reason: str, *, chars: int = 120):
    """Where the dead letters of one dead_by_reason group are: dead, their error starting with `reason`."""
    matches = (
        or_(_inbox.c.last_error.is_(None), _inbox.c.last_error == "")
        if reason == _NO_ERROR
        else func.substr(_inbox.c.last_error, 1, chars) == reason
    )
    return and_(_inbox.c.status == EventStatus.DEAD.value, matches)


def waiting_by_product(engine: Engine) -> list[dict]:
    """Events waiting for a product match, by source product: {source, account, product, count, oldest, error}."""
    query = (
        select(
            _inbox.c.source,
            _inbox.c.account,
            _inbox.c.waiting_on,
            func.count(),
            func.min(_inbox.c.received_at),
            func.max(_inbox.c.last_error),
        )
        .where(_inbox.c.status == EventStatus.WAITING_FOR_PRODUCT.value)
        .group_by(_inbox.c.source, _inbox.c.account, _inbox.c.waiting_on)
        .order_by(func.count().desc(), _inbox.c.source, _inbox.c.account, _inbox.c.waiting_on)
    )
    with transaction(engine) as session:
        rows = session.execute(query).all()
    return [
        {
            "source": source,
            "account": account,
            "product": product or "",
            "count": count,
            "oldest": oldest,
            "error": error,
        }
        for source, account, product, count, oldest, error in rows
    ]


def commercetools_key(event: dict) -> str | None:
    """The commercetools review key of the event's review: the ledger's, else the one a sync would give it."""
    for entry in event.get("ledger", ()):
        if entry["target"] == "commercetools" and entry["target_key"]:
            return entry["target_key"]
    if event["kind"] == EventKind.ORDER.value or not event["subject_id"]:
        return None
    return review_key(event["source"], event["account"], event["subject_id"])


def _plain(row) -> dict:
    return {key: value.isoformat() if isinstance(value, datetime) else value for key, value in dict(row).items()}


def _json_or_text(payload: str):
    try:
        return json.loads(payload)
    except ValueError:
        return payload
