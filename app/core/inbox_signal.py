"""On PostgreSQL an idle worker hears at once that the inbox holds new events.

A statement that stores events in the inbox sends `NOTIFY reviewbridge_inbox` itself: the inbox's
trigger (migration 0016) does, in the statement's transaction, so PostgreSQL delivers it when that
transaction commits (never for one rolled back, nor for one that stored only duplicates), and a
worker that hears it finds the rows there. Each worker process keeps one connection of its own
listening (`listen`) and starts a drain when told. The worker's timed drains stay as they were: they
are the fallback for a lost connection, for events that become due later (retries) and for SQLite,
which has no notifications (`reviewbridge serve`, SQLite's one process, wakes its worker in memory
instead).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import cast

import psycopg
from sqlalchemy import Engine

__all__ = ["CHANNEL", "listen"]

log = logging.getLogger(__name__)

#: The channel the inbox's trigger notifies (migration 0016 names it too).
CHANNEL = "reviewbridge_inbox"


def listen(
    engine: Engine,
    wake: Callable[[], None],
    stopping: threading.Event,
    *,
    check_every_s: float = 1.0,
    retry_s: float = 5.0,
) -> None:
    """Call `wake` for each notification until `stopping` is set (a thread's body, PostgreSQL only).

    A lost connection is opened again after `retry_s`; the timed drains cover the gap, and a drain
    right after listening again picks up what was stored meanwhile."""
    while not stopping.is_set():
        try:
            _listen_once(engine, wake, stopping, check_every_s)
        except Exception as exc:  # the database went away, or refused us: poll until it is back
            log.warning(
                "inbox notifications stopped (%s); the timed drains carry on, listening again in %g s",
                type(exc).__name__,
                retry_s,
            )
            stopping.wait(retry_s)


def _listen_once(engine: Engine, wake: Callable[[], None], stopping: threading.Event, check_every_s: float) -> None:
    pooled = engine.raw_connection()
    connection = cast(psycopg.Connection, pooled.driver_connection)  # the driver config.py names
    pooled.detach()  # this connection stays listening, outside the pool, until it is closed here
    try:
        connection.rollback()
        connection.autocommit = True
        connection.execute(f"LISTEN {CHANNEL}")
        wake()  # whatever was stored while nobody listened
        while not stopping.is_set():
            if any(True for _ in connection.notifies(timeout=check_every_s, stop_after=1)):
                for _ in connection.notifies(timeout=0):
                    pass  # the rest of a burst: one drain takes every event that is due
                wake()
    finally:
        pooled.close()
