"""The inbox as a work queue: every move of an event from one status to another.

    pending, retry ──claim──▶ processing ──settle──▶ done
                                 │ ├────────────▶ retry ──(next_attempt_at)──▶ processing …
                                 │ ├────────────▶ dead (attempts used up, or a person must fix something)
                                 │ ├────────────▶ quarantined (verified but unusable)
                                 │ ├────────────▶ waiting_for_product ──release_waiting──▶ pending
                                 │ ├────────────▶ pending, due later (deferred: not a failure)
                                 │ └──release───▶ retry, due at once (its worker is stopping)
                                 └─ lease expired (worker died) ──▶ claimable again
    replay:  done, dead, quarantined, waiting_for_product, discarded, retry, ignored ──▶ pending
    discard: any status but processing ──▶ discarded, with the reason in last_error

A row is stored (app/core/queue_store.py) pending, quarantined or ignored; the last two are never
claimed. release_waiting runs when a product mapping is added, and periodically. Replay and discard
are a person's, and leave an event in flight to the worker that holds it. Replaying is always safe:
the event goes through the same pipeline and ledger again, with fresh attempts, so one applied
already changes nothing unless the target drifted meanwhile.

Every function takes the time as `now`; nothing here reads a clock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, Integer, cast, column, func, insert, update, values

from app.core.db import affected, transaction
from app.core.events import EventFilter, in_dead_group
from app.core.models import REPLAYABLE_STATUSES, Attempt, EventStatus, InboxEvent, table
from app.core.queue_claim import claim_statement
from connectors.http import backoff_delay

__all__ = [
    "ClaimedEvent",
    "Settlement",
    "backoff_delay",
    "claim",
    "dead",
    "deferred",
    "discard",
    "discard_matching",
    "done",
    "in_turns",
    "quarantined",
    "release",
    "release_waiting",
    "renew",
    "replay",
    "replay_dead_by_reason",
    "replay_matching",
    "retrying",
    "settle",
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


_CLAIMED_COLUMNS = tuple(name for name in ClaimedEvent.__dataclass_fields__ if name != "claimed_at")

# --- claiming -------------------------------------------------------------------------------


def claim(engine: Engine, worker_id: str, *, now: datetime, lease_s: int, limit: int = 1) -> list[ClaimedEvent]:
    """Take up to `limit` due events under a lease, in one statement, a fair share for each account
    (app/core/queue_claim.py).

    Due means next_attempt_at has come: a new event, a retry after its backoff, or an event whose
    lease ran out because its worker died. The batch comes in turns too (`in_turns`).
    """
    until = now + timedelta(seconds=lease_s)
    statement = claim_statement(engine.dialect.name, limit, _CLAIMED_COLUMNS)
    with transaction(engine) as session:
        rows = session.execute(statement, {"now": now, "until": until, "worker_id": worker_id}).mappings().all()
    return in_turns([ClaimedEvent(**row) for row in rows])


def in_turns(events: Iterable[ClaimedEvent]) -> list[ClaimedEvent]:
    """A batch in the order the worker processes it: every account's first event (oldest first)
    before any account's second, and so on. In order of id, a shop's one live event, the newest of
    the batch, would wait behind all of another shop's backlog events the batch holds (a second, at
    50 ms a target call)."""
    turn: Counter[tuple[str, str]] = Counter()
    ordered = []
    for event in sorted(events, key=lambda event: event.id):
        ordered.append((turn[event.source, event.account], event.id, event))
        turn[event.source, event.account] += 1
    return [event for _, _, event in sorted(ordered, key=lambda entry: entry[:2])]


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
        return affected(session.execute(statement))


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
        return affected(session.execute(statement))


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
        return affected(session.execute(statement))


# --- a person's decisions ---------------------------------------------------------------------

#: Where a replay applies (a pending event is due already; a processing one is its worker's).
_REPLAYABLE = _inbox.c.status.in_(REPLAYABLE_STATUSES)


def replay(engine: Engine, event_pks: Sequence[int], *, now: datetime) -> int:
    """Make the events due again with fresh attempts; events still in flight are left alone."""
    return _back_to_pending(engine, _inbox.c.id.in_(list(event_pks)), _REPLAYABLE, now=now)


def replay_matching(engine: Engine, where: EventFilter, *, now: datetime) -> int:
    return _back_to_pending(engine, *where.where(), _REPLAYABLE, now=now)


def replay_dead_by_reason(engine: Engine, reason: str, *, chars: int = 120, now: datetime) -> int:
    """Replay the dead letters whose error starts with `reason` (a group of events.dead_letter_groups)."""
    return _back_to_pending(engine, in_dead_group(reason, chars=chars), now=now)


def _back_to_pending(engine: Engine, *where, now: datetime) -> int:
    statement = (
        update(_inbox)
        .where(*where)
        .values(status=EventStatus.PENDING.value, attempts=0, next_attempt_at=now, finished_at=None, waiting_on=None)
    )
    with transaction(engine) as session:
        return affected(session.execute(statement))


def discard(engine: Engine, event_pks: Sequence[int], reason: str, *, now: datetime) -> int:
    """Settle events a person decided need nothing more; the reason is kept. Not for events in flight."""
    return _discarded(engine, _inbox.c.id.in_(list(event_pks)), reason=reason, now=now)


def discard_matching(engine: Engine, where: EventFilter, reason: str, *, now: datetime) -> int:
    return _discarded(engine, *where.where(), reason=reason, now=now)


def _discarded(engine: Engine, *where, reason: str, now: datetime) -> int:
    if not reason.strip():
        raise ValueError("a reason is required to discard events")
    values = {"status": EventStatus.DISCARDED.value, "last_error": f"discarded: {reason.strip()}", "finished_at": now}
    statement = update(_inbox).where(*where, _inbox.c.status != EventStatus.PROCESSING.value)
    with transaction(engine) as session:  # settled: due never again, and no lease
        return affected(session.execute(statement.values(**values, next_attempt_at=None, lease_until=None)))
