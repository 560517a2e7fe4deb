"""The inbox as a work queue: enqueue, claim under a lease, finish, retry, give up.

    pending ──claim──▶ processing ──▶ done
                           │ ├──────▶ retry ──(next_attempt_at)──▶ processing …
                           │ └──────▶ dead (attempts used up, or a person must fix something)
                           └─ lease expired (worker died) ──▶ claimable again
    quarantined: verified but unusable, never claimed; a person replays or discards it
    ignored: an event type we do not act on, stored as it came and never claimed
    waiting_for_product: no product match yet; a new product mapping (or the periodic recheck)
                         makes it pending again

Every function takes the time as `now`; nothing here reads a clock.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    Engine,
    Integer,
    bindparam,
    cast,
    column,
    exists,
    func,
    insert,
    literal_column,
    select,
    update,
    values,
)

from app.core.db import insert_for, transaction
from app.core.models import OPEN_STATUSES, Attempt, EventStatus, InboxEvent, WebhookRejection, table
from connectors.base import Event, EventKind, PayloadError
from connectors.http import backoff_delay

__all__ = [
    "ClaimedEvent",
    "Settlement",
    "backoff_delay",
    "claim",
    "count_rejection",
    "dead",
    "deferred",
    "done",
    "enqueue",
    "inbox_rows",
    "quarantined",
    "release",
    "release_waiting",
    "renew",
    "retrying",
    "settle",
    "store",
    "waiting",
]

_inbox = table(InboxEvent)
_attempts = table(Attempt)


@dataclass(frozen=True)
class ClaimedEvent:
    """A snapshot of an inbox row taken when a worker claimed it."""

    id: int
    source: str
    account: str
    event_id: str
    topic: str
    kind: str
    subject_id: str
    occurred_at: datetime
    sequence: int | None
    payload: str
    attempts: int
    worker_id: str
    #: When work on this attempt began (set by the worker once the claim is committed); settling
    #: records the attempt from then to its own time.
    claimed_at: datetime | None = None


_CLAIMED_COLUMNS = [name for name in ClaimedEvent.__dataclass_fields__ if name != "claimed_at"]

# --- intake ---------------------------------------------------------------------------------


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
    """The inbox rows of one delivery (`store` writes them)."""
    return [_row(item, source, account, now, f"{quarantine_id}:{i}") for i, item in enumerate(items)]


def store(engine: Engine, deliveries: Sequence[list[dict]]) -> list[int]:
    """Write the rows of several deliveries in one transaction; return how many of each were new.
    A row that two of them share counts for the first."""
    flat = [row for delivery in deliveries for row in delivery]
    if not flat:
        return [0 for _ in deliveries]
    with transaction(engine) as session:
        # RETURNING says what was inserted; rowcount is unreliable for multi-row INSERTs. The rows go
        # as parameters of one cached statement, not as literal VALUES compiled anew for each delivery.
        new = {tuple(row) for row in session.execute(_insert_ignoring_duplicates(engine), flat)}
    counts = []
    for delivery in deliveries:
        keys = {(row["source"], row["account"], row["event_id"]) for row in delivery}
        counts.append(len(keys & new))
        new -= keys
    return counts


def _row(item: Event | PayloadError, source: str, account: str, now: datetime, quarantine_id: str) -> dict:
    if isinstance(item, Event) and (problem := _unstorable(item)):
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
            "payload": json.dumps(item.payload, ensure_ascii=False, default=str),
            "status": EventStatus.QUARANTINED.value,
            "last_error": item.reason,
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
        "payload": json.dumps(item.payload, ensure_ascii=False, separators=(",", ":")),
        "status": EventStatus.PENDING.value,
    }
    if item.kind is EventKind.IGNORED:
        row |= {"status": EventStatus.IGNORED.value, "next_attempt_at": None, "finished_at": now}
    return row


def _unstorable(event: Event) -> str | None:
    """Why a verified event's identifiers cannot be stored as they are, if they cannot: too long for
    their column, or holding a NUL character, which PostgreSQL refuses in text."""
    for name in ("event_id", "subject_id", "topic", "delivery_id"):
        value = getattr(event, name)
        if value is None:
            continue
        if "\x00" in value:
            return f"{name} holds a NUL character"
        if len(value) > _inbox.c[name].type.length:
            return f"{name} is longer than {_inbox.c[name].type.length} characters"
    return None


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


# --- claiming -------------------------------------------------------------------------------


def claim(engine: Engine, worker_id: str, *, now: datetime, lease_s: int, limit: int = 1) -> list[ClaimedEvent]:
    """Take up to `limit` due events under a lease, in one statement.

    Due means next_attempt_at has come: a new event, a retry after its backoff, or an event whose
    lease ran out because its worker died. Walking the (next_attempt_at, id) index in order, the
    first due rows are found without sorting the queue. An event waits while an earlier event of the
    same review is still open, so one review's events never run at once and apply in arrival order.
    On PostgreSQL the candidates are locked with SKIP LOCKED, so concurrent workers pass each other
    by instead of queueing; SQLite serialises writers with its own lock (BEGIN IMMEDIATE).
    """
    until = now + timedelta(seconds=lease_s)
    with transaction(engine) as session:
        rows = (
            session.execute(
                _claim_statement(engine.dialect.name, limit), {"now": now, "until": until, "worker_id": worker_id}
            )
            .mappings()
            .all()
        )
    return sorted((ClaimedEvent(**row) for row in rows), key=lambda event: event.id)


@functools.lru_cache(maxsize=128)
def _claim_statement(dialect: str, limit: int):
    """Built once per dialect and batch size, with the time and worker as parameters: a busy worker
    claims hundreds of times a second, and building the statement cost more than running it."""
    when = _inbox.c.next_attempt_at.type  # the column's own type, so SQLite stores times its way
    earlier = _inbox.alias("earlier")
    earlier_open = exists().where(
        earlier.c.source == _inbox.c.source,
        earlier.c.account == _inbox.c.account,
        earlier.c.subject_id == _inbox.c.subject_id,
        earlier.c.id < _inbox.c.id,
        # Literal statuses, as the partial index ix_inbox_open_subject names them, so it is used.
        earlier.c.status.in_([literal_column(f"'{status}'") for status in OPEN_STATUSES]),
    )
    candidates = (
        select(_inbox.c.id)
        .where(_inbox.c.next_attempt_at <= bindparam("now", type_=when), ~earlier_open)
        .order_by(_inbox.c.next_attempt_at, _inbox.c.id)
        .limit(limit)
    )
    if dialect == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True, of=_inbox)
    return (
        update(_inbox)
        .where(_inbox.c.id.in_(candidates.scalar_subquery()))
        .values(
            status=EventStatus.PROCESSING.value,
            lease_until=bindparam("until", type_=when),
            next_attempt_at=bindparam("until", type_=when),
            worker_id=bindparam("worker_id"),
            attempts=_inbox.c.attempts + 1,
        )
        .returning(*(_inbox.c[name] for name in _CLAIMED_COLUMNS))
    )


# --- finishing ------------------------------------------------------------------------------
# How an attempt ended is first a Settlement in memory; `settle` writes a batch of them in the
# caller's transaction (the worker commits a batch's settlements with the ledger rows its target
# calls produced). Each guards on (id, worker_id, processing): a worker whose lease was taken over
# changes nothing.


@dataclass(frozen=True)
class Settlement:
    """One attempt's end: the status the event moves to, and the columns that go with it."""

    event: ClaimedEvent
    status: EventStatus
    at: datetime
    error: str | None = None  # last_error: the reason, or None when the attempt ended well
    outcome: str | None = None  # None keeps the event's previous outcome
    finished_at: datetime | None = None  # None keeps the event's previous finishing time
    next_attempt_at: datetime | None = None  # due again then; None: not due
    waiting_on: str | None = None  # the source product a waiting event waits for
    give_back: bool = False  # the attempt does not count (waiting or deferred is not failing)


