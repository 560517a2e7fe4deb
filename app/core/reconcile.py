"""Reconcile: prove (or restore) agreement between a source and commercetools.

Only commercetools reviews ReviewBridge made take part (our Custom Type names their source and
account); a review no source knows and no key of ours names is never touched. Kinds of drift:

    missing     the source has it, commercetools does not
    stale       both have it, and what commercetools shows differs (the update actions say what)
    orphaned    commercetools has it, the source no longer does
    unmatched   the source has it, but its product (or channel) has no commercetools match

`--fix` queues a correction event per drift through the inbox, so the pipeline applies it as it
would a webhook; reconcile events make the target compare even when the ledger says unchanged.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine

from app.core import queue_store
from app.core.ledger import written_by_us
from app.core.pipeline import RECONCILE_TOPIC
from app.core.rate_limits import bulk_work
from connectors.base import Event, EventKind, ProductNotFound, Review, ReviewSource
from connectors.commercetools import CommercetoolsTarget
from connectors.commercetools_mapping import update_actions

__all__ = ["Drift", "DriftReport", "reconcile"]

_EXAMPLES = 5
_PROGRESS_EVERY = 50  # reviews compared between two progress calls


@dataclass(frozen=True)
class Drift:
    kind: str  # missing | stale | orphaned | unmatched
    source: str
    account: str
    source_id: str
    key: str
    detail: str = ""


@dataclass
class DriftReport:
    source: str
    account: str
    compared: int = 0
    counts: Counter = field(default_factory=Counter)
    drifts: list[Drift] = field(default_factory=list)
    fixed: int = 0
    copies: int = 0  # reviews of this platform that are our copies of another source's

    def examples(self, kind: str) -> list[Drift]:
        return [d for d in self.drifts if d.kind == kind][:_EXAMPLES]

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "account": self.account,
            "compared": self.compared,
            "counts": dict(self.counts),
            "fixed": self.fixed,
            "copies": self.copies,
            "examples": {kind: [d.__dict__ for d in self.examples(kind)] for kind in self.counts},
        }


@bulk_work()  # behind live webhooks of the same account, whoever runs it: a run or the CLI
def reconcile(
    engine: Engine,
    source: ReviewSource,
    account: str,
    target: CommercetoolsTarget,
    *,
    fix: bool = False,
    now: datetime,
    progress: Callable[[DriftReport], None] | None = None,
) -> DriftReport:
    """Compare every review of the account; `progress` hears the report every few dozen reviews."""
    report = DriftReport(source=source.name, account=account)
    ours = _our_reviews(target, source.name, account)
    for review in _originals(engine, source, account, report):
        report.compared += 1
        if progress is not None and report.compared % _PROGRESS_EVERY == 0:
            progress(report)
        key = target.key_for(review)
        current = ours.pop(key, None)
        try:
            desired = target.desired(review)
        except ProductNotFound as exc:
            _add(report, Drift("unmatched", source.name, account, review.source_id, key, str(exc)))
            continue
        if current is None:
            _add(report, Drift("missing", source.name, account, review.source_id, key))
        elif actions := update_actions(current, desired):
            names = ", ".join(dict.fromkeys(action["action"] for action in actions))
            _add(report, Drift("stale", source.name, account, review.source_id, key, names))
    for key, current in ours.items():
        source_id = (current.get("custom") or {}).get("fields", {}).get("sourceReviewId", "")
        _add(report, Drift("orphaned", source.name, account, source_id, key))
    if fix:
        report.fixed = _queue_fixes(engine, report, now=now)
    return report


def _originals(engine: Engine, source: ReviewSource, account: str, report: DriftReport) -> Iterator[Review]:
    """The account's reviews, without the copies ReviewBridge itself wrote into this platform (a route
    such as wix:trustoo): those are another source's reviews, reconciled with it, not drift here."""
    for page in source.iter_pages(account):
        reviews = [item for item in page.items if isinstance(item, Review)]
        copies = (
            written_by_us(engine, platform=source.name, review_ids=[r.source_id for r in reviews]) if reviews else set()
        )
        report.copies += len(copies)
        yield from (review for review in reviews if review.source_id not in copies)


def _our_reviews(target: CommercetoolsTarget, source: str, account: str) -> dict[str, dict]:
    """Commercetools reviews our Custom Type says came from this source account, by key."""
    type_id = target.setup_ids()["type"]
    ours = {}
    for review in target.iter_reviews():
        custom = review.get("custom") or {}
        fields = custom.get("fields") or {}
        if (
            (custom.get("type") or {}).get("id") != type_id
            or fields.get("source") != source
            or fields.get("account") != account
            or not review.get("key")
        ):
            continue
        ours[review["key"]] = review
    return ours


def _add(report: DriftReport, drift: Drift) -> None:
    report.counts[drift.kind] += 1
    report.drifts.append(drift)


def _queue_fixes(engine: Engine, report: DriftReport, *, now: datetime) -> int:
    """One event per missing, stale or orphaned review: the pipeline asks the source and applies."""
    stamp = now.strftime("%Y%m%dT%H%M%S")
    events = [
        Event(
            source=d.source,
            account=d.account,
            event_id=f"{RECONCILE_TOPIC}:{d.source_id}:{stamp}",
            kind=EventKind.DELETE if d.kind == "orphaned" else EventKind.UPSERT,
            subject_id=d.source_id,
            topic=RECONCILE_TOPIC,
            occurred_at=now,
            payload={"id": d.source_id},
        )
        for d in report.drifts
        if d.kind in ("missing", "stale", "orphaned") and d.source_id
    ]
    if not events:
        return 0
    digest = hashlib.sha256(stamp.encode()).hexdigest()[:12]
    return queue_store.enqueue(
        engine, report.source, report.account, events, now=now, quarantine_id=f"reconcile:{digest}"
    )
