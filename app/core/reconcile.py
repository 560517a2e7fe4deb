"""Reconcile: prove (or restore) agreement between a source and commercetools.

Only commercetools reviews ReviewBridge made take part (our Custom Type names their source and
account); a review no source knows and no key of ours names is never touched. Kinds of drift:

    missing     the source has it, commercetools does not
    stale       both have it, and what commercetools shows differs (the update actions say what)
    orphaned    commercetools has it, the source no longer does
    unmatched   the source has it, but its product (or channel) has no commercetools match

`--fix` queues a correction event per drift through the inbox, so the pipeline applies it as it
would a webhook; reconcile events make the target compare even when the ledger says unchanged.

It also compares each product's rating statistics (count, average, distribution) as the source shows
them with commercetools' reviewRatingStatistics (app/core/rating_statistics.py), from the same two
listings plus one read per product on each side.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine

from app.core import links, merging, queue_store
from app.core.ledger import written_by_us, written_since
from app.core.pipeline import RECONCILE_TOPIC
from app.core.rate_limits import bulk_work
from app.core.rating_statistics import SETTLE_S, ProductStatistics, StatisticsTally, compare
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
    statistics: list[ProductStatistics] = field(default_factory=list)  # disagreeing products first

    @property
    def statistics_drift(self) -> int:
        """Products whose statistics disagree, not counting those still settling."""
        return sum(1 for entry in self.statistics if entry.state == "drift")

    @property
    def statistics_settling(self) -> int:
        return sum(1 for entry in self.statistics if entry.state == "settling")

    @property
    def drifted(self) -> bool:
        """Anything to report: a review's drift, or a product's statistics (settling ones aside)."""
        return bool(self.counts) or self.statistics_drift > 0

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
            "statistics": [entry.as_dict() for entry in self.statistics],
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
    precedence: Sequence[str] | None = None,
) -> DriftReport:
    """Compare every review of the account, then each product's rating statistics; `progress` hears
    the report every few dozen reviews and before each product. With `precedence` (merging is on:
    SOURCE_PRECEDENCE), a review linked to another source's is compared with the merged review."""
    report = DriftReport(source=source.name, account=account)
    recent = written_since(
        engine, source=source.name, account=account, target=target.name, since=now - timedelta(seconds=SETTLE_S)
    )
    tally = StatisticsTally(recent)
    ours, listing_us = _our_reviews(target, source.name, account, tally)
    linked = links.linked_of(engine, target.name, source.name, account) if precedence is not None else {}
    for review in _originals(engine, source, account, report, tally):
        report.compared += 1
        if progress is not None and report.compared % _PROGRESS_EVERY == 0:
            progress(report)
        link = linked.get(review.source_id)
        key = link.target_key if link is not None else target.key_for(review)
        shown: Review | None = review
        provenance: list[dict[str, str]] = []
        if link is not None and precedence is not None:
            shown, provenance = merging.shown_as(engine, target.name, key, precedence)
            if shown is not None and (shown.source, shown.account, shown.source_id) == (
                review.source,
                review.account,
                review.source_id,
            ):
                shown = review  # this source's version shows: compare it as the source lists it now
        elsewhere = shown is not None and (shown.source, shown.account) != (review.source, review.account)
        current = listing_us.get(key) if elsewhere else ours.pop(key, None)
        try:
            desired = target.desired(shown or review, key=key, linked=provenance)
        except ProductNotFound as exc:
            tally.note_source(review)
            _add(report, Drift("unmatched", source.name, account, review.source_id, key, str(exc)))
            continue
        # A review shown as another source's version counts among commercetools' "others" there.
        product = desired.target_id if desired.target_type == "product" else None
        tally.note_source(review, target_product=product, copy=elsewhere)
        if current is None:
            _add(report, Drift("missing", source.name, account, review.source_id, key))
        elif actions := update_actions(current, desired):
            names = ", ".join(dict.fromkeys(action["action"] for action in actions))
            _add(report, Drift("stale", source.name, account, review.source_id, key, names))
    for key, current in ours.items():
        source_id = (current.get("custom") or {}).get("fields", {}).get("sourceReviewId", "")
        _add(report, Drift("orphaned", source.name, account, source_id, key))
    report.statistics = compare(
        source,
        account,
        target,
        tally,
        now=now,
        each=None if progress is None else functools.partial(progress, report),
    )
    if fix:
        report.fixed = _queue_fixes(engine, report, now=now)
    return report


def _originals(
    engine: Engine, source: ReviewSource, account: str, report: DriftReport, tally: StatisticsTally
) -> Iterator[Review]:
    """The account's reviews, without the copies ReviewBridge itself wrote into this platform (a route
    such as wix:trustoo): those are another source's reviews, reconciled with it, not drift here
    (the statistics note them: the platform counts them, and commercetools has their originals)."""
    for page in source.iter_pages(account):
        reviews = [item for item in page.items if isinstance(item, Review)]
        copies = (
            written_by_us(engine, platform=source.name, review_ids=[r.source_id for r in reviews]) if reviews else set()
        )
        report.copies += len(copies)
        for review in reviews:
            if review.source_id in copies:
                tally.note_source(review, copy=True)
            else:
                yield review


def _our_reviews(
    target: CommercetoolsTarget, source: str, account: str, tally: StatisticsTally
) -> tuple[dict[str, dict], dict[str, dict]]:
    """Commercetools reviews our Custom Type says came from this source account, by key, and the
    merged reviews that list it while showing another source's version; every review listed is noted
    for the statistics (the others that count on a product, and when it last changed)."""
    type_id = target.setup_ids()["type"]
    ours, listing_us = {}, {}
    for review in target.iter_reviews():
        custom = review.get("custom") or {}
        fields = custom.get("fields") or {}
        typed = (custom.get("type") or {}).get("id") == type_id and bool(review.get("key"))
        mine = typed and fields.get("source") == source and fields.get("account") == account
        tally.note_target(review, ours=mine)
        if mine:
            ours[review["key"]] = review
        elif typed and _lists(fields.get("linkedSources"), source, account):
            listing_us[review["key"]] = review
    return ours, listing_us


def _lists(linked: object, source: str, account: str) -> bool:
    """Does a merged review's linkedSources (JSON) name this source account?"""
    if not isinstance(linked, str):
        return False
    try:
        entries = json.loads(linked)
    except ValueError:
        return False
    return isinstance(entries, list) and any(
        isinstance(e, dict) and e.get("source") == source and e.get("account") == account for e in entries
    )


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
