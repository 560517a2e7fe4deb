"""Resyncs and reconciles started from the admin page or API: rows in the `run` table that a worker executes.

    page / API ──request──▶ one queued row per account ──▶ answer at once
    worker ──claim (one statement)──▶ running, worker_id ──▶ resync / reconcile
           ──progress──▶ counts + updated_at, at most once a second; a heartbeat between pages
           ──▶ done, or failed with the error

Every process reads the same rows, so whichever web process serves the page shows every run, and a
restart forgets none. The database allows one unfinished (queued or running) run of a kind per
account, by a partial unique index: a second request is Busy. A running row whose heartbeat is older
than STALE_S lost its worker: it is shown abandoned and the next claim takes it over (a resync
resumes from its checkpoint). A stopping worker hands its run back to the queue at the next progress
call; one killed outright leaves it to go stale.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from app.core.db import transaction
from app.core.models import ACTIVE_RUN_STATES, RunState, table
from app.core.models import Run as RunRow
from app.core.reconcile import DriftReport, reconcile
from app.core.resync import ResyncReport, resync
from app.core.services import Services
from connectors.base import ReviewBridgeError, ReviewSource, ReviewTarget

__all__ = [
    "DRIFT_ROWS",
    "RECONCILE",
    "RESYNC",
    "STALE_S",
    "Busy",
    "Refused",
    "Run",
    "claim",
    "describe_resyncs",
    "execute",
    "get",
    "recent",
    "reconcile_plan",
    "request",
    "resync_plan",
    "run_queued",
]

log = logging.getLogger(__name__)

RESYNC, RECONCILE = "resync", "reconcile"
DRIFT_ROWS = 200  # drift rows a reconcile run keeps for the page; the counts cover all of them
STALE_S = 180.0  # a running row whose heartbeat is older than this lost its worker
HEARTBEAT_S = 20.0  # how often a worker touches its run's updated_at between progress calls
PROGRESS_S = 1.0  # progress is written at most this often
_RECENT = 50  # runs the page lists
_run = table(RunRow)


class Busy(Exception):
    """A run of this kind is queued or running already for these accounts."""

    def __init__(self, kind: str, accounts: list[str]):
        super().__init__(", ".join(accounts))
        self.kind = kind
        self.accounts = accounts


class Refused(ValueError):
    """A run that cannot start; the message starts with the field to change."""


class _Interrupted(Exception):
    """The worker is stopping: the run goes back to the queue."""


class _Lost(Exception):
    """Another worker took the run over (ours looked dead): this one stops writing to it."""


@dataclass(frozen=True)
class Run:
    """One row of the table, as the page and the worker read it."""

    id: int
    kind: str  # resync | reconcile
    source: str
    account: str
    options: dict  # resync: since, until, dry_run, restart; reconcile: fix
    state: str  # RunState
    requested_at: datetime
    started_at: datetime | None
    updated_at: datetime
    finished_at: datetime | None
    worker_id: str | None
    #: Resync: {"counts", "parked"} (the checkpoint's shape); reconcile: {"compared", "counts", "fixed"}.
    counts: dict | None
    summary: dict  # resync: {"failures": the first few}; reconcile: {"drifts": the first DRIFT_ROWS}
    error: str | None
    abandoned: bool = False  # running, but its worker stopped beating the heartbeat

    @property
    def running(self) -> bool:
        """Not over yet: queued, running or abandoned (to be taken over)."""
        return self.state in ACTIVE_RUN_STATES

    @property
    def shown_state(self) -> str:
        """The word the page and the API show: queued, running, abandoned, done or failed."""
        return "abandoned" if self.abandoned else self.state

    @property
    def dry_run(self) -> bool:
        return bool(self.options.get("dry_run"))

    @property
    def fix(self) -> bool:
        return bool(self.options.get("fix"))

    @property
    def failures(self) -> list[str]:
        return self.summary.get("failures", [])

    @property
    def drifts(self) -> list[dict]:
        return self.summary.get("drifts", [])


# --- asking for runs and reading them (any process) ------------------------------------------------


def request(
    engine: Engine, kind: str, source: str, accounts: Sequence[str], options: Mapping[str, Any], *, now: datetime
) -> list[int]:
    """Queue one run per account, all or none: Busy when any of them has an unfinished run of this kind."""
    stored = json.dumps(
        {name: _iso(value) if isinstance(value, datetime) else value for name, value in options.items()}
    )
    try:
        with transaction(engine) as session:
            return [
                session.execute(
                    insert(_run).returning(_run.c.id),
                    {
                        "kind": kind,
                        "source": source,
                        "account": account,
                        "options": stored,
                        "state": RunState.QUEUED.value,
                        "requested_at": now,
                        "updated_at": now,
                    },
                ).scalar_one()
                for account in accounts
            ]
    except IntegrityError:
        # The only constraint a well-formed row can break is uq_run_active: a run is on already.
        with transaction(engine) as session:
            busy = (
                session.execute(
                    select(_run.c.account).where(
                        _run.c.kind == kind,
                        _run.c.source == source,
                        _run.c.account.in_(list(accounts)),
                        _run.c.state.in_(ACTIVE_RUN_STATES),
                    )
                )
                .scalars()
                .all()
            )
        raise Busy(kind, sorted(busy) or list(accounts)) from None


def recent(engine: Engine, *, now: datetime, limit: int = _RECENT) -> list[Run]:
    """Newest first."""
    with transaction(engine) as session:
        rows = session.execute(select(_run).order_by(_run.c.id.desc()).limit(limit)).mappings().all()
    return [_from_row(row, now) for row in rows]


def get(engine: Engine, run_id: int, *, now: datetime) -> Run | None:
    with transaction(engine) as session:
        row = session.execute(select(_run).where(_run.c.id == run_id)).mappings().first()
    return _from_row(row, now) if row is not None else None


def describe_resyncs(
    engine: Engine, checkpoints: list[dict], *, source: str | None, account: str | None, now: datetime
) -> list[dict]:
    """The resync checkpoints and resync runs, one entry per (source, account). The newest run of a pair is
    the newest word on it: its state, counts and times replace the checkpoint's (a dry run writes none)."""
    newest = select(func.max(_run.c.id)).where(_run.c.kind == RESYNC).group_by(_run.c.source, _run.c.account)
    if source is not None:
        newest = newest.where(_run.c.source == source)
    if account is not None:
        newest = newest.where(_run.c.account == account)
    with transaction(engine) as session:
        rows = session.execute(select(_run).where(_run.c.id.in_(newest))).mappings().all()
    runs = {(row["source"], row["account"]): _from_row(row, now) for row in rows}
    saved = {(row["source"], row["account"]): row for row in checkpoints}
    described = []
    for key in sorted(saved.keys() | runs.keys()):
        entry = saved.get(key) or {"source": key[0], "account": key[1], "position": None}
        run = runs.get(key)
        if run is not None:
            entry = entry | {
                "counts": run.counts,
                "started_at": run.started_at,
                "updated_at": run.updated_at,
                "finished_at": run.finished_at,
            }
            entry["position"] = None if run.dry_run else entry["position"]
        described.append(
            entry
            | {
                "started_at": _iso(entry["started_at"]),
                "updated_at": _iso(entry["updated_at"]),
                "finished_at": _iso(entry["finished_at"]),
                "running": bool(run and run.running),
                "dry_run": bool(run and run.dry_run),
                "error": run.error if run else None,
                "state": run.shown_state if run else None,
                "run_id": run.id if run else None,
                "requested_at": _iso(run.requested_at) if run else None,
            }
        )
    return described


