"""Workers draining one database: every event exactly once, each review's events in order."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta

from sqlalchemy import func, select

from app.core import queue, queue_store
from app.core.db import make_engine, transaction
from app.core.models import Attempt, InboxEvent, LedgerEntry
from app.core.pipeline import Batch
from app.core.worker import Worker, _next_batch_size
from tests.integration.conftest import make_event


def _events(clock, reviews: int, versions: int):
    return [
        make_event(f"r{r}", at=clock() + timedelta(seconds=v), version=v)
        for v in range(1, versions + 1)
        for r in range(reviews)
    ]


def test_worker_drains_until_nothing_is_due(engine, deps, target, clock):
    queue_store.enqueue(engine, "trustoo", "shop-a", _events(clock, 10, 2), now=clock(), quarantine_id="q")
    assert Worker(deps).drain() == 20
    assert len(target.reviews) == 10 and len(target.calls) == 20


def test_worker_without_a_target_leaves_events_in_the_inbox(engine, deps, clock):
    queue_store.enqueue(engine, "trustoo", "shop-a", _events(clock, 1, 1), now=clock(), quarantine_id="q")
    assert Worker(replace(deps, targets=())).drain() == 0
    with transaction(engine) as session:
        assert session.execute(select(InboxEvent.status)).scalar_one() == "pending"


def test_stopping_worker_releases_what_it_holds(engine, deps, clock):
    queue_store.enqueue(engine, "trustoo", "shop-a", _events(clock, 1, 1), now=clock(), quarantine_id="q")
    worker = Worker(deps, worker_id="w-stop")
    queue.claim(engine, worker.id, now=clock(), lease_s=300)
    assert worker.stop(timeout_s=0) == 1
    with transaction(engine) as session:
        assert session.execute(select(InboxEvent.status)).scalar_one() == "retry"


def test_two_concurrent_workers_process_each_event_exactly_once_in_review_order(
    database_url, engine, deps, target, clock
):
    reviews, versions = 100, 5
    queue_store.enqueue(engine, "trustoo", "shop-a", _events(clock, reviews, versions), now=clock(), quarantine_id="q")
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
    queue_store.enqueue(engine, "trustoo", "shop-a", _events(clock, 1, 1), now=clock(), quarantine_id="q")
    worker = Worker(deps, worker_id="w-slow", lease_s=30)
    [claimed] = queue.claim(engine, worker.id, now=clock(), lease_s=30)
    worker._in_flight.add(claimed.id)  # as while _process runs
    clock.advance(25)
    assert worker.renew_leases() == 1
    clock.advance(25)  # past the first lease, within the renewed one
    assert queue.claim(engine, "w-other", now=clock(), lease_s=30) == []


def test_a_batch_claims_many_quick_events_and_one_at_a_time_when_the_target_is_slow():
    assert _next_batch_size(processed=10, elapsed_s=0.002) == 50  # quick: the most a claim takes
    assert _next_batch_size(processed=4, elapsed_s=0.02) == 40
    assert _next_batch_size(processed=2, elapsed_s=1.0) == 1  # 500 ms a call: share the queue out
    assert _next_batch_size(processed=0, elapsed_s=0.0) == 1


def test_a_batch_that_dies_before_its_commit_is_claimed_again_and_settles_once(engine, deps, target, clock):
    queue_store.enqueue(engine, "trustoo", "shop-a", _events(clock, 3, 1), now=clock(), quarantine_id="q")
    claimed = queue.claim(engine, "w-dies", now=clock(), lease_s=30, limit=10)
    batch = Batch(deps, claimed)
    for event in claimed:
        batch.handle(event)  # the target calls happen; the worker dies before batch.commit()
    with transaction(engine) as session:
        assert set(session.execute(select(InboxEvent.status)).scalars()) == {"processing"}
        assert session.execute(select(func.count()).select_from(LedgerEntry)).scalar_one() == 0

    clock.advance(31)  # the lease runs out
    assert Worker(deps, worker_id="w-next").drain() == 3
    with transaction(engine) as session:
        assert set(session.execute(select(InboxEvent.status)).scalars()) == {"done"}
        assert session.execute(select(func.count()).select_from(LedgerEntry)).scalar_one() == 3
        attempts = session.execute(select(Attempt.worker_id, Attempt.status)).all()
    assert sorted(attempts) == [("w-next", "done")] * 3  # the dead worker's attempts left nothing behind
    assert len(target.reviews) == 3  # the repeated upserts wrote the same keys: still one review each


def test_a_stopping_worker_settles_what_it_finished_and_hands_back_the_rest_of_its_batch(
    engine, deps, clock, monkeypatch
):
    queue_store.enqueue(engine, "trustoo", "shop-a", _events(clock, 4, 1), now=clock(), quarantine_id="q")
    worker = Worker(deps, worker_id="w-batch")
    claimed = queue.claim(engine, worker.id, now=clock(), lease_s=30, limit=4)
    original_handle = Batch.handle

    def handle_then_stop(self, event):
        worker._stopping.set()  # SIGTERM arrives while the first event is processed
        return original_handle(self, event)

    monkeypatch.setattr(Batch, "handle", handle_then_stop)
    assert worker._process_batch(claimed) == 1
    assert worker.stop(timeout_s=0) == 3
    with transaction(engine) as session:
        statuses = sorted(session.execute(select(InboxEvent.status)).scalars())
    assert statuses == ["done", "retry", "retry", "retry"]
