"""The inbox as a queue, on SQLite and PostgreSQL: dedupe, leases, order, retries, dead letters."""

from __future__ import annotations

from sqlalchemy import func, select

from app.core import queue, queue_store
from app.core.db import transaction
from app.core.models import EventStatus, InboxEvent
from connectors.base import EventKind, PayloadError
from tests.integration.conftest import make_event


def _enqueue(engine, clock, *events):
    return queue_store.enqueue(engine, "trustoo", "shop-a", list(events), now=clock(), quarantine_id="q")


def _settle(engine, settlement: queue.Settlement) -> int:
    with transaction(engine) as session:
        return queue.settle(session, [settlement])


def _statuses(engine) -> dict[str, str]:
    with transaction(engine) as session:
        rows = session.execute(select(InboxEvent.subject_id, InboxEvent.event_id, InboxEvent.status)).all()
    return {event_id: status for _, event_id, status in rows}


def test_redelivered_event_is_stored_once(engine, clock):
    event = make_event("r1", at=clock())
    assert _enqueue(engine, clock, event) == 1
    assert _enqueue(engine, clock, event) == 0
    with transaction(engine) as session:
        assert session.execute(select(func.count()).select_from(InboxEvent)).scalar() == 1


def test_unusable_item_is_stored_quarantined_with_its_reason(engine, clock):
    _enqueue(engine, clock, make_event("r1", at=clock()), PayloadError("list item has no review id", payload={}))
    with transaction(engine) as session:
        row = session.execute(select(InboxEvent).where(InboxEvent.status == "quarantined")).scalar_one()
    assert row.last_error == "list item has no review id"
    assert queue.claim(engine, "w1", now=clock(), lease_s=30, limit=10)[0].subject_id == "r1"


def test_claimed_event_is_invisible_to_other_workers_until_its_lease_expires(engine, clock):
    _enqueue(engine, clock, make_event("r1", at=clock()))
    [claimed] = queue.claim(engine, "w1", now=clock(), lease_s=30)
    assert claimed.attempts == 1
    assert queue.claim(engine, "w2", now=clock(), lease_s=30) == []
    clock.advance(31)
    [reclaimed] = queue.claim(engine, "w2", now=clock(), lease_s=30)
    assert (reclaimed.id, reclaimed.worker_id, reclaimed.attempts) == (claimed.id, "w2", 2)
    # The first worker lost its lease: finishing now changes nothing.
    assert _settle(engine, queue.done(claimed, "created", now=clock())) == 0
    assert _settle(engine, queue.done(reclaimed, "created", now=clock())) == 1


def test_later_event_of_a_review_waits_for_the_earlier_one(engine, clock):
    _enqueue(
        engine,
        clock,
        make_event("r1", at=clock(), version=1),
        make_event("r1", at=clock(), version=2),
        make_event("r2", at=clock(), version=1),
    )
    first = queue.claim(engine, "w1", now=clock(), lease_s=30, limit=10)
    assert [(e.subject_id, e.event_id[-1]) for e in first] == [("r1", "1"), ("r2", "1")]
    _settle(engine, queue.done(first[0], "created", now=clock()))
    [second] = queue.claim(engine, "w1", now=clock(), lease_s=30, limit=10)
    assert (second.subject_id, second.event_id[-1]) == ("r1", "2")


def test_event_waiting_for_retry_holds_back_later_events_of_its_review(engine, clock):
    _enqueue(engine, clock, make_event("r1", at=clock(), version=1), make_event("r1", at=clock(), version=2))
    [first] = queue.claim(engine, "w1", now=clock(), lease_s=30)
    _settle(engine, queue.retrying(first, "HTTP 503", now=clock(), delay_s=10))
    assert queue.claim(engine, "w1", now=clock(), lease_s=30) == []
    clock.advance(10)
    [again] = queue.claim(engine, "w1", now=clock(), lease_s=30)
    assert again.id == first.id and again.attempts == 2


def test_dead_event_no_longer_holds_back_its_review(engine, clock):
    _enqueue(engine, clock, make_event("r1", at=clock(), version=1), make_event("r1", at=clock(), version=2))
    [first] = queue.claim(engine, "w1", now=clock(), lease_s=30)
    _settle(engine, queue.dead(first, "gave up", now=clock()))
    [second] = queue.claim(engine, "w1", now=clock(), lease_s=30)
    assert second.event_id.endswith(":2")


def test_release_hands_events_back_without_counting_the_attempt(engine, clock):
    _enqueue(engine, clock, make_event("r1", at=clock()))
    [claimed] = queue.claim(engine, "w1", now=clock(), lease_s=300)
    assert queue.release(engine, "w1", now=clock()) == 1
    [again] = queue.claim(engine, "w2", now=clock(), lease_s=30)
    assert again.id == claimed.id and again.attempts == 1


def test_rejections_are_counted_per_source_and_reason(engine, clock):
    for _ in range(3):
        queue_store.count_rejection(engine, "trustoo", "signature", now=clock())
    queue_store.count_rejection(engine, "trustoo", "stale", now=clock())
    from app.core.status import read_status

    report = read_status(engine, now=clock())
    assert report["rejected_webhooks"] == {"trustoo:signature": 3, "trustoo:stale": 1}
    assert report["rejected_signatures"] == 4


def test_delete_event_round_trips_through_the_queue(engine, clock):
    _enqueue(engine, clock, make_event("r1", at=clock(), kind=EventKind.DELETE))
    [claimed] = queue.claim(engine, "w1", now=clock(), lease_s=30)
    assert claimed.kind == "delete" and claimed.occurred_at == clock()
    assert _statuses(engine)[claimed.event_id] == EventStatus.PROCESSING.value