def resync_plan(services: Services, source: str | None, account: str | None) -> tuple[ReviewSource, list[str]]:
    """The connector and accounts a resync of `source` (and `account`, or all of them) reads."""
    sources = services.review_sources()
    if source is None:
        raise Refused("source: name the platform to read reviews from, e.g. trustoo")
    connector = sources.get(source)
    if connector is None:
        raise Refused(f"source: cannot read reviews from {source!r}; sources: {', '.join(sorted(sources))}")
    accounts = [account] if account else services.accounts_of(source)
    if not accounts:
        raise Refused(
            f"account: no {source} account is known: name one (Wix sites register themselves when the app "
            f"is installed; Trustoo shops: reviewbridge accounts add)"
        )
    return connector, accounts


def reconcile_plan(
    services: Services, source: str | None, account: str | None
) -> tuple[ReviewSource, list[str], ReviewTarget]:
    """As resync_plan, and the commercetools target to compare with."""
    target = next((t for t in services.targets if t.name == "commercetools"), None)
    if target is None:
        raise Refused(
            "target: commercetools is not configured: set CTP_PROJECT_KEY, CTP_CLIENT_ID and CTP_CLIENT_SECRET"
        )
    return *resync_plan(services, source, account), target


# --- executing them (the worker) -------------------------------------------------------------------


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
    run = _from_row(row, now)
    log.info(
        "run %d (%s of %s %s) claimed by %s%s",
        run.id,
        run.kind,
        run.source,
        run.account,
        worker_id,
        "" if run.started_at == now else f", taken over (started {_iso(run.started_at)})",
    )
    return run


