"""Resyncs and reconciles started from the admin page or API: rows in the `run` table that a worker
executes. Here: asking for runs and reading them (any process); app/core/runner.py executes them.

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

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from app.core.db import affected, transaction
from app.core.models import ACTIVE_RUN_STATES, RunState, table
from app.core.models import Run as RunRow
from app.core.services import Services
from connectors.base import ReviewSource
from connectors.commercetools import CommercetoolsTarget

__all__ = [
    "DRIFT_ROWS",
    "RECONCILE",
    "RESYNC",
    "ROLLBACK",
    "STALE_S",
    "Busy",
    "Refused",
    "Run",
    "active",
    "describe_resyncs",
    "get",
    "recent",
    "reconcile_plan",
    "request",
    "resync_plan",
    "start",
]

RESYNC, RECONCILE, ROLLBACK = "resync", "reconcile", "rollback"
DRIFT_ROWS = 200  # drift rows (and product statistics) a reconcile run keeps for the page; the counts cover all
STALE_S = 180.0  # a running row whose heartbeat is older than this lost its worker
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


@dataclass(frozen=True)
class Run:
    """One row of the table, as the page and the worker read it."""

    id: int
    kind: str  # resync | reconcile
    source: str
    account: str
    options: dict  # resync: since, until, dry_run, restart; reconcile: fix; rollback: of, dry_run, force
    state: str  # RunState
    requested_at: datetime
    started_at: datetime | None
    updated_at: datetime
    finished_at: datetime | None
    worker_id: str | None
    #: Resync: {"counts", "parked"} (the checkpoint's shape); reconcile: {"compared", "counts", "fixed",
    #: "statistics": {"products", "drift", "settling"}}.
    counts: dict | None
    #: Resync: {"failures": the first few, "merges": the first DRIFT_ROWS}; reconcile: {"drifts",
    #: "statistics": the first DRIFT_ROWS of each}.
    summary: dict
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
    def merges(self) -> list[dict]:
        """A resync's merges: {"review", "from", "into"} (CROSS_SOURCE_IDENTITY)."""
        return self.summary.get("merges", [])

    @property
    def drifts(self) -> list[dict]:
        return self.summary.get("drifts", [])

    @property
    def statistics(self) -> list[dict]:
        """A reconcile's products and their rating statistics, the disagreeing ones first."""
        return self.summary.get("statistics", [])

    @classmethod
    def from_row(cls, row: RowMapping, now: datetime) -> Run:
        """The row as read at `now`: a running row whose heartbeat is older than STALE_S is abandoned."""
        state = row["state"]
        abandoned = state == RunState.RUNNING.value and row["updated_at"] < now - timedelta(seconds=STALE_S)
        return cls(
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


# --- asking for runs and reading them (any process) ------------------------------------------------


def request(
    engine: Engine, kind: str, source: str, accounts: Sequence[str], options: Mapping[str, Any], *, now: datetime
) -> list[int]:
    """Queue one run per account, all or none: Busy when any of them has an unfinished run of this kind."""
    stored = _options(options)
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


def start(
    engine: Engine,
    kind: str,
    source: str,
    account: str,
    options: Mapping[str, Any],
    *,
    holder: str,
    now: datetime,
) -> Run:
    """A run that `holder` executes at once (the CLI): stored running, so no worker claims it while
    the holder beats its heartbeat; Busy when the account has an unfinished run of this kind. An
    abandoned one (its process died: no heartbeat for STALE_S) is ended as failed and replaced, so a
    deployment without a worker process is not blocked by a killed command."""
    values = {
        "kind": kind,
        "source": source,
        "account": account,
        "options": _options(options),
        "state": RunState.RUNNING.value,
        "requested_at": now,
        "started_at": now,
        "updated_at": now,
        "worker_id": holder,
    }
    for _ in range(2):
        try:
            with transaction(engine) as session:
                row = session.execute(insert(_run).returning(*_run.c), values).mappings().one()
            return Run.from_row(row, now)
        except IntegrityError:  # uq_run_active, as in request()
            if not _end_abandoned(engine, kind, source, account, holder, now=now):
                break
    raise Busy(kind, [account])


def _end_abandoned(engine: Engine, kind: str, source: str, account: str, holder: str, *, now: datetime) -> bool:
    statement = (
        update(_run)
        .where(
            _run.c.kind == kind,
            _run.c.source == source,
            _run.c.account == account,
            _run.c.state == RunState.RUNNING.value,
            _run.c.updated_at < now - timedelta(seconds=STALE_S),
        )
        .values(
            state=RunState.FAILED.value,
            finished_at=now,
            updated_at=now,
            error=f"abandoned: its process stopped answering; replaced by {holder}",
        )
    )
    with transaction(engine) as session:
        return affected(session.execute(statement)) > 0


def active(engine: Engine, kind: str, source: str, account: str) -> int | None:
    """The id of the account's unfinished (queued or running) run of this kind, if it has one."""
    with transaction(engine) as session:
        return session.execute(
            select(_run.c.id).where(
                _run.c.kind == kind,
                _run.c.source == source,
                _run.c.account == account,
                _run.c.state.in_(ACTIVE_RUN_STATES),
            )
        ).scalar()


def recent(engine: Engine, *, now: datetime, limit: int = _RECENT) -> list[Run]:
    """Newest first."""
    with transaction(engine) as session:
        rows = session.execute(select(_run).order_by(_run.c.id.desc()).limit(limit)).mappings().all()
    return [Run.from_row(row, now) for row in rows]


def get(engine: Engine, run_id: int, *, now: datetime) -> Run | None:
    with transaction(engine) as session:
        row = session.execute(select(_run).where(_run.c.id == run_id)).mappings().first()
    return Run.from_row(row, now) if row is not None else None


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
    runs = {(row["source"], row["account"]): Run.from_row(row, now) for row in rows}
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
) -> tuple[ReviewSource, list[str], CommercetoolsTarget]:
    """As resync_plan, and the commercetools target to compare with."""
    connector, accounts = resync_plan(services, source, account)
    target = next((t for t in services.targets if isinstance(t, CommercetoolsTarget)), None)
    if target is None:
        raise Refused(
            "target: commercetools is not configured: set CTP_PROJECT_KEY, CTP_CLIENT_ID and CTP_CLIENT_SECRET"
        )
    return connector, accounts, target


def _options(options: Mapping[str, Any]) -> str:
    return json.dumps({name: _iso(value) if isinstance(value, datetime) else value for name, value in options.items()})


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
