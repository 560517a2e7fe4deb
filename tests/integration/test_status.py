"""How late the queue runs, on SQLite and PostgreSQL: "oldest pending" is of pending events only; events
waiting for a retry have an age of their own, in `status`, the metrics' gauges and the dashboard alike."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from app.core import queue_store
from app.core.dashboard import read_dashboard
from app.core.db import transaction
from app.core.models import EventStatus, InboxEvent, table
from app.core.status import account_gauges, read_status
from tests.integration.conftest import make_event

_inbox = table(InboxEvent)


def _event(engine, clock, *, age_s: float, status: EventStatus = EventStatus.PENDING) -> None:
    at = clock() - timedelta(seconds=age_s)
    event = make_event(f"r-{uuid.uuid4().hex[:10]}", at=at)
    queue_store.enqueue(engine, "trustoo", "shop-a", [event], now=at, quarantine_id=f"q-{uuid.uuid4().hex}")
    if status is not EventStatus.PENDING:
        with transaction(engine) as session:
            session.execute(update(_inbox).where(_inbox.c.event_id == event.event_id).values(status=status.value))


def test_status_with_only_a_retrying_event_says_nothing_is_pending_and_how_old_the_retry_is(engine, clock):
    _event(engine, clock, age_s=202, status=EventStatus.RETRY)

    report = read_status(engine, now=clock())

    assert report["totals"]["pending"] == 0
    assert report["oldest_pending_age_s"] is None
    assert report["oldest_retry_age_s"] == 202.0


def test_status_oldest_pending_is_the_oldest_pending_event_even_when_a_retry_is_older(engine, clock):
    _event(engine, clock, age_s=600, status=EventStatus.RETRY)
    _event(engine, clock, age_s=30)
    _event(engine, clock, age_s=5)

    report = read_status(engine, now=clock())

    assert (report["oldest_pending_age_s"], report["oldest_retry_age_s"]) == (30.0, 600.0)


def test_account_gauges_keep_pending_and_retrying_apart_and_the_late_queue_sees_both(engine, clock):
    _event(engine, clock, age_s=600, status=EventStatus.RETRY)
    _event(engine, clock, age_s=30)

    [gauges] = account_gauges(engine, now=clock())

    assert (gauges.oldest_pending_age_s, gauges.oldest_retry_age_s) == (30.0, 600.0)
    assert (gauges.oldest_open_age_s, gauges.oldest_open_status) == (600.0, "retry")


def test_account_gauges_of_an_account_with_only_dead_letters_have_no_ages(engine, clock):
    _event(engine, clock, age_s=60, status=EventStatus.DEAD)

    [gauges] = account_gauges(engine, now=clock())

    assert (gauges.oldest_pending_age_s, gauges.oldest_retry_age_s, gauges.oldest_open_age_s) == (None, None, None)
    assert gauges.dead_letters == 1


def test_dashboard_shows_the_oldest_pending_and_the_oldest_retry_apart(engine, clock):
    _event(engine, clock, age_s=600, status=EventStatus.RETRY)
    _event(engine, clock, age_s=30)

    board = read_dashboard(engine, [], now=clock())

    assert board.oldest_pending is not None and board.oldest_retry is not None
    assert _seconds(clock() - _aware(board.oldest_pending)) == 30
    assert _seconds(clock() - _aware(board.oldest_retry)) == 600


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)  # SQLite gives naive UTC times back


def _seconds(delta: timedelta) -> int:
    return round(delta.total_seconds())
