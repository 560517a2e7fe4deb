"""The worker: APScheduler runs the queue drain (which also picks up due retries), the resyncs and
reconciles operators asked for (app/core/runner.py) and the periodic jobs: the poll, the recheck of
events waiting for a product, the daily prune (app/core/retention.py) and, with ALERT_WEBHOOK_URL,
the alert check (app/core/alerts.py). Several worker processes can share one PostgreSQL database.

A drain claims a batch of due events in one statement, processes them one by one and settles the
batch in one transaction (see pipeline.Batch).

Stopping (SIGTERM, or the embedded server shutting down): no new claims, up to 10 s for the
events in hand to finish, then whatever is still held goes back to the queue, due at once. A run
in hand goes back to the queue at its next progress call (one that stays silent is taken over once
its heartbeat is stale).
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
from datetime import UTC, datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from app.core import alerts, inbox_signal, leases, pipeline, queue, retention, runner
from app.core.queue import ClaimedEvent
from app.core.services import Services

__all__ = ["Worker", "scheduler_threads"]

log = logging.getLogger(__name__)


class _SkipOverlapNotice(logging.Filter):
    """APScheduler warns each time a drain job is still busy when its next tick comes; that is the
    normal state of a busy queue, not a problem worth a log line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in record.getMessage()


#: A drain claims about as many events as it gets through in this long: many at a time when events
#: are quick (one claim and one commit serve the batch), one at a time when the target is slow, so
#: that the drain threads share out a short queue instead of one thread holding it.
_BATCH_SECONDS = 0.2
#: Retention runs once a day: every worker tries, the one that takes the day's lease prunes.
_PRUNE_EVERY_S = 86400
_MAX_BATCH = 50


def scheduler_threads(concurrency: int) -> int:
    """The threads that run the worker's jobs: one per drain, and three for the rest (the lease renewal,
    the runs, and the poll, recheck, prune and alerts in turn). Each may hold a database connection."""
    return concurrency + 3


def _next_batch_size(processed: int, elapsed_s: float) -> int:
    if processed == 0:
        return 1
    return max(1, min(_MAX_BATCH, int(_BATCH_SECONDS * processed / max(elapsed_s, 1e-6))))


