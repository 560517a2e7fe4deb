"""Workers draining one database: every event exactly once, each review's events in order."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta

from sqlalchemy import select

from app import queue
from app.db import make_engine, transaction
from app.models import InboxEvent
from app.worker import Worker
from tests.integration.conftest import make_event


def _events(clock, reviews: int, versions: int):
    return [make_event(f"r{r}", at=clock() + timedelta(seconds=v), version=v)
            for v in range(1, versions + 1) for r in range(reviews)]


def test_worker_drains_until_nothing_is_due(engine, deps, target, clock):
    queue.enqueue(engine, "trustoo", "shop-a", _events(clock, 10, 2), now=clock(), quarantine_id="q")
    assert Worker(deps).drain() == 20
    assert len(target.reviews) == 10 and len(target.calls) == 20


def test_worker_without_a_target_leaves_events_in_the_inbox(engine, deps, clock):
    queue.enqueue(engine, "trustoo", "shop-a", _events(clock, 1, 1), now=clock(), quarantine_id="q")
    assert Worker(replace(deps, targets=())).drain() == 0
    with transaction(engine) as session:
        assert session.execute(select(InboxEvent.status)).scalar_one() == "pending"


def test_stopping_worker_releases_what_it_holds(engine, deps, clock):
    queue.enqueue(engine, "trustoo", "shop-a", _events(clock, 1, 1), now=clock(), quarantine_id="q")
    worker = Worker(deps, worker_id="w-stop")
    queue.claim(engine, worker.id, now=clock(), lease_s=300)
    assert worker.stop(timeout_s=0) == 1
    with transaction(engine) as session:
        assert session.execute(select(InboxEvent.status)).scalar_one() == "retry"


def test_two_concurrent_workers_process_each_event_exactly_once_in_review_order(database_url, engine, deps,
                                                                              target, clock):
    reviews, versions = 100, 5
    queue.enqueue(engine, "trustoo", "shop-a", _events(clock, reviews, versions), now=clock(), quarantine_id="q")
    target.latency_s = 0.001
    applied: dict[str, list[str]] = {}
    lock = threading.Lock()
    original_upsert = target.upsert

    def recording_upsert(review, known=None, **options):
        with lock:
            applied.setdefault(review.source_id, []).append(review.body)
        return original_upsert(review, known, **options)

    target.upsert = recording_upsert
    engines = [make_engine(database_url) for _ in range(2)]
    workers = [Worker(replace(deps, engine=e), worker_id=f"w{i}") for i, e in enumerate(engines)]
    counts = [0, 0]

    def drain(index):
        counts[index] = workers[index].drain()

    threads = [threading.Thread(target=drain, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for e in engines:
        e.dispose()

    assert sum(counts) == reviews * versions
    assert all(counts), f"both workers should have taken work: {counts}"
    with transaction(engine) as session:
        rows = session.execute(select(InboxEvent.status, InboxEvent.attempts, InboxEvent.outcome)).all()
    assert {(status, attempts) for status, attempts, _ in rows} == {("done", 1)}
    assert all(outcome in ("created", "updated") for _, _, outcome in rows)
    assert set(target.writes_per_key().values()) == {versions}
    assert all(bodies == [f"v{v}" for v in range(1, versions + 1)] for bodies in applied.values())


def test_live_worker_keeps_its_lease_while_a_call_is_slow(engine, deps, clock):
    queue.enqueue(engine, "trustoo", "shop-a", _events(clock, 1, 1), now=clock(), quarantine_id="q")
    worker = Worker(deps, worker_id="w-slow", lease_s=30)
    [claimed] = queue.claim(engine, worker.id, now=clock(), lease_s=30)
    worker._in_flight.add(claimed.id)  # as while _process runs
    clock.advance(25)
    assert worker.renew_leases() == 1
    clock.advance(25)  # past the first lease, within the renewed one
    assert queue.claim(engine, "w-other", now=clock(), lease_s=30) == []
