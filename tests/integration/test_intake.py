"""Group commit: deliveries arriving together share a transaction; each caller still learns only
about its own rows, and only once they are committed."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from app.core import queue_store
from app.core.db import transaction
from app.core.intake import GroupCommit
from app.core.models import InboxEvent
from tests.integration.conftest import make_event


def _rows(clock, *review_ids: str) -> list[dict]:
    return queue_store.inbox_rows(
        "trustoo", "shop-a", [make_event(r, at=clock()) for r in review_ids], now=clock(), quarantine_id="q"
    )


def _count(engine) -> int:
    with transaction(engine) as session:
        return session.execute(select(func.count()).select_from(InboxEvent)).scalar_one()


def test_concurrent_deliveries_are_all_committed_before_their_callers_return(engine, clock):
    inbox = GroupCommit(engine)
    stored: dict[int, int] = {}
    start = threading.Barrier(16)

    def deliver(n: int) -> None:
        start.wait()
        stored[n] = inbox.store(_rows(clock, f"r{n}-a", f"r{n}-b"))
        assert _count(engine) >= 2  # what this caller was told is stored is in the database

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert stored == {n: 2 for n in range(16)}
    assert _count(engine) == 32


def test_an_event_in_two_deliveries_of_one_group_counts_as_new_once(engine, clock):
    counts = queue_store.store(engine, [_rows(clock, "r1", "r2"), _rows(clock, "r2", "r3"), _rows(clock, "r1")])
    assert counts == [2, 1, 0]
    assert _count(engine) == 3


def test_a_redelivery_is_a_duplicate_not_a_new_row(engine, clock):
    inbox = GroupCommit(engine)
    assert inbox.store(_rows(clock, "r1")) == 1
    assert inbox.store(_rows(clock, "r1")) == 0


def test_a_delivery_the_database_refuses_fails_alone_and_its_group_is_stored(engine, clock, monkeypatch):
    inbox = GroupCommit(engine)
    bad = _rows(clock, "r-bad")
    bad[0]["status"] = None  # NOT NULL: the database refuses the row
    original = queue_store.store
    groups: list[int] = []

    def store(engine_, deliveries):
        groups.append(len(deliveries))
        return original(engine_, deliveries)

    monkeypatch.setattr(queue_store, "store", store)
    good, waiting = _rows(clock, "r-good"), threading.Event()
    # Both deliveries wait while a commit is under way, so the next leader takes them as one group.
    inbox._committing = True
    results: dict[str, object] = {}

    def deliver(name, rows):
        try:
            results[name] = inbox.store(rows)
        except Exception as exc:
            results[name] = exc

    threads = [
        threading.Thread(target=deliver, args=("good", good)),
        threading.Thread(target=deliver, args=("bad", bad)),
    ]
    for thread in threads:
        thread.start()
    while len(inbox._waiting) < 2:
        waiting.wait(0.01)
    with inbox._changed:
        inbox._committing = False
        inbox._changed.notify_all()
    for thread in threads:
        thread.join()
    assert groups[0] == 2  # committed together first
    assert results["good"] == 1
    assert isinstance(results["bad"], Exception)
    assert _count(engine) == 1


@pytest.mark.parametrize("max_group", [1, 3])
def test_a_group_never_holds_more_than_its_limit(engine, clock, monkeypatch, max_group):
    inbox = GroupCommit(engine, max_group=max_group)
    sizes: list[int] = []
    original = queue_store.store
    monkeypatch.setattr(queue_store, "store", lambda e, d: sizes.append(len(d)) or original(e, d))
    threads = [threading.Thread(target=inbox.store, args=(_rows(clock, f"r{n}"),)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert max(sizes) <= max_group and _count(engine) == 12
