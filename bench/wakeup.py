"""The ingest benchmark's wake-up line: how soon a separate worker process starts on an acknowledged
delivery when nothing else is going on (bench.ingest runs it after its load phases, per database).

A worker process (`build_worker`, as `reviewbridge worker` runs it, writing to an in-memory target)
starts on the app's database; the load phases' events are marked done first, so that it is idle.
Then deliveries go to the app's web server one at a time, 50-150 ms apart, and each is timed from
received (its inbox row's `received_at`, set by the web process) to the start of its target write
(its attempt's `started_at`, set by the worker once it holds the event).
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, func, select, update

from app.core.models import Attempt, InboxEvent, table, utcnow
from bench._common import percentile, spawn_children, worker_child
from bench._load import Delivery, Result, closed_loop

__all__ = ["child", "measure"]

_inbox, _attempts = table(InboxEvent), table(Attempt)


def measure(app_url: str, env: dict[str, str], deliveries: list[Delivery]) -> tuple[float, float, float, int]:
    """p50, p99 and max milliseconds from received to target write started, and how many were timed."""
    engine = create_engine(env["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.begin() as connection:  # the load phases' events: not this measurement's business
            connection.execute(
                update(_inbox)
                .where(_inbox.c.status == "pending")
                .values(status="done", next_attempt_at=None, finished_at=utcnow())
            )
            first = connection.execute(select(func.coalesce(func.max(_inbox.c.id), 0))).scalar_one() + 1
        with tempfile.TemporaryDirectory() as logs:
            [worker] = spawn_children("bench.ingest", env, 1, Path(logs))
            try:
                worker.stdin.write("go\n")
                worker.stdin.flush()
                time.sleep(1.5)  # its first drain has found nothing: from here on it is idle
                errors = _send_one_at_a_time(app_url, deliveries)
                took = _timings(engine, first, len(deliveries), wait_s=10)
            finally:
                worker.stdin.write("stop\n")
                worker.stdin.flush()
                worker.wait(30)
    finally:
        engine.dispose()
    if errors:
        raise SystemExit(f"bench.ingest: a wake-up delivery failed: {errors[0]}")
    if not took:
        return float("nan"), float("nan"), float("nan"), 0
    return percentile(took, 50) * 1000, percentile(took, 99) * 1000, max(took) * 1000, len(took)


def _send_one_at_a_time(app_url: str, deliveries: list[Delivery]) -> list[str]:
    rng = random.Random(5)
    errors: list[str] = []
    for delivery in deliveries:
        result: Result = closed_loop(app_url, [delivery], 1)
        errors += result.errors
        time.sleep(rng.uniform(0.05, 0.15))
    return errors


def _timings(engine, first: int, count: int, wait_s: float) -> list[float]:
    started = func.min(_attempts.c.started_at)
    statement = (
        select(_inbox.c.received_at, started)
        .join(_attempts, _attempts.c.event_pk == _inbox.c.id)
        .where(_inbox.c.id >= first)
        .group_by(_inbox.c.id, _inbox.c.received_at)
    )
    deadline = time.monotonic() + wait_s
    while True:
        with engine.connect() as connection:
            rows = connection.execute(statement).all()
        if len(rows) >= count or time.monotonic() > deadline:
            return [(began - received).total_seconds() for received, began in rows]
        time.sleep(0.2)


def child() -> int:
    """The worker process: `reviewbridge worker`'s worker, writing to a target that records each call."""
    from tests.fakes.memory_target import RecordingTarget

    return worker_child(RecordingTarget())
