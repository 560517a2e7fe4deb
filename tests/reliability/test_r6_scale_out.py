"""R6 scale-out (PostgreSQL): four `reviewbridge worker` processes share one database and drain
against a commercetools with 20 ms latency: no event processed twice, each review's events
applied one after another in history order, and the drain rate printed; with one shop and with 20
shops (the reviews dealt round them).

Full: 20,000 events (6,667 reviews x created + 2 edits). Reduced: 1,002 events (334 reviews).
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.reliability.conftest import inbox_counts, report, require_postgres, scale, start_worker
from tests.reliability.fleet import (
    EDITS,
    attempts_by_event,
    order_violations,
    read_logs,
    seed_histories,
    setup_commercetools,
    stop,
    wait_for_done,
    worker_environ,
)

EVENTS = scale(1000, 20000)
REVIEWS = -(-EVENTS // (EDITS + 1))
WORKERS = 4


@pytest.mark.parametrize("shops", [1, 20], ids=["one-shop", "20-shops"])
def test_four_worker_processes_drain_once_each_in_review_order(
    database_url, ct_environ, ct_app, ct, tmp_path, leaks, shops
):
    require_postgres(database_url)
    emulator, _ = ct
    env = worker_environ(ct_environ)
    leaks.scan(setup_commercetools(env), "reviewbridge setup commercetools")
    items = seed_histories(ct_app, REVIEWS, first_id=440_000_001, shops=shops)
    events = REVIEWS * (EDITS + 1)
    emulator.latency_s = 0.02

    logs = [tmp_path / f"worker-{n}.log" for n in range(WORKERS)]
    workers = [start_worker(env, path) for path in logs]
    try:
        wait_for_done(ct_app, events, timeout_s=scale(120, 1800), workers=workers)
    finally:
        codes = [stop(worker) for worker in workers]

    attempts = attempts_by_event(ct_app)
    done_attempts = [a for rows in attempts.values() for a in rows if a.status == "done"]
    processed_twice = [pk for pk, rows in attempts.items() if sum(a.status == "done" for a in rows) > 1]
    span_s = (max(a.finished_at for a in done_attempts) - min(a.started_at for a in done_attempts)).total_seconds()
    by_worker = Counter(a.worker_id for a in done_attempts)
    writes = {key: emulator.writes_for(key) for key in items}
    wrong_writes = {key: n for key, n in writes.items() if n != EDITS + 1}
    stale = [key for key, item in items.items() if (emulator.review_by_key(key) or {}).get("text") != item["content"]]
    violations = order_violations(ct_app)
    leaks.scan(read_logs(logs), "worker output")
    report(
        "R6 scale-out",
        shops=shops,
        events=events,
        workers=WORKERS,
        per_worker=sorted(by_worker.values()),
        drain_s=span_s,
        drain_rate_per_s=events / span_s,
        attempts=sum(len(rows) for rows in attempts.values()),
        processed_twice=len(processed_twice),
        order_violations=len(violations),
        writes_off=len(wrong_writes),
    )
    assert codes == [0] * WORKERS
    assert inbox_counts(ct_app) == {"done": events}
    assert processed_twice == []
    assert len(by_worker) == WORKERS, f"not every worker took part: {by_worker}"
    assert wrong_writes == {}, (
        f"target writes per review other than {EDITS + 1}: {dict(list(wrong_writes.items())[:5])}"
    )
    assert stale == []
    assert violations == [], violations[:5]
