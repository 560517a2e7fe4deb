"""The worker: APScheduler runs the queue drain (which also picks up due retries) and, in later
rooms, the periodic jobs. Several worker processes can share one PostgreSQL database.

Stopping (SIGTERM, or the embedded server shutting down): no new claims, up to 10 s for the
events in hand to finish, then whatever is still held goes back to the queue, due at once.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from app import pipeline, queue
from app.pipeline import Collaborators
from app.queue import ClaimedEvent

__all__ = ["Worker"]

log = logging.getLogger(__name__)


class _SkipOverlapNotice(logging.Filter):
    """APScheduler warns each time a drain job is still busy when its next tick comes; that is the
    normal state of a busy queue, not a problem worth a log line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in record.getMessage()


class Worker:
    def __init__(self, deps: Collaborators, *, concurrency: int = 4, lease_s: int = 60,
                 drain_interval_s: float = 0.5, recheck_waiting_s: float = 900, worker_id: str | None = None,
                 poll: Callable[[str], int] | None = None, poll_interval_s: float = 0):
        self.deps = deps
        self.id = worker_id or f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._concurrency = concurrency
        self._lease_s = lease_s
        self._drain_interval_s = drain_interval_s
        self._recheck_waiting_s = recheck_waiting_s
        self._poll = poll
        self._poll_interval_s = poll_interval_s
        self._stopping = threading.Event()
        self._in_flight: set[int] = set()
        self._idle = threading.Condition()
        self._scheduler: BackgroundScheduler | None = None

    # --- the work ---------------------------------------------------------------------------

    def drain(self) -> int:
        """Claim and process due events one at a time until none is due or the worker stops."""
        if not self.deps.targets:
            return 0
        processed = 0
        while not self._stopping.is_set():
            claimed = queue.claim(self.deps.engine, self.id, now=self.deps.clock(), lease_s=self._lease_s)
            if not claimed:
                break
            for event in claimed:
                self._process(dataclasses.replace(event, claimed_at=self.deps.clock()))
            processed += len(claimed)
        return processed

    def recheck_waiting(self) -> int:
        """Give events waiting for a product another go: the product may exist by now."""
        released = queue.release_waiting(self.deps.engine, now=self.deps.clock())
        if released:
            log.info("released %d event(s) waiting for a product", released)
        return released

    def renew_leases(self) -> int:
        """The heartbeat: leases of the events in hand are extended while they are worked on."""
        with self._idle:
            held = list(self._in_flight)
        return queue.renew(self.deps.engine, self.id, held, now=self.deps.clock(), lease_s=self._lease_s)

    def poll(self) -> int:
        """Read each source account for what webhooks missed (one worker per account, by lease)."""
        return self._poll(self.id) if self._poll is not None else 0

    def _process(self, event: ClaimedEvent) -> None:
        with self._idle:
            self._in_flight.add(event.id)
        started = time.perf_counter()
        try:
            status = pipeline.run(event, self.deps)
        except Exception as exc:  # the outer loop: anything unforeseen is retried, never a crash
            log.exception("event %s failed unexpectedly", event.event_id, extra={"event_id": event.event_id})
            status = pipeline.retry_or_give_up(event, self.deps, f"{type(exc).__name__}: {exc}")
        finally:
            with self._idle:
                self._in_flight.discard(event.id)
                self._idle.notify_all()
        self.deps.metrics.processing_seconds.labels(event.source, status).observe(time.perf_counter() - started)
        log.info("event %s %s", event.event_id, status, extra={"event_id": event.event_id})

    # --- running in the background ------------------------------------------------------------

    def start(self) -> None:
        if not self.deps.targets:
            log.warning("no review target is configured: events stay in the inbox until one is")
        logging.getLogger("apscheduler.scheduler").addFilter(_SkipOverlapNotice())
        scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(self._concurrency + 2)}, timezone=timezone.utc
        )
        for index in range(self._concurrency):
            scheduler.add_job(self.drain, "interval", seconds=self._drain_interval_s, id=f"drain-{index}",
                              max_instances=1, coalesce=True, next_run_time=datetime.now(timezone.utc))
        scheduler.add_job(self.renew_leases, "interval", seconds=max(1.0, self._lease_s / 3), id="renew-leases",
                          max_instances=1, coalesce=True)
        scheduler.add_job(self.recheck_waiting, "interval", seconds=self._recheck_waiting_s, id="recheck-waiting",
                          max_instances=1, coalesce=True)
        if self._poll is not None and self._poll_interval_s and self.deps.targets:
            scheduler.add_job(self.poll, "interval", seconds=self._poll_interval_s, id="poll", max_instances=1,
                              coalesce=True, next_run_time=datetime.now(timezone.utc) + timedelta(seconds=30))
        scheduler.start()
        self._scheduler = scheduler
        log.info("worker %s started: %d drain thread(s)", self.id, self._concurrency)

    def wake(self) -> None:
        """Start a drain now instead of at the next tick (the embedded server calls this on intake)."""
        if self._scheduler is not None and not self._stopping.is_set():
            self._scheduler.modify_job("drain-0", next_run_time=datetime.now(timezone.utc))

    def stop(self, timeout_s: float = 10.0) -> int:
        """Stop claiming, let work in hand finish within `timeout_s`, release the rest; return released."""
        self._stopping.set()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
        deadline = time.monotonic() + timeout_s
        with self._idle:
            while self._in_flight and time.monotonic() < deadline:
                self._idle.wait(deadline - time.monotonic())
            unfinished = list(self._in_flight)
        released = queue.release(self.deps.engine, self.id, now=self.deps.clock())
        if unfinished:
            log.warning("worker %s released %d unfinished event(s)", self.id, released)
        log.info("worker %s stopped", self.id)
        return released

    def run_until_signalled(self) -> None:
        """The `reviewbridge worker` process: run until SIGTERM or SIGINT, then stop cleanly."""
        stop_requested = threading.Event()

        def _on_signal(signum, _frame):
            log.info("received %s, stopping", signal.Signals(signum).name)
            stop_requested.set()

        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)
        self.start()
        while not stop_requested.wait(1.0):
            pass
        self.stop()
