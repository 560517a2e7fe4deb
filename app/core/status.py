"""What the queue and the ledger look like right now: one reading for the CLI, metrics and admin."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select

from app.core.db import transaction
from app.core.models import EventStatus, InboxEvent, WebhookRejection, table

__all__ = ["AccountGauges", "account_gauges", "queue_depth", "read_status"]

_inbox = table(InboxEvent)
_rejections = table(WebhookRejection)


def queue_depth(engine: Engine) -> dict[str, int]:
    with transaction(engine) as session:
        rows = session.execute(select(_inbox.c.status, func.count()).group_by(_inbox.c.status)).all()
    counts = {status.value: 0 for status in EventStatus}
    counts.update({status: count for status, count in rows})
    return counts


@dataclass(frozen=True)
class AccountGauges:
    """What an operator watches per source account: how late it runs and what waits for a person."""

    source: str
    account: str
    oldest_pending_age_s: float | None  # None: no event pending (stored or due again, waiting for a worker)
    dead_letters: int
    waiting_for_product: int
    oldest_retry_age_s: float | None = None  # None: no event waiting for its next attempt

    @property
    def oldest_open_age_s(self) -> float | None:
        """How far behind the account runs: its oldest event still to be done, pending or retrying."""
        ages = [age for age in (self.oldest_pending_age_s, self.oldest_retry_age_s) if age is not None]
        return max(ages, default=None)

    @property
    def oldest_open_status(self) -> str | None:
        """Where that oldest event stands: pending or retry."""
        if self.oldest_open_age_s is None:
            return None
        if self.oldest_pending_age_s == self.oldest_open_age_s:
            return EventStatus.PENDING.value
        return EventStatus.RETRY.value


_WATCHED = (EventStatus.PENDING, EventStatus.RETRY, EventStatus.DEAD, EventStatus.WAITING_FOR_PRODUCT)


def account_gauges(engine: Engine, *, now: datetime) -> list[AccountGauges]:
    """One grouped read of the accounts that have anything pending, retrying, dead or waiting."""
    query = (
        select(_inbox.c.source, _inbox.c.account, _inbox.c.status, func.count(), func.min(_inbox.c.received_at))
        .where(_inbox.c.status.in_([status.value for status in _WATCHED]))
        .group_by(_inbox.c.source, _inbox.c.account, _inbox.c.status)
    )
    with transaction(engine) as session:
        rows = session.execute(query).all()
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for source, account, status, count, oldest in rows:
        entry = found.setdefault((source, account), {})
        if status in (EventStatus.PENDING.value, EventStatus.RETRY.value):
            entry[status] = _age_s(now, oldest)
        else:
            entry[status] = count
    return [
        AccountGauges(
            source=source,
            account=account,
            oldest_pending_age_s=entry.get(EventStatus.PENDING.value),
            oldest_retry_age_s=entry.get(EventStatus.RETRY.value),
            dead_letters=entry.get(EventStatus.DEAD.value, 0),
            waiting_for_product=entry.get(EventStatus.WAITING_FOR_PRODUCT.value, 0),
        )
        for (source, account), entry in sorted(found.items())
    ]


def _age_s(now: datetime, since: datetime) -> float:
    return max(0.0, (now - since).total_seconds())


def read_status(engine: Engine, *, now: datetime) -> dict:
    """Events by source and status, the oldest pending and retrying events' ages, dead letters, last
    errors, rejections."""
    with transaction(engine) as session:
        by_source = session.execute(
            select(_inbox.c.source, _inbox.c.status, func.count()).group_by(_inbox.c.source, _inbox.c.status)
        ).all()
        # "Pending" is the status pending alone: events waiting for a retry have an age of their own.
        oldest = dict(
            session.execute(
                select(_inbox.c.status, func.min(_inbox.c.received_at))
                .where(_inbox.c.status.in_((EventStatus.PENDING.value, EventStatus.RETRY.value)))
                .group_by(_inbox.c.status)
            ).all()
        )
        latest_failed = select(func.max(_inbox.c.id)).where(_inbox.c.last_error.is_not(None)).group_by(_inbox.c.source)
        last_errors = (
            session.execute(
                select(
                    _inbox.c.source, _inbox.c.event_id, _inbox.c.status, _inbox.c.last_error, _inbox.c.received_at
                ).where(_inbox.c.id.in_(latest_failed))
            )
            .mappings()
            .all()
        )
        rejections = session.execute(select(_rejections.c.source, _rejections.c.reason, _rejections.c.count)).all()

    events: dict[str, dict[str, int]] = {}
    for source, status, count in by_source:
        events.setdefault(source, {s.value: 0 for s in EventStatus})[status] = count
    last_error = {
        row["source"]: {
            "event_id": row["event_id"],
            "status": row["status"],
            "error": row["last_error"],
            "received_at": row["received_at"].isoformat(),
        }
        for row in last_errors
    }
    return {
        "events": events,
        "totals": {s.value: sum(c.get(s.value, 0) for c in events.values()) for s in EventStatus},
        "oldest_pending_age_s": _rounded_age(now, oldest.get(EventStatus.PENDING.value)),
        "oldest_retry_age_s": _rounded_age(now, oldest.get(EventStatus.RETRY.value)),
        "dead_letters": sum(c.get(EventStatus.DEAD.value, 0) for c in events.values()),
        "last_error": last_error,
        "rejected_webhooks": {f"{source}:{reason}": count for source, reason, count in rejections},
        "rejected_signatures": sum(count for _, _, count in rejections),
    }


def _rounded_age(now: datetime, since: datetime | None) -> float | None:
    return None if since is None else round(_age_s(now, since), 1)