def done(event: ClaimedEvent, outcome: str, *, now: datetime) -> Settlement:
    return Settlement(event, EventStatus.DONE, now, outcome=outcome, finished_at=now)


def retrying(event: ClaimedEvent, error: str, *, now: datetime, delay_s: float) -> Settlement:
    return Settlement(event, EventStatus.RETRY, now, error=error, next_attempt_at=now + timedelta(seconds=delay_s))


def dead(event: ClaimedEvent, error: str, *, now: datetime) -> Settlement:
    return Settlement(event, EventStatus.DEAD, now, error=error, finished_at=now)


def waiting(event: ClaimedEvent, source_product_id: str, reason: str, *, now: datetime) -> Settlement:
    # Waiting is not failing: the attempt is given back, so rechecks never make an event dead.
    return Settlement(
        event, EventStatus.WAITING_FOR_PRODUCT, now, error=reason, waiting_on=source_product_id, give_back=True
    )


def deferred(event: ClaimedEvent, until: datetime, reason: str, *, now: datetime) -> Settlement:
    """Not yet, and not a failure: due again at `until`, the attempt given back."""
    return Settlement(event, EventStatus.PENDING, now, outcome=reason, next_attempt_at=until, give_back=True)


def quarantined(event: ClaimedEvent, reason: str, *, now: datetime) -> Settlement:
    return Settlement(event, EventStatus.QUARANTINED, now, error=reason, finished_at=now)