def execute(services: Services, run: Run, worker_id: str, *, stopping: threading.Event) -> None:
    """Run a claimed row to its end: done, failed with the error, or back to the queue when stopping."""
    progress = _Progress(services, run.id, worker_id, stopping)
    error = None
    try:
        with progress.heartbeat():
            counts, summary = (_resync if run.kind == RESYNC else _reconcile)(services, run, progress)
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
        return
    except _Lost:
        log.warning("run %d: another worker took it over; %s stops", run.id, worker_id)
        return
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


def _resync(services: Services, run: Run, progress: _Progress) -> tuple[dict | None, dict]:
    connector, _ = resync_plan(services, run.source, run.account)
    options = run.options
    report = resync(
        services,
        connector,
        run.account,
        since=_time(options.get("since")),
        until=_time(options.get("until")),
        dry_run=bool(options.get("dry_run")),
        restart=bool(options.get("restart")),
        progress=lambda r: progress(_resync_counts(r)),
    )
    return _resync_counts(report), {"failures": list(report.failures)}


def _reconcile(services: Services, run: Run, progress: _Progress) -> tuple[dict | None, dict]:
    connector, _, target = reconcile_plan(services, run.source, run.account)
    report = reconcile(
        services.engine,
        connector,
        run.account,
        target,
        fix=run.fix,
        now=services.clock(),
        progress=lambda r: progress(_drift_counts(r)),
    )
    return _drift_counts(report), {"drifts": [drift.__dict__ for drift in report.drifts[:DRIFT_ROWS]]}


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
        return session.execute(statement).rowcount == 1


# --- helpers ---------------------------------------------------------------------------------------


def _from_row(row: Mapping[str, Any], now: datetime) -> Run:
    state = row["state"]
    abandoned = state == RunState.RUNNING.value and row["updated_at"] < now - timedelta(seconds=STALE_S)
    return Run(
        id=row["id"],
        kind=row["kind"],
        source=row["source"],
        account=row["account"],
        options=json.loads(row["options"] or "{}"),
        state=state,
        requested_at=row["requested_at"],
        started_at=row["started_at"],
        updated_at=row["updated_at"],
        finished_at=row["finished_at"],
        worker_id=row["worker_id"],
        counts=json.loads(row["counts"]) if row["counts"] else None,
        summary=json.loads(row["summary"]) if row["summary"] else {},
        error=row["error"],
        abandoned=abandoned,
    )


def _resync_counts(report: ResyncReport) -> dict:
    return {"counts": dict(report.counts), "parked": dict(report.parked)}  # the checkpoint's shape


def _drift_counts(report: DriftReport) -> dict:
    return {"compared": report.compared, "counts": dict(report.counts), "fixed": report.fixed}


def _json(value: dict | None) -> str | None:
    return json.dumps(value) if value is not None else None


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
