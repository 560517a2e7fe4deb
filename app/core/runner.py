"""The worker's side of runs (app/core/runs.py): claim a queued or abandoned run, execute it with
progress and a heartbeat, and settle it: done, failed with the error, or back to the queue when the
worker stops.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, bindparam, func, or_, select, update

from app.core import merging
from app.core.db import affected, transaction
from app.core.journal import Journal
from app.core.models import Run as RunRow
from app.core.models import RunState, table
from app.core.reconcile import DriftReport, reconcile
from app.core.resync import ResyncReport, resync
from app.core.rollback import rollback
from app.core.runs import DRIFT_ROWS, RECONCILE, RESYNC, ROLLBACK, STALE_S, Refused, Run, reconcile_plan, resync_plan
from app.core.services import Services
from connectors.base import ReviewBridgeError

__all__ = ["claim", "execute", "give_up", "run_queued"]

log = logging.getLogger(__name__)

HEARTBEAT_S = 20.0  # how often a worker touches its run's updated_at between progress calls
PROGRESS_S = 1.0  # progress is written at most this often
_run = table(RunRow)


class _Interrupted(Exception):
    """The worker is stopping: the run goes back to the queue."""


class _Lost(Exception):
    """Another worker took the run over (ours looked dead): this one stops writing to it."""


def run_queued(services: Services, worker_id: str, *, stopping: threading.Event) -> int:
    """Claim and execute runs one at a time until none is waiting or the worker stops; return how many ran."""
    executed = 0
    while not stopping.is_set():
        run = claim(services.engine, worker_id, now=services.clock())
        if run is None:
            break
        execute(services, run, worker_id, stopping=stopping)
        executed += 1
    return executed


def claim(engine: Engine, worker_id: str, *, now: datetime, stale_s: float = STALE_S) -> Run | None:
    """Take the oldest queued run, or a running one whose worker died, in one statement.

    On PostgreSQL the candidate is locked with SKIP LOCKED, so workers claiming together take
    different runs; SQLite serialises writers with its own lock (BEGIN IMMEDIATE)."""
    when = _run.c.updated_at.type  # the column's own type, so SQLite stores times its way
    stale = and_(_run.c.state == RunState.RUNNING.value, _run.c.updated_at < now - timedelta(seconds=stale_s))
    candidate = select(_run.c.id).where(or_(_run.c.state == RunState.QUEUED.value, stale)).order_by(_run.c.id).limit(1)
    if engine.dialect.name == "postgresql":
        candidate = candidate.with_for_update(skip_locked=True)
    statement = (
        update(_run)
        .where(_run.c.id == candidate.scalar_subquery())
        .values(
            state=RunState.RUNNING.value,
            worker_id=worker_id,
            updated_at=now,
            started_at=func.coalesce(_run.c.started_at, bindparam("now", now, type_=when)),
        )
        .returning(*_run.c)
    )
    with transaction(engine) as session:
        row = session.execute(statement).mappings().first()
    if row is None:
        return None
    run = Run.from_row(row, now)
    started = run.started_at
    taken_over = f", taken over (started {started.isoformat()})" if started is not None and started != now else ""
    log.info(
        "run %d (%s of %s %s) claimed by %s%s",
        run.id,
        run.kind,
        run.source,
        run.account,
        worker_id,
        taken_over,
    )
    return run


Watch = Callable[[Any], None]


def execute(
    services: Services, run: Run, worker_id: str, *, stopping: threading.Event, watch: Watch | None = None
) -> str | None:
    """Run a claimed row to its end: done, failed with the error, or back to the queue when stopping.
    Return the error it failed with, if any. `watch` sees the run's report as it goes and at its end
    (the CLI draws its progress bar and prints its summary from it)."""
    progress = _Progress(services, run.id, worker_id, stopping)
    error = None
    try:
        with progress.heartbeat():
            counts, summary = _KINDS[run.kind](services, run, progress, watch or _unwatched)
    except _Interrupted:
        log.info("run %d: worker %s is stopping; the run goes back to the queue", run.id, worker_id)
        _settle(
            services.engine,
            run.id,
            worker_id,
            state=RunState.QUEUED.value,
            worker_id=None,
            updated_at=services.clock(),
            counts=_json(progress.latest),
        )
        return None
    except _Lost:
        log.warning("run %d: another worker took it over; %s stops", run.id, worker_id)
        return None
    except (ReviewBridgeError, Refused) as exc:  # ours carry no secret: show the reason
        log.warning("run %d (%s of %s %s) failed: %s", run.id, run.kind, run.source, run.account, exc)
        counts, summary, error = progress.latest, {}, str(exc)
    except Exception as exc:  # the run's outer loop: keep the reason, never a secret, for the page
        log.exception("run %d (%s of %s %s) failed", run.id, run.kind, run.source, run.account)
        counts, summary, error = progress.latest, {}, f"{type(exc).__name__} (details in the service log)"
    now = services.clock()
    if not _settle(
        services.engine,
        run.id,
        worker_id,
        state=RunState.FAILED.value if error else RunState.DONE.value,
        updated_at=now,
        finished_at=now,
        counts=_json(counts),
        summary=json.dumps(summary),
        error=error,
    ):
        log.warning("run %d: another worker took it over; %s leaves its ending to that one", run.id, worker_id)
    return error


def give_up(services: Services, run_id: int, holder: str, error: str) -> None:
    """End `holder`'s run as failed with `error` (its command was interrupted)."""
    now = services.clock()
    _settle(services.engine, run_id, holder, state=RunState.FAILED.value, updated_at=now, finished_at=now, error=error)


