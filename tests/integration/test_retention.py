"""Retention (app/core/retention.py): finished events, their attempts and finished runs older than
RETENTION_DAYS go, in batches; events that still need work, and the ledger, stay."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, insert, select, update

from app.core import journal, pipeline, queue, queue_store, retention, runs
from app.core.db import transaction
from app.core.models import Attempt, EventStatus, InboxEvent, LedgerEntry, Run, RunJournal, RunState, table
from tests.integration.conftest import make_event

_inbox, _attempts, _runs, _journal = table(InboxEvent), table(Attempt), table(Run), table(RunJournal)
DAY = timedelta(days=1)


def _event(engine, clock, review_id: str, status: EventStatus, *, age: timedelta, attempts: int = 1) -> int:
    """An inbox row in `status`, settled `age` ago, with its attempts."""
    at = clock() - age
    queue_store.enqueue(engine, "trustoo", "shop-a", [make_event(review_id, at=at)], now=at, quarantine_id="q")
    with transaction(engine) as session:
        pk = session.execute(select(_inbox.c.id).where(_inbox.c.subject_id == review_id)).scalar_one()
        session.execute(update(_inbox).where(_inbox.c.id == pk).values(status=status.value, finished_at=at))
        for number in range(1, attempts + 1):
            row = {"event_pk": pk, "number": number, "worker_id": "w", "started_at": at, "finished_at": at}
            session.execute(insert(_attempts).values(**row, status=status.value))
    return pk


def _run(engine, clock, account: str, state: RunState, *, age: timedelta) -> int:
    [run_id] = runs.request(engine, runs.RESYNC, "trustoo", [account], {}, now=clock() - age)
    with transaction(engine) as session:
        finished = clock() - age if state in (RunState.DONE, RunState.FAILED) else None
        session.execute(update(_runs).where(_runs.c.id == run_id).values(state=state.value, finished_at=finished))
    return run_id


def _count(engine, table_) -> int:
    with transaction(engine) as session:
        return session.execute(select(func.count()).select_from(table_)).scalar_one()


def test_prune_deletes_finished_events_older_than_retention_with_their_attempts(engine, clock):
    for index, status in enumerate((EventStatus.DONE, EventStatus.IGNORED, EventStatus.DISCARDED)):
        _event(engine, clock, f"old-{index}", status, age=31 * DAY, attempts=2)
    kept = _event(engine, clock, "recent", EventStatus.DONE, age=29 * DAY)

    report = retention.prune(engine, now=clock(), older_than_days=30)

    assert (report.events, report.attempts) == (3, 6)
    with transaction(engine) as session:
        assert list(session.execute(select(_inbox.c.id)).scalars()) == [kept]
        assert list(session.execute(select(_attempts.c.event_pk)).scalars()) == [kept]


def test_prune_never_deletes_events_that_still_need_work_however_old(engine, clock):
    waiting = (
        EventStatus.PENDING,
        EventStatus.PROCESSING,
        EventStatus.RETRY,
        EventStatus.DEAD,
        EventStatus.WAITING_FOR_PRODUCT,
        EventStatus.QUARANTINED,
    )
    for status in waiting:
        _event(engine, clock, f"open-{status.value}", status, age=365 * DAY)

    assert retention.prune(engine, now=clock(), older_than_days=30).events == 0
    assert _count(engine, _inbox) == len(waiting) and _count(engine, _attempts) == len(waiting)


def test_prune_deletes_finished_runs_only(engine, clock):
    _run(engine, clock, "shop-done", RunState.DONE, age=40 * DAY)
    _run(engine, clock, "shop-failed", RunState.FAILED, age=40 * DAY)
    queued = _run(engine, clock, "shop-queued", RunState.QUEUED, age=40 * DAY)
    recent = _run(engine, clock, "shop-recent", RunState.DONE, age=DAY)

    assert retention.prune(engine, now=clock(), older_than_days=30).runs == 2
    with transaction(engine) as session:
        assert sorted(session.execute(select(_runs.c.id)).scalars()) == sorted([queued, recent])


def test_prune_works_through_a_backlog_in_batches(engine, clock):
    for index in range(7):
        _event(engine, clock, f"batch-{index}", EventStatus.DONE, age=60 * DAY)

    report = retention.prune(engine, now=clock(), older_than_days=30, batch_size=3)

    assert (report.events, report.attempts) == (7, 7) and _count(engine, _inbox) == 0


def test_prune_dry_run_counts_and_deletes_nothing(engine, clock):
    _event(engine, clock, "old", EventStatus.DONE, age=31 * DAY, attempts=3)
    _run(engine, clock, "shop-done", RunState.DONE, age=31 * DAY)

    report = retention.prune(engine, now=clock(), older_than_days=30, dry_run=True)

    assert (report.events, report.attempts, report.runs) == (1, 3, 1)
    assert (_count(engine, _inbox), _count(engine, _attempts), _count(engine, _runs)) == (1, 3, 1)


def test_prune_leaves_the_ledger_alone(engine, clock, deps, target):
    queue_store.enqueue(engine, "trustoo", "shop-a", [make_event("r1", at=clock())], now=clock(), quarantine_id="q")
    [claimed] = queue.claim(engine, "w", now=clock(), lease_s=30)
    assert pipeline.handle(claimed, deps) == "done"
    clock.advance(31 * 86400)

    retention.prune(engine, now=clock(), older_than_days=30)

    assert _count(engine, _inbox) == 0 and _count(engine, table(LedgerEntry)) == 1


def test_prune_deletes_the_journals_of_the_runs_it_deletes_and_keeps_the_others(engine, clock):
    old = _run(engine, clock, "shop-old", RunState.DONE, age=40 * DAY)
    recent = _run(engine, clock, "shop-recent", RunState.DONE, age=DAY)
    for run_id in (old, recent):
        _journal_entry(engine, clock, run_id)

    counted = retention.prune(engine, now=clock(), older_than_days=30, dry_run=True)
    report = retention.prune(engine, now=clock(), older_than_days=30)

    assert (counted.runs, counted.journal_entries) == (1, 1) and _count(engine, _journal) == 1
    assert (report.runs, report.journal_entries) == (1, 1)
    assert [entry.run_id for entry in journal.entries(engine, recent)] == [recent]
    assert journal.entries(engine, old) == []


def _journal_entry(engine, clock, run_id: int) -> None:
    row = {
        "run_id": run_id,
        "target": "commercetools",
        "target_key": f"trustoo-{run_id}-key",
        "source": "trustoo",
        "account": "shop-a",
        "source_review_id": str(run_id),
        "after": "{}",
        "written_at": clock(),
    }
    with transaction(engine) as session:
        session.execute(insert(_journal).values(**row))
