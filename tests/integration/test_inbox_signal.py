"""On PostgreSQL a stored delivery wakes an idle worker at once (the inbox's trigger notifies in the
storing transaction, the worker listens), however long its timed drain would have waited; on SQLite
nothing listens."""

from __future__ import annotations

import threading
import time

import pytest

from app.core import inbox_signal, queue_store
from app.core.db import insert_for, make_engine
from app.core.models import InboxEvent, table
from app.core.worker import Worker
from tests.integration.conftest import make_event


def _wait_for(condition, within_s: float) -> float | None:
    began = time.monotonic()
    while time.monotonic() - began < within_s:
        if condition():
            return time.monotonic() - began
        time.sleep(0.01)
    return None


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_an_event_stored_by_another_process_reaches_an_idle_worker_without_waiting_for_its_drain(
    database_url, deps, target, clock
):
    worker = Worker(deps, concurrency=1, drain_interval_s=60)  # its timed drain: once at start, then in a minute
    worker.start()
    web = make_engine(database_url)  # the web process's own engine
    try:
        time.sleep(1.0)  # the start-up drain has found nothing; the listener is in place
        queue_store.enqueue(web, "trustoo", "shop-a", [make_event("r1", at=clock())], now=clock(), quarantine_id="q")
        took = _wait_for(lambda: len(target.calls) == 1, within_s=5)
    finally:
        worker.stop()
        web.dispose()
    assert took is not None and took < 1.0


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_rolled_back_store_wakes_nobody_and_a_duplicate_sends_nothing(database_url, engine, clock):
    woken = threading.Event()
    stopping = threading.Event()
    listener = threading.Thread(target=inbox_signal.listen, args=(engine, woken.set, stopping), daemon=True)
    listener.start()
    try:
        assert woken.wait(5)  # once on listening: whatever was stored before
        woken.clear()
        event = make_event("r1", at=clock())
        [row] = queue_store.inbox_rows("trustoo", "shop-a", [event], now=clock(), quarantine_id="q")
        with pytest.raises(RuntimeError), engine.begin() as connection:
            connection.execute(insert_for(engine, table(InboxEvent)).values(**row))
            raise RuntimeError("the store failed after its insert")
        assert not woken.wait(1.5)
        queue_store.enqueue(engine, "trustoo", "shop-a", [event], now=clock(), quarantine_id="q")
        assert woken.wait(5)
        woken.clear()
        queue_store.enqueue(engine, "trustoo", "shop-a", [event], now=clock(), quarantine_id="q")
        assert not woken.wait(1.5)
    finally:
        stopping.set()
        listener.join(5)