def _unwatched(report: Any) -> None:
    pass


def _resync(services: Services, run: Run, progress: _Progress, watch: Watch) -> tuple[dict | None, dict]:
    connector, _ = resync_plan(services, run.source, run.account)
    options = run.options

    def moved(report: ResyncReport) -> None:
        watch(report)
        progress(_resync_counts(report))

    report = resync(
        services,
        connector,
        run.account,
        since=_time(options.get("since")),
        until=_time(options.get("until")),
        dry_run=run.dry_run,
        restart=bool(options.get("restart")),
        progress=moved,
        journal=None if run.dry_run else Journal(services.engine, run.id, clock=services.clock),
    )
    watch(report)
    return _resync_counts(report), {"failures": list(report.failures), "merges": report.merges[:DRIFT_ROWS]}


def _rollback(services: Services, run: Run, progress: _Progress, watch: Watch) -> tuple[dict | None, dict]:
    report = rollback(
        services,
        run.options["of"],
        by=run.id,
        dry_run=run.dry_run,
        force=bool(run.options.get("force")),
        progress=lambda r: progress({"counts": dict(r.counts)}),
    )
    watch(report)
    # The page shows the first DRIFT_ROWS reviews, those that need a person first.
    first = sorted(report.reviews, key=lambda review: review["action"] not in ("skipped", "failed"))[:DRIFT_ROWS]
    return {"counts": dict(report.counts)}, report.as_dict() | {"reviews": first}


def _reconcile(services: Services, run: Run, progress: _Progress, watch: Watch) -> tuple[dict | None, dict]:
    connector, _, target = reconcile_plan(services, run.source, run.account)
    report = reconcile(
        services.engine,
        connector,
        run.account,
        target,
        fix=run.fix,
        now=services.clock(),
        progress=lambda r: progress(_drift_counts(r)),
        precedence=merging.precedence(services),
    )
    watch(report)
    return _drift_counts(report), {
        "drifts": [drift.__dict__ for drift in report.drifts[:DRIFT_ROWS]],
        "statistics": [entry.as_dict() for entry in report.statistics[:DRIFT_ROWS]],  # disagreeing first
    }


_KINDS = {RESYNC: _resync, RECONCILE: _reconcile, ROLLBACK: _rollback}


class _Progress:
    """The run's progress callback: writes counts and updated_at at most every PROGRESS_S, and raises
    to stop the run when the worker is stopping or the run is no longer this worker's."""

    def __init__(self, services: Services, run_id: int, worker_id: str, stopping: threading.Event):
        self._deps, self._run_id, self._worker_id, self._stopping = services, run_id, worker_id, stopping
        self._written_at = time.monotonic()  # the claim itself wrote updated_at
        self._lost = False
        self.latest: dict | None = None

    def __call__(self, counts: dict) -> None:
        self.latest = counts
        if self._stopping.is_set():
            raise _Interrupted
        if self._lost:
            raise _Lost
        if time.monotonic() - self._written_at >= PROGRESS_S:
            self._write(counts=json.dumps(counts))

    @contextlib.contextmanager
    def heartbeat(self) -> Iterator[None]:
        """Between progress calls (a slow page), a thread keeps updated_at fresh so the run is not taken over."""
        done = threading.Event()

        def beat() -> None:
            while not done.wait(HEARTBEAT_S):
                try:
                    self._write()
                except _Lost:
                    return
                except Exception:  # the heartbeat's outer loop: a missed beat is retried at the next one
                    log.exception("run %d: heartbeat failed", self._run_id)

        thread = threading.Thread(target=beat, daemon=True, name=f"run-{self._run_id}-heartbeat")
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

    def _write(self, **values: Any) -> None:
        if not _settle(self._deps.engine, self._run_id, self._worker_id, updated_at=self._deps.clock(), **values):
            self._lost = True
            raise _Lost
        self._written_at = time.monotonic()


def _settle(engine: Engine, run_id: int, holder: str, **values: Any) -> bool:
    """Update the running row `holder` holds; False when it is not its own any more (another worker took it over)."""
    statement = (
        update(_run)
        .where(_run.c.id == run_id, _run.c.worker_id == holder, _run.c.state == RunState.RUNNING.value)
        .values(**values)
    )
    with transaction(engine) as session:
        return affected(session.execute(statement)) == 1


def _resync_counts(report: ResyncReport) -> dict:
    return {"counts": dict(report.counts), "parked": dict(report.parked)}  # the checkpoint's shape


def _drift_counts(report: DriftReport) -> dict:
    return {
        "compared": report.compared,
        "counts": dict(report.counts),
        "fixed": report.fixed,
        "statistics": {
            "products": len(report.statistics),
            "drift": report.statistics_drift,
            "settling": report.statistics_settling,
        },
    }


def _json(value: dict | None) -> str | None:
    return json.dumps(value) if value is not None else None


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
