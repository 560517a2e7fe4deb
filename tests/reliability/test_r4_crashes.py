"""R4 crashes (PostgreSQL): `reviewbridge worker` processes killed with SIGKILL mid-drain five
times, restarted each time: no event is lost and none is applied twice; with one shop and with
20 shops (the reviews dealt round them).

Each review is created and then edited twice, so every event is one write at commercetools
(the emulator, in this process on loopback, with 20 ms latency so that kills land on calls in
flight). The workers hold 5 s leases (LEASE_S=5), so what a killed worker held comes back soon.

Full: 1,000 reviews (3,000 events). Reduced: 100 reviews (300 events).
"""

from __future__ import annotations

import signal
import time

import pytest

from tests.reliability.conftest import inbox_counts, report, require_postgres, scale, start_worker
from tests.reliability.fleet import (
    EDITS,
    order_violations,
    read_logs,
    seed_histories,
    setup_commercetools,
    status_json,
    stop,
    wait_for_done,
    worker_environ,
)

REVIEWS = scale(100, 1000)
KILLS = 5


@pytest.mark.parametrize("shops", [1, 20], ids=["one-shop", "20-shops"])
def test_workers_killed_mid_drain_five_times_lose_nothing_and_apply_nothing_twice(
    database_url, ct_environ, ct_app, ct, tmp_path, leaks, shops
):
    require_postgres(database_url)
    emulator, _ = ct
    env = worker_environ(ct_environ)
    leaks.scan(setup_commercetools(env), "reviewbridge setup commercetools")
    items = seed_histories(ct_app, REVIEWS, first_id=550_000_001, shops=shops)
    events = REVIEWS * (EDITS + 1)
    emulator.latency_s = 0.02

    logs, killed_at = [], []
    started = time.perf_counter()
    for kill in range(KILLS):
        logs.append(tmp_path / f"worker-{kill}.log")
        worker = start_worker(env, logs[-1])
        try:
            # Let it get going, then kill it in the middle of its drain (calls in flight).
            wait_for_done(ct_app, (kill + 1) * events // (KILLS + 2), timeout_s=scale(60, 300), workers=[worker])
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
        killed_at.append(inbox_counts(ct_app).get("done", 0))
    in_hand = inbox_counts(ct_app).get("processing", 0)
    logs.append(tmp_path / "worker-last.log")
    last = start_worker(env, logs[-1])
    try:
        wait_for_done(ct_app, events, timeout_s=scale(60, 600), workers=[last])
    finally:
        code = stop(last)
    took_s = time.perf_counter() - started

    writes = {key: emulator.writes_for(key) for key in items}
    twice = {key: n for key, n in writes.items() if n > EDITS + 1}
    missing = [key for key, item in items.items() if (emulator.review_by_key(key) or {}).get("text") != item["content"]]
    leaks.scan(read_logs(logs), "worker output")
    status = status_json(env)
    leaks.scan(status, "reviewbridge status --json")
    report(
        "R4 crashes",
        shops=shops,
        events=events,
        kills=KILLS,
        done_at_each_kill=killed_at,
        held_by_killed_workers=in_hand,
        inbox=dict(inbox_counts(ct_app)),
        writes_total=sum(writes.values()),
        applied_twice=len(twice),
        lost=len(missing),
        took_s=took_s,
    )
    assert code == 0
    assert inbox_counts(ct_app) == {"done": events}
    assert missing == [], f"{len(missing)} reviews not in their final state, e.g. {missing[:5]}"
    assert twice == {}, f"reviews written more than once per event: {dict(list(twice.items())[:5])}"
    assert order_violations(ct_app) == []
