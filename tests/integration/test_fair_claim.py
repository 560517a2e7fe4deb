"""Claiming is fair across accounts, on SQLite and PostgreSQL: one shop's backlog is no wall in
front of another shop's next review, and a shop alone in the queue still gets whole batches."""

from __future__ import annotations

import threading
import time
from collections import Counter

from sqlalchemy import select, text

from app.core import queue, queue_store
from app.core.db import make_engine, transaction, upgrade
from app.core.models import InboxEvent
from app.core.queue_claim import claim_statement
from app.core.worker import Worker
from tests.conftest import scratch_database
from tests.integration.conftest import make_event


def _burst(engine, clock, account: str, reviews: int, *, prefix: str = "r") -> None:
    events = [make_event(f"{prefix}{n}", at=clock(), account=account) for n in range(reviews)]
    queue_store.enqueue(engine, "trustoo", account, events, now=clock(), quarantine_id="q")


def _claim(engine, clock, limit: int, worker: str = "w1") -> list[queue.ClaimedEvent]:
    return queue.claim(engine, worker, now=clock(), lease_s=30, limit=limit)


def test_one_event_of_a_second_shop_is_in_the_first_batch_behind_a_burst_of_the_first(engine, clock):
    _burst(engine, clock, "shop-a", 1500)
    clock.advance(1)  # shop B's review arrives after all of shop A's
    _burst(engine, clock, "shop-b", 1, prefix="b")
    claimed = _claim(engine, clock, limit=2)
    assert sorted(event.account for event in claimed) == ["shop-a", "shop-b"]


def test_a_batch_is_processed_in_turns_so_the_second_shops_review_is_not_last(engine, clock):
    # In order of id shop B's review, the newest, would wait behind every event of shop A's burst
    # that the batch holds: at 50 ms a target call, a second for a batch of twenty.
    _burst(engine, clock, "shop-a", 1500)
    clock.advance(1)
    _burst(engine, clock, "shop-b", 1, prefix="b")
    claimed = _claim(engine, clock, limit=20)
    assert "shop-b" in [event.account for event in claimed[:2]]
    assert [event.id for event in claimed if event.account == "shop-a"] == sorted(
        event.id for event in claimed if event.account == "shop-a"
    )


def test_claims_of_one_event_each_reach_the_second_shop_within_a_few_turns(engine, clock):
    _burst(engine, clock, "shop-a", 200)
    clock.advance(1)
    _burst(engine, clock, "shop-b", 1, prefix="b")
    accounts = [event.account for _ in range(40) for event in _claim(engine, clock, limit=1)]
    # Accounts are drawn at random within a turn: shop B loses each draw with probability 1/2.
    assert "shop-b" in accounts


def test_every_account_gets_its_first_event_before_any_gets_a_second(engine, clock):
    _burst(engine, clock, "shop-a", 10)
    _burst(engine, clock, "shop-b", 10, prefix="b")
    _burst(engine, clock, "shop-c", 1, prefix="c")
    counts = Counter(event.account for event in _claim(engine, clock, limit=6))
    assert counts["shop-c"] == 1
    assert sorted([counts["shop-a"], counts["shop-b"]]) == [2, 3]


def test_a_shop_alone_in_the_queue_gets_whole_batches_oldest_first(engine, clock):
    for n in range(80):
        _burst(engine, clock, "shop-a", 1, prefix=f"r{n}-")
        clock.advance(0.001)
    claimed = _claim(engine, clock, limit=50)
    assert [event.subject_id for event in claimed] == [f"r{n}-0" for n in range(50)]


def test_an_account_whose_events_are_all_in_flight_or_retrying_offers_nothing(engine, clock):
    _burst(engine, clock, "shop-a", 2)
    [first, _in_flight] = _claim(engine, clock, limit=2)
    with transaction(engine) as session:
        queue.settle(session, [queue.retrying(first, "HTTP 503", now=clock(), delay_s=10)])
    _burst(engine, clock, "shop-b", 1, prefix="b")
    assert [event.account for event in _claim(engine, clock, limit=10)] == ["shop-b"]
    clock.advance(11)  # the retry is due; the others' leases (30 s) still hold
    assert [event.id for event in _claim(engine, clock, limit=10)] == [first.id]


def test_concurrent_claims_across_many_shops_take_each_event_once(database_url, engine, clock):
    for shop in range(12):
        _burst(engine, clock, f"shop-{shop:02d}", 25, prefix=f"s{shop}-")
    engines = [make_engine(database_url) for _ in range(4)]
    taken: list[int] = []
    lock = threading.Lock()

    def claim_until_empty(index: int) -> None:
        while claimed := queue.claim(engines[index], f"w{index}", now=clock(), lease_s=300, limit=7):
            with lock:
                taken.extend(event.id for event in claimed)

    threads = [threading.Thread(target=claim_until_empty, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for each in engines:
        each.dispose()
    assert len(taken) == len(set(taken)) == 300


def test_on_a_postgresql_inbox_without_statistics_each_candidate_is_checked_by_its_review(postgres_admin, clock):
    # A fresh deployment's first burst: three versions of each review pending, no ANALYZE yet. The
    # planner once made the "earlier event still open?" check an anti-join that read every open
    # event of the shop for each candidate (93 ms a claim at 20,000), and once the table had
    # statistics, JIT-compiled the claim for 750 ms.
    with scratch_database(postgres_admin, "claim_plan") as url:
        engine = make_engine(url)
        upgrade(engine)
        for version in range(3):
            events = [make_event(f"r{n}", at=clock(), version=version) for n in range(300)]
            queue_store.enqueue(engine, "trustoo", "shop-a", events, now=clock(), quarantine_id="q")
        statement = claim_statement("postgresql", 8, ("id",)).compile(dialect=engine.dialect)
        parameters = dict(statement.params) | {"now": clock(), "until": clock(), "worker_id": "w"}
        with engine.connect() as connection:
            cursor = connection.connection.driver_connection.cursor()
            cursor.execute(f"EXPLAIN {statement}", parameters)
            plan = "\n".join(line for (line,) in cursor.fetchall())
            jit = connection.execute(text("SHOW jit")).scalar_one()
        engine.dispose()
    assert "Anti Join" not in plan
    assert "subject_id = (offer.subject_id)" in plan, plan
    assert "JIT" not in plan and jit == "off"


def test_a_live_review_lands_within_seconds_while_another_shop_drains_a_burst(engine, deps, target, clock):
    # The measurement: a target answering in 100 ms, shop A's 1,500 reviews, then shop B's one.
    target.latency_s = 0.1
    _burst(engine, clock, "shop-a", 1500)
    _burst(engine, clock, "shop-b", 1, prefix="b")
    worker = Worker(deps, concurrency=4, drain_interval_s=0.05)
    started = time.monotonic()
    worker.start()
    try:
        while not _landed(target, "shop-b") and time.monotonic() - started < 30:
            time.sleep(0.02)
        landed_after = time.monotonic() - started
    finally:
        worker.stop(timeout_s=5)
    assert landed_after < 3.0, f"shop B's review landed after {landed_after:.1f} s"
    with transaction(engine) as session:
        done_of_a = session.execute(
            select(InboxEvent.id).where(InboxEvent.account == "shop-a", InboxEvent.status == "done")
        ).all()
    assert len(done_of_a) < 200  # it did not have to wait for shop A's backlog


def _landed(target, account: str) -> bool:
    with target._lock:
        return any(review.account == account for review in target.reviews.values())