def settle(session, settlements: Sequence[Settlement]) -> int:
    """Move each event on and record how its attempt ended, in the caller's transaction; return
    how many were still this worker's to settle. One UPDATE … FROM (VALUES …) serves the batch."""
    if not settlements:
        return 0
    by_id = {item.event.id: item for item in settlements}
    given = (
        values(*_SETTLEMENT_COLUMNS, name="settled")
        .data(
            [
                (
                    item.event.id,
                    item.event.worker_id,
                    item.status.value,
                    item.error,
                    item.outcome,
                    item.finished_at,
                    item.next_attempt_at,
                    item.waiting_on,
                    int(item.give_back),
                )
                for item in settlements
            ]
        )
        .cte("settled")
    )
    if session.get_bind().dialect.name == "postgresql":

        def typed(name: str, like):  # a column of NULLs in VALUES is text to PostgreSQL
            return cast(given.c[name], like.type)
    else:

        def typed(name: str, like):  # SQLite has no such types, and CAST would turn times into numbers
            return given.c[name]

    statement = (
        update(_inbox)
        .where(
            _inbox.c.id == given.c.id,
            _inbox.c.worker_id == given.c.worker_id,
            _inbox.c.status == EventStatus.PROCESSING.value,
        )
        .values(
            status=given.c.status,
            lease_until=None,
            next_attempt_at=typed("next_attempt_at", _inbox.c.next_attempt_at),
            last_error=typed("error", _inbox.c.last_error),
            outcome=func.coalesce(typed("outcome", _inbox.c.outcome), _inbox.c.outcome),
            finished_at=func.coalesce(typed("finished_at", _inbox.c.finished_at), _inbox.c.finished_at),
            waiting_on=typed("waiting_on", _inbox.c.waiting_on),
            attempts=_inbox.c.attempts - given.c.give_back,
        )
        .returning(_inbox.c.id)
    )
    settled = [by_id[pk] for pk in sorted(session.execute(statement).scalars())]
    attempts = [
        {
            "event_pk": item.event.id,
            "number": item.event.attempts,
            "worker_id": item.event.worker_id,
            "started_at": item.event.claimed_at or item.at,
            "finished_at": item.at,
            "status": item.status.value,
            "error": item.error,
        }
        for item in settled
    ]
    if attempts:
        session.execute(insert(_attempts), attempts)
    return len(attempts)


_SETTLEMENT_COLUMNS = (  # in the order settle() writes each row
    column("id", _inbox.c.id.type),
    column("worker_id", _inbox.c.worker_id.type),
    column("status", _inbox.c.status.type),
    column("error", _inbox.c.last_error.type),
    column("outcome", _inbox.c.outcome.type),
    column("finished_at", _inbox.c.finished_at.type),
    column("next_attempt_at", _inbox.c.next_attempt_at.type),
    column("waiting_on", _inbox.c.waiting_on.type),
    column("give_back", Integer()),
)


def release_waiting(
    engine: Engine,
    *,
    now: datetime,
    source: str | None = None,
    account: str | None = None,
    product_ids: Iterable[str] | None = None,
) -> int:
    """Make waiting_for_product events due again (all, or those of the given products)."""
    statement = update(_inbox).where(_inbox.c.status == EventStatus.WAITING_FOR_PRODUCT.value)
    if source is not None:
        statement = statement.where(_inbox.c.source == source)
    if account is not None:
        statement = statement.where(_inbox.c.account == account)
    if product_ids is not None:
        statement = statement.where(_inbox.c.waiting_on.in_(list(product_ids)))
    statement = statement.values(status=EventStatus.PENDING.value, next_attempt_at=now, waiting_on=None)
    with transaction(engine) as session:
        return session.execute(statement).rowcount or 0


def renew(engine: Engine, worker_id: str, event_ids: Iterable[int], *, now: datetime, lease_s: int) -> int:
    """Extend the leases a live worker holds, so a slow platform call is not mistaken for a dead worker."""
    ids = list(event_ids)
    if not ids:
        return 0
    until = now + timedelta(seconds=lease_s)
    statement = (
        update(_inbox)
        .where(
            _inbox.c.id.in_(ids),
            _inbox.c.worker_id == worker_id,
            _inbox.c.status == EventStatus.PROCESSING.value,
        )
        .values(lease_until=until, next_attempt_at=until)
    )
    with transaction(engine) as session:
        return session.execute(statement).rowcount or 0


def release(engine: Engine, worker_id: str, *, now: datetime, event_ids: Iterable[int] | None = None) -> int:
    """Hand back what a stopping worker still holds: due at once, the attempt not counted."""
    statement = update(_inbox).where(_inbox.c.worker_id == worker_id, _inbox.c.status == EventStatus.PROCESSING.value)
    if event_ids is not None:
        statement = statement.where(_inbox.c.id.in_(list(event_ids)))
    statement = statement.values(
        status=EventStatus.RETRY.value,
        lease_until=None,
        next_attempt_at=now,
        attempts=func.max(_inbox.c.attempts - 1, 0)
        if engine.dialect.name == "sqlite"
        else func.greatest(_inbox.c.attempts - 1, 0),
    )
    with transaction(engine) as session:
        return session.execute(statement).rowcount or 0