class Worker:
    def __init__(
        self,
        services: Services,
        *,
        concurrency: int = 4,
        lease_s: int = 60,
        drain_interval_s: float = 0.5,
        recheck_waiting_s: float = 900,
        worker_id: str | None = None,
        poll: Callable[[str], int] | None = None,
        poll_interval_s: float = 0,
        runs_interval_s: float = 2.0,
        retention_days: int = 30,
        alert_check: Callable[[str], int] | None = None,
    ):
        self.services = services
        self.id = worker_id or f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._concurrency = concurrency
        self._lease_s = lease_s
        self._drain_interval_s = drain_interval_s
        self._recheck_waiting_s = recheck_waiting_s
        self._poll = poll
        self._poll_interval_s = poll_interval_s
        self._runs_interval_s = runs_interval_s
        self._retention_days = retention_days
        self._alert_check = alert_check
        self._no_run = threading.Event()  # set while no run is in hand: `stop` waits for a run to go back
        self._no_run.set()
        self._stopping = threading.Event()
        self._in_flight: set[int] = set()
        self._idle = threading.Condition()
        self._scheduler: BackgroundScheduler | None = None

    # --- the work ---------------------------------------------------------------------------

    def drain(self) -> int:
        """Claim and process due events, a batch at a time, until none is due or the worker stops."""
        if not self.services.targets:
            return 0
        processed, size = 0, 1
        while not self._stopping.is_set():
            claimed = queue.claim(
                self.services.engine, self.id, now=self.services.clock(), lease_s=self._lease_s, limit=size
            )
            if not claimed:
                break
            started = time.perf_counter()
            done = self._process_batch(claimed)
            processed += done
            size = _next_batch_size(done, time.perf_counter() - started)
        return processed

    def _process_batch(self, claimed: list[ClaimedEvent]) -> int:
        """Process a claimed batch and settle it in one transaction; on stop, what was not begun is
        left to `stop`, which hands it back to the queue."""
        with self._idle:
            self._in_flight.update(event.id for event in claimed)
        try:
            batch = pipeline.Batch(self.services, claimed)
            done = 0
            for event in claimed:
                if self._stopping.is_set():
                    break
                self._process(batch, dataclasses.replace(event, claimed_at=self.services.clock()))
                done += 1
            batch.commit()
            return done
        finally:
            with self._idle:
                self._in_flight.difference_update(event.id for event in claimed)
                self._idle.notify_all()

    def recheck_waiting(self) -> int:
        """Give events waiting for a product another go: the product may exist by now."""
        released = queue.release_waiting(self.services.engine, now=self.services.clock())
        if released:
            log.info("released %d event(s) waiting for a product", released)
        return released

    def renew_leases(self) -> int:
        """The heartbeat: leases of the events in hand are extended while they are worked on."""
        with self._idle:
            held = list(self._in_flight)
        return queue.renew(self.services.engine, self.id, held, now=self.services.clock(), lease_s=self._lease_s)

    def poll(self) -> int:
        """Read each source account for what webhooks missed (one worker per account, by lease)."""
        return self._poll(self.id) if self._poll is not None else 0

    def prune(self) -> int:
        """Delete what retention allows, once a day across all workers (by lease); return the events."""
        now = self.services.clock()
        if not leases.acquire(self.services.engine, retention.LEASE, self.id, now=now, ttl_s=_PRUNE_EVERY_S - 60):
            return 0
        report = retention.prune(self.services.engine, now=now, older_than_days=self._retention_days)
        log.info(
            "pruned %d finished event(s), %d attempt(s) and %d run(s) older than %s, %d ended admin session(s) "
            "and %d old sign-in failure record(s)",
            report.events,
            report.attempts,
            report.runs,
            report.cutoff.isoformat(timespec="seconds"),
            report.admin_sessions,
            report.sign_in_failures,
        )
        return report.events

    def check_alerts(self) -> int:
        """Tell the alert webhook what needs a person (one worker at a time, by lease); return alerts sent."""
        return self._alert_check(self.id) if self._alert_check is not None else 0

    def run_queued_runs(self) -> int:
        """Execute the resyncs and reconciles the admin page or API queued, one at a time, until none waits."""
        self._no_run.clear()
        try:
            return runner.run_queued(self.services, self.id, stopping=self._stopping)
        finally:
            self._no_run.set()

    def _process(self, batch: pipeline.Batch, event: ClaimedEvent) -> None:
        started = time.perf_counter()
        status = batch.handle(event)
        self.services.metrics.processing_seconds.labels(event.source, status).observe(time.perf_counter() - started)

    # --- running in the background ------------------------------------------------------------

    def start(self) -> None:
        if not self.services.targets:
            log.warning("no review target is configured: events stay in the inbox until one is")
        logging.getLogger("apscheduler.scheduler").addFilter(_SkipOverlapNotice())
        scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(scheduler_threads(self._concurrency))}, timezone=UTC
        )
        now = datetime.now(UTC)

        def every(seconds: float, job: Callable[[], int], job_id: str, *, first_in_s: float | None = None) -> None:
            # One run of a job at a time, and missed runs folded into one: a job that overran just runs next.
            first = {} if first_in_s is None else {"next_run_time": now + timedelta(seconds=first_in_s)}
            scheduler.add_job(job, "interval", seconds=seconds, id=job_id, max_instances=1, coalesce=True, **first)

        for index in range(self._concurrency):
            every(self._drain_interval_s, self.drain, f"drain-{index}", first_in_s=0)
        every(max(1.0, self._lease_s / 3), self.renew_leases, "renew-leases")
        every(self._recheck_waiting_s, self.recheck_waiting, "recheck-waiting")
        every(self._runs_interval_s, self.run_queued_runs, "runs", first_in_s=0)
        every(_PRUNE_EVERY_S, self.prune, "prune", first_in_s=60)
        if self._poll is not None and self._poll_interval_s and self.services.targets:
            every(self._poll_interval_s, self.poll, "poll", first_in_s=30)
        if self._alert_check is not None:
            every(alerts.CHECK_EVERY_S, self.check_alerts, "alerts", first_in_s=10)
        scheduler.start()
        self._scheduler = scheduler
        if self.services.engine.dialect.name == "postgresql":
            threading.Thread(
                target=inbox_signal.listen,
                args=(self.services.engine, self.wake, self._stopping),
                name="inbox-listener",
                daemon=True,
            ).start()
        log.info("worker %s started: %d drain thread(s)", self.id, self._concurrency)

    def wake(self) -> None:
        """Start a drain now instead of at the next tick: on intake, told in memory by the embedded
        server or by PostgreSQL's notification (app/core/inbox_signal.py)."""
        if self._scheduler is not None and not self._stopping.is_set():
            self._scheduler.modify_job("drain-0", next_run_time=datetime.now(UTC))

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
        self._no_run.wait(max(0.0, deadline - time.monotonic()))
        released = queue.release(self.services.engine, self.id, now=self.services.clock())
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
