"""Retention: what is finished and old enough is deleted, in batches; what still needs work never is.

Finished events (done, ignored, discarded) older than RETENTION_DAYS go, with their attempts, and so
do finished runs (done, failed), with their journals (a resync run can be rolled back as long as it
is kept). Events that still need work or a person (pending, processing, retry, dead, waiting for a
product, quarantined) stay whatever their age. The ledger is never
pruned: it is what keeps a redelivered event whose inbox row is gone from writing anything twice.

Admin page sessions past their end of life go too, and so do sign-in failures a day old
(app/core/admin_sessions.py, app/core/sign_in_limits.py): both have an age of their own, not RETENTION_DAYS.

An event's age is that of its last settlement (`finished_at`), or of its arrival when it never had
one (an ignored event). Each batch re-checks its rows in the DELETE itself, so an event a person
replays while a prune runs is not deleted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, func, select

from app.core import admin_sessions, sign_in_limits
from app.core.db import affected, transaction
from app.core.models import Attempt, EventStatus, InboxEvent, RunJournal, RunState, table
from app.core.models import Run as RunRow

__all__ = ["FINISHED", "LEASE", "PruneReport", "prune"]

#: Event statuses retention may delete: nothing is left to do for them.
FINISHED = (EventStatus.DONE.value, EventStatus.IGNORED.value, EventStatus.DISCARDED.value)
_FINISHED_RUNS = (RunState.DONE.value, RunState.FAILED.value)
#: The lease that lets one worker of a deployment prune once a day.
LEASE = "prune"

_inbox = table(InboxEvent)
_attempts = table(Attempt)
_runs = table(RunRow)
_journal = table(RunJournal)


@dataclass
class PruneReport:
    cutoff: datetime
    dry_run: bool = False
    events: int = 0
    attempts: int = 0
    runs: int = 0
    journal_entries: int = 0  # the commercetools writes journaled by those runs
    admin_sessions: int = 0
    sign_in_failures: int = 0

    def as_dict(self) -> dict:
        return asdict(self) | {"cutoff": self.cutoff.isoformat()}


def prune(
    engine: Engine, *, now: datetime, older_than_days: int, dry_run: bool = False, batch_size: int = 1000
) -> PruneReport:
    """Delete (or with `dry_run`, count) what retention allows; a batch is one short transaction."""
    report = PruneReport(cutoff=now - timedelta(days=older_than_days), dry_run=dry_run)
    old_events = _old_events(report.cutoff)
    old_runs = (_runs.c.state.in_(_FINISHED_RUNS)) & (_runs.c.finished_at < report.cutoff)
    report.admin_sessions = admin_sessions.prune(engine, now=now, dry_run=dry_run)
    report.sign_in_failures = sign_in_limits.prune(engine, now=now, dry_run=dry_run)
    if dry_run:
        with transaction(engine) as session:
            report.events = session.execute(select(func.count()).where(old_events)).scalar_one()
            old_ids = select(_inbox.c.id).where(old_events)
            attempts = select(func.count()).where(_attempts.c.event_pk.in_(old_ids))
            report.attempts = session.execute(attempts).scalar_one()
            report.runs = session.execute(select(func.count()).where(old_runs)).scalar_one()
            journaled = select(func.count()).where(_journal.c.run_id.in_(select(_runs.c.id).where(old_runs)))
            report.journal_entries = session.execute(journaled).scalar_one()
        return report
    while _prune_events(engine, old_events, batch_size, report) == batch_size:
        pass
    while _prune_runs(engine, old_runs, batch_size, report) == batch_size:
        pass
    return report


def _old_events(cutoff: datetime):
    return _inbox.c.status.in_(FINISHED) & (func.coalesce(_inbox.c.finished_at, _inbox.c.received_at) < cutoff)


def _prune_events(engine: Engine, old_events, batch_size: int, report: PruneReport) -> int:
    with transaction(engine) as session:
        batch = select(_inbox.c.id).where(old_events).order_by(_inbox.c.id).limit(batch_size)
        ids = list(session.execute(batch).scalars())
        if not ids:
            return 0
        gone = list(session.execute(delete(_inbox).where(_inbox.c.id.in_(ids), old_events).returning(_inbox.c.id)))
        gone_ids = [row.id for row in gone]
        if gone_ids:
            report.attempts += affected(session.execute(delete(_attempts).where(_attempts.c.event_pk.in_(gone_ids))))
        report.events += len(gone_ids)
        return len(ids)


def _prune_runs(engine: Engine, old_runs, batch_size: int, report: PruneReport) -> int:
    with transaction(engine) as session:
        ids = list(session.execute(select(_runs.c.id).where(old_runs).order_by(_runs.c.id).limit(batch_size)).scalars())
        if ids:
            gone = [
                row.id
                for row in session.execute(delete(_runs).where(_runs.c.id.in_(ids), old_runs).returning(_runs.c.id))
            ]
            report.runs += len(gone)
            if gone:
                report.journal_entries += affected(session.execute(delete(_journal).where(_journal.c.run_id.in_(gone))))
        return len(ids)
