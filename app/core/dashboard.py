"""What the admin page's dashboard shows: per source account, per target, and the last 24 hours.

Read-only queries, a handful per page view, each grouped in the database; the chart's hourly
buckets are sums over a 24-hour window, so the same statement runs on SQLite and PostgreSQL. The
chart drawn from them is the web's (app/web/admin_page/chart.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, case, func, select

from app.core.db import transaction
from app.core.models import OPEN_STATUSES, EventStatus, InboxEvent, LedgerEntry, table
from app.core.pipeline import RECONCILE_TOPIC

__all__ = ["QUEUED", "AccountHealth", "Dashboard", "TargetHealth", "read_dashboard"]

_inbox = table(InboxEvent)
_ledger = table(LedgerEntry)
_HOUR = timedelta(hours=1)
_HOURS = 24
#: Events due or waiting to be processed: the dashboard's queue depth.
QUEUED = (*OPEN_STATUSES, EventStatus.WAITING_FOR_PRODUCT.value)
_FAILED = (EventStatus.DEAD.value, EventStatus.QUARANTINED.value)


@dataclass
class AccountHealth:
    source: str
    account: str
    received_hour: int = 0  # inbox rows created in the last hour (reconcile's own corrections not counted)
    received_day: int = 0
    statuses: dict[str, int] = field(default_factory=lambda: {status.value: 0 for status in EventStatus})
    oldest_pending: datetime | None = None  # received_at of the oldest pending event
    oldest_retry: datetime | None = None  # received_at of the oldest event waiting for a retry
    last_success: datetime | None = None  # when an event of this account last finished done
    last_error: dict | None = None  # {id, event_id, status, error, received_at} of the newest event with an error

    @property
    def queue_depth(self) -> int:
        return sum(self.statuses[status] for status in QUEUED)


@dataclass
class TargetHealth:
    name: str
    configured: bool
    reviews: int = 0  # ledger rows: source reviews written there (deleted ones included)
    deleted: int = 0
    with_error: int = 0
    last_synced: datetime | None = None


@dataclass
class Dashboard:
    now: datetime
    accounts: list[AccountHealth]
    targets: list[TargetHealth]
    hours: list[dict]  # oldest first: {start, received, done, failed}

    @property
    def queue_depth(self) -> int:
        return sum(account.queue_depth for account in self.accounts)

    @property
    def oldest_pending(self) -> datetime | None:
        return min((a.oldest_pending for a in self.accounts if a.oldest_pending), default=None)

    @property
    def oldest_retry(self) -> datetime | None:
        return min((a.oldest_retry for a in self.accounts if a.oldest_retry), default=None)

    @property
    def totals(self) -> dict[str, int]:
        return {status.value: sum(a.statuses[status.value] for a in self.accounts) for status in EventStatus}


def read_dashboard(engine: Engine, targets: Sequence[str], *, now: datetime, account: str | None = None) -> Dashboard:
    """Everything the dashboard shows, read in one transaction; with `account`, that account's only
    (its events, and what the targets hold of its reviews)."""
    day_ago, hour_ago = now - _HOURS * _HOUR, now - _HOUR
    received = _inbox.c.received_at
    mine = [_inbox.c.account == account] if account else []
    with transaction(engine) as session:
        by_status = session.execute(
            select(_inbox.c.source, _inbox.c.account, _inbox.c.status, func.count())
            .where(*mine)
            .group_by(_inbox.c.source, _inbox.c.account, _inbox.c.status)
        ).all()
        recent = session.execute(
            select(_inbox.c.source, _inbox.c.account, func.sum(case((received >= hour_ago, 1), else_=0)), func.count())
            .where(received >= day_ago, _inbox.c.topic != RECONCILE_TOPIC, *mine)
            .group_by(_inbox.c.source, _inbox.c.account)
        ).all()
        oldest = session.execute(
            select(_inbox.c.source, _inbox.c.account, _inbox.c.status, func.min(received))
            .where(_inbox.c.status.in_((EventStatus.PENDING.value, EventStatus.RETRY.value)), *mine)
            .group_by(_inbox.c.source, _inbox.c.account, _inbox.c.status)
        ).all()
        success = session.execute(
            select(_inbox.c.source, _inbox.c.account, func.max(_inbox.c.finished_at))
            .where(_inbox.c.status == EventStatus.DONE.value, *mine)
            .group_by(_inbox.c.source, _inbox.c.account)
        ).all()
        newest_errors = (
            select(func.max(_inbox.c.id))
            .where(_inbox.c.last_error.is_not(None), *mine)
            .group_by(_inbox.c.source, _inbox.c.account)
        )
        errors = (
            session.execute(
                select(
                    _inbox.c.id,
                    _inbox.c.source,
                    _inbox.c.account,
                    _inbox.c.event_id,
                    _inbox.c.status,
                    _inbox.c.last_error,
                    received,
                ).where(_inbox.c.id.in_(newest_errors))
            )
            .mappings()
            .all()
        )
        ledger = session.execute(
            select(
                _ledger.c.target,
                func.count(),
                func.sum(case((_ledger.c.deleted_at.is_not(None), 1), else_=0)),
                func.sum(case((_ledger.c.last_error.is_not(None), 1), else_=0)),
                func.max(_ledger.c.last_synced_at),
            )
            .where(*([_ledger.c.account == account] if account else []))
            .group_by(_ledger.c.target)
        ).all()
        hours = _hours(session, now.replace(minute=0, second=0, microsecond=0) + _HOUR - _HOURS * _HOUR, mine)

    accounts: dict[tuple[str, str], AccountHealth] = {}

    def health_of(source: str, name: str) -> AccountHealth:
        return accounts.setdefault((source, name), AccountHealth(source, name))

    for source, name, status, count in by_status:
        health_of(source, name).statuses[status] = count
    for source, name, last_hour, last_day in recent:
        health = health_of(source, name)
        health.received_hour, health.received_day = int(last_hour or 0), last_day
    for source, name, status, when in oldest:
        if status == EventStatus.PENDING.value:
            health_of(source, name).oldest_pending = when
        else:
            health_of(source, name).oldest_retry = when
    for source, name, when in success:
        health_of(source, name).last_success = when
    for row in errors:
        health_of(row["source"], row["account"]).last_error = {
            "id": row["id"],
            "event_id": row["event_id"],
            "status": row["status"],
            "error": row["last_error"],
            "received_at": row["received_at"],
        }
    written = {
        name: TargetHealth(name, name in targets, count, int(deleted or 0), int(failing or 0), last)
        for name, count, deleted, failing, last in ledger
    }
    target_health = [written.get(name) or TargetHealth(name, True) for name in targets]
    target_health += [health for name, health in sorted(written.items()) if name not in targets]
    return Dashboard(now=now, accounts=[accounts[key] for key in sorted(accounts)], targets=target_health, hours=hours)


def _hours(session, day_ago: datetime, mine: list) -> list[dict]:
    """Per clock hour of the last 24 (the current one last): events received, and events settled done or
    failed (dead, quarantined); `mine` narrows them to one account."""
    starts = [day_ago + i * _HOUR for i in range(_HOURS)]

    def in_hour(column, start: datetime):
        return and_(column >= start, column < start + _HOUR)

    received = session.execute(
        select(*(func.sum(case((in_hour(_inbox.c.received_at, start), 1), else_=0)) for start in starts)).where(
            _inbox.c.received_at >= day_ago, *mine
        )
    ).one()
    settled = session.execute(
        select(
            *(
                func.sum(case((and_(in_hour(_inbox.c.finished_at, start), _inbox.c.status == status), 1), else_=0))
                for status in (EventStatus.DONE.value, *_FAILED)
                for start in starts
            )
        ).where(_inbox.c.finished_at >= day_ago, *mine)
    ).one()
    done, dead, quarantined = (settled[i * _HOURS : (i + 1) * _HOURS] for i in range(3))
    return [
        {
            "start": start,
            "received": int(received[i] or 0),
            "done": int(done[i] or 0),
            "failed": int(dead[i] or 0) + int(quarantined[i] or 0),
        }
        for i, start in enumerate(starts)
    ]
