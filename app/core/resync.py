"""Resync and the periodic poll: recover what webhooks missed, through the webhooks' own path.

Each review the source lists goes through `pipeline.sync` as if a webhook had just told us its
current state (observed now), so the ledger's idempotency holds: the second run of a resync writes
nothing. A checkpoint after every page lets an interrupted resync resume; a full resync (no
`since`) also finds reviews deleted at the source, by what the listing no longer holds.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, select

from app.core import ledger, links, merging
from app.core.db import insert_for, transaction
from app.core.journal import Journal
from app.core.ledger import Outcome
from app.core.models import Checkpoint, LedgerEntry, table
from app.core.pipeline import route, sync
from app.core.rate_limits import bulk_work
from app.core.services import Services
from connectors.base import (
    ConfigError,
    Event,
    EventKind,
    PayloadError,
    ProductNotFound,
    Review,
    ReviewSource,
    ReviewTarget,
    TargetError,
)
from connectors.commercetools import CommercetoolsTarget

__all__ = ["ResyncReport", "checkpoints", "resync"]

log = logging.getLogger(__name__)
_checkpoints = table(Checkpoint)
_ledger = table(LedgerEntry)


@dataclass
class ResyncReport:
    source: str
    account: str
    counts: Counter = field(default_factory=Counter)  # created, updated, unchanged, deleted, hidden, failed…
    parked: Counter = field(default_factory=Counter)  # reason → reviews waiting for a product or channel
    failures: list[str] = field(default_factory=list)  # the first few, for the summary
    #: Each review merged (or, in a dry run, that would be) into another source's target review.
    merges: list[dict[str, str]] = field(default_factory=list)
    resumed_from: str | None = None
    total: int | None = None

    @property
    def seen(self) -> int:
        return self.counts["seen"]

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "account": self.account,
            "counts": dict(self.counts),
            "parked": dict(self.parked),
            "failures": self.failures,
            "merges": self.merges,
            "resumed_from": self.resumed_from,
            "total": self.total,
        }


@bulk_work()  # behind live webhooks of the same account, whoever runs it: a run, the poll, the CLI
def resync(
    services: Services,
    source: ReviewSource,
    account: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    dry_run: bool = False,
    restart: bool = False,
    name: str = "resync",
    progress: Callable[[ResyncReport], None] | None = None,
    journal: Journal | None = None,
) -> ResyncReport:
    """Stream the account's reviews through the pipeline; return what happened to them. A run's
    `journal` keeps each commercetools write with the state before it, for a rollback."""
    report = ResyncReport(source=source.name, account=account)
    start = None if restart or dry_run else _resume(services.engine, source.name, account, name, report)
    # Deletions show as absences, so only a whole listing read in one go can find them.
    seen_ids: set[str] | None = set() if since is None and until is None and start is None else None
    fresh = start is None
    for page in source.iter_pages(account, since, start):
        report.total = page.total if report.total is None else report.total
        items = [
            item
            for item in page.items
            if not (isinstance(item, Review) and until is not None and item.created_at and item.created_at >= until)
        ]
        report.counts["seen"] += len(items)
        if seen_ids is not None:
            seen_ids.update(item.source_id for item in items if isinstance(item, Review))
        _page(services, source.name, account, items, report, dry_run=dry_run, journal=journal)
        if not dry_run:
            _save(services.engine, report, name, page.next_position, since, now=services.clock(), first=fresh)
            fresh = False
        if progress is not None:
            progress(report)
    if seen_ids is not None:
        _deleted_at_source(services, source, account, seen_ids, report, dry_run=dry_run, journal=journal)
    if not dry_run:
        _save(services.engine, report, name, None, since, now=services.clock(), finished=True)
    return report


def _page(
    services: Services,
    source: str,
    account: str,
    items: list[Review | PayloadError],
    report: ResyncReport,
    *,
    dry_run: bool,
    journal: Journal | None = None,
) -> None:
    """One page: the ledger is read for all its reviews at once, and only what changed is written."""
    reviews = [item for item in items if isinstance(item, Review)]
    for item in items:
        if isinstance(item, PayloadError):
            _fail(report, f"unusable review: {item.reason}")
    ids = [review.source_id for review in reviews]
    writes_here = any(target.name == source for target in services.targets)  # only then can a review be our copy
    ours = ledger.written_by_us(services.engine, platform=source, review_ids=ids) if ids and writes_here else set()
    probe = Event(
        source=source,
        account=account,
        event_id="resync",
        kind=EventKind.UPSERT,
        subject_id="",
        topic="resync",
        occurred_at=services.clock(),
        payload={},
    )
    targets = route(probe, services.targets, services.routes)
    states = {target.name: ledger.load_many(services.engine, source, account, ids, target.name) for target in targets}
    for review in reviews:
        if review.source_id in ours:
            report.counts[Outcome.ECHO] += 1  # a copy ReviewBridge wrote into this platform, not its own review
            continue
        _one(services, review, report, targets, states, dry_run=dry_run, journal=journal)


def _one(
    services: Services,
    review: Review,
    report: ResyncReport,
    targets,
    states,
    *,
    dry_run: bool,
    journal: Journal | None = None,
) -> None:
    event = Event(
        source=review.source,
        account=review.account,
        event_id=f"resync:{review.source_id}",
        kind=EventKind.UPSERT,
        subject_id=review.source_id,
        topic="resync",
        occurred_at=services.clock(),
        payload={},
    )
    new_hash = ledger.content_hash(review)
    for target in targets:
        state = states.get(target.name, {}).get(review.source_id)
        decision = ledger.decide(state, EventKind.UPSERT, event.occurred_at, None, new_hash)
        merges = merging.applies(services, target)  # then even an unchanged review may merge
        if dry_run:
            _dry_run(services, review, target, report, decision, state, merges=merges)
            continue
        if decision is ledger.Decision.UNCHANGED and not merges:
            report.counts[ledger.dry_run_outcome(decision, state)] += 1
            continue
        try:
            outcome = sync(event, review, target, services, read=(state, new_hash), journal=journal)
        except ProductNotFound as exc:
            report.parked[str(exc)] += 1
            continue
        except ConfigError:
            raise  # wrong credentials: every other review would fail the same way
        except TargetError as exc:
            _fail(report, f"{review.source_id} → {target.name}: {exc}")
            continue
        report.counts[outcome] += 1
        if outcome is Outcome.MERGED:
            link = links.load(services.engine, target.name, review.source, review.account, review.source_id)
            into = link.target_key if link is not None else ""
            report.merges.append({"review": review.source_id, "from": (state and state.live_key) or "", "into": into})
        if not review.published and outcome in (Outcome.CREATED, Outcome.UPDATED):
            report.counts["hidden"] += 1


def _dry_run(
    services: Services,
    review: Review,
    target: ReviewTarget,
    report: ResyncReport,
    decision: ledger.Decision,
    state: ledger.LedgerState | None,
    *,
    merges: bool,
) -> None:
    """Count what the review would come to, and name the merge it would make."""
    into = None
    if merges:
        assert isinstance(target, CommercetoolsTarget)
        try:
            into = merging.dry_run(services, target, review)
        except ProductNotFound as exc:
            report.parked[str(exc)] += 1
            return
    if into is None:
        report.counts[ledger.dry_run_outcome(decision, state)] += 1
        return
    report.counts[Outcome.WOULD_MERGE] += 1
    report.merges.append({"review": review.source_id, "from": (state and state.live_key) or "", "into": into})


def _deleted_at_source(
    services: Services,
    source: ReviewSource,
    account: str,
    seen: set[str],
    report: ResyncReport,
    *,
    dry_run: bool,
    journal: Journal | None = None,
) -> None:
    """Reviews we synced that the full listing no longer holds: ask the source, and follow its answer."""
    with transaction(services.engine) as session:
        synced = session.execute(
            select(_ledger.c.source_review_id)
            .distinct()
            .where(_ledger.c.source == source.name, _ledger.c.account == account, _ledger.c.deleted_at.is_(None))
        ).scalars()
        missing = [review_id for review_id in synced if review_id not in seen]
    for review_id in missing:
        event = Event(
            source=source.name,
            account=account,
            event_id=f"resync-delete:{review_id}",
            kind=EventKind.DELETE,
            subject_id=review_id,
            topic="resync",
            occurred_at=services.clock(),
            payload={"id": review_id},
        )
        current = source.resolve(event)
        if current is not None:  # still there after all (the listing moved under us): sync it as it is
            _page(services, source.name, account, [current], report, dry_run=dry_run, journal=journal)
            continue
        for target in route(event, services.targets, services.routes):
            if dry_run:
                report.counts[Outcome.WOULD_DELETE] += 1
                continue
            try:
                report.counts[sync(event, None, target, services, journal=journal)] += 1
            except TargetError as exc:
                _fail(report, f"{review_id} → {target.name}: {exc}")


def _fail(report: ResyncReport, message: str) -> None:
    report.counts["failed"] += 1
    if len(report.failures) < 20:
        report.failures.append(message)


def _resume(engine: Engine, source: str, account: str, name: str, report: ResyncReport) -> str | None:
    with transaction(engine) as session:
        row = (
            session.execute(
                select(_checkpoints).where(
                    _checkpoints.c.source == source,
                    _checkpoints.c.account == account,
                    _checkpoints.c.name == name,
                )
            )
            .mappings()
            .first()
        )
    if row is None or row["finished_at"] is not None or row["position"] is None:
        return None
    saved = json.loads(row["counts"] or "{}")
    report.counts.update(saved.get("counts", {}))
    report.parked.update(saved.get("parked", {}))
    report.resumed_from = row["position"]
    return row["position"]


def _save(
    engine: Engine,
    report: ResyncReport,
    name: str,
    position: str | None,
    since: datetime | None,
    *,
    now: datetime,
    finished: bool = False,
    first: bool = False,
) -> None:
    values = ({"started_at": now} if first else {}) | {
        "position": position,
        "since": since,
        "updated_at": now,
        "finished_at": now if finished else None,
        "counts": json.dumps({"counts": dict(report.counts), "parked": dict(report.parked)}),
    }
    statement = insert_for(engine, _checkpoints).values(
        **({"source": report.source, "account": report.account, "name": name, "started_at": now} | values)
    )
    statement = statement.on_conflict_do_update(index_elements=["source", "account", "name"], set_=values)
    with transaction(engine) as session:
        session.execute(statement)


def checkpoints(
    engine: Engine, *, source: str | None = None, account: str | None = None, name: str = "resync"
) -> list[dict]:
    """Where each resync (or poll) stands: position, counts so far, when it started, moved and finished."""
    query = select(_checkpoints).where(_checkpoints.c.name == name)
    if source:
        query = query.where(_checkpoints.c.source == source)
    if account:
        query = query.where(_checkpoints.c.account == account)
    with transaction(engine) as session:
        rows = session.execute(query).mappings().all()
    return [
        {
            "source": row["source"],
            "account": row["account"],
            "position": row["position"],
            "counts": json.loads(row["counts"]) if row["counts"] else None,
            "started_at": row["started_at"],
            "updated_at": row["updated_at"],
            "finished_at": row["finished_at"],
        }
        for row in rows
    ]
