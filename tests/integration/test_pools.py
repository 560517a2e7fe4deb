"""Each process's PostgreSQL pool is sized by the threads that use it (README, Scaling): what a database
plan's connection limit must hold is the sum of these."""

from __future__ import annotations

import pytest

from app.bootstrap import SPARE_CONNECTIONS, build_services
from app.config import load_settings


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize(
    ("role", "threads"),
    [("web", 3), ("worker", 2 + 3 + 1), ("serve", 5 + 2 + 3 + 1), ("command", 2)],
    ids=["web: WEB_THREADS", "worker: drains, 3 jobs, a run's heartbeat", "serve: both", "command"],
)
def test_postgresql_pool_of_each_process_holds_its_threads_and_two_spares(database_url, role, threads):
    settings = load_settings({"DATABASE_URL": database_url, "WEB_THREADS": "3", "WORKER_CONCURRENCY": "2"})
    engine = build_services(settings, targets=[], role=role, serve_threads=5).engine
    held = []
    try:
        held = [engine.connect() for _ in range(threads + SPARE_CONNECTIONS)]  # all of them open at once
        assert engine.pool.size() == threads
        # QueuePool has no public reader of its overflow limit: past it, a connect waits for a free one.
        assert engine.pool._max_overflow == SPARE_CONNECTIONS
    finally:
        for connection in held:
            connection.close()
        engine.dispose()
