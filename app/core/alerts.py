"""Alerts: a message to a Slack-compatible webhook (ALERT_WEBHOOK_URL) when something needs a person.

Three conditions, read from the database at each check:

- **dead letters**, per source account: each new dead letter is told once. The row remembers how
  many there were; more is news, fewer (replayed, discarded) lowers the mark.
- **a late queue**, per source account: the oldest event still to be done (pending, or waiting for
  a retry) is older than ALERT_PENDING_AGE.
  Told once when the account falls behind; again only after it caught up and fell behind anew.
- **rejected webhooks**, per source (bad signature, stale timestamp, unknown key): at least
  ALERT_SIGNATURE_FAILURES within ALERT_SIGNATURE_WINDOW, counted from the last quiet check.

A check notices, then sends. Noticing compares the database with the `alert` rows and writes the
news down. Sending posts, in one message, the news of every subject whose last alert is older than
ALERT_MIN_INTERVAL; what arrives meanwhile is folded into the next message. A message that fails
stays news and goes at a later check. Many worker processes on many machines check; a lease lets
one of them check at a time, so each piece of news is noticed once and sent once (a crash between
the post and its bookkeeping can send it twice; it can never lose it).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlencode

from sqlalchemy import Engine, delete, func, or_, select, update

from app.core import leases
from app.core.db import insert_for, transaction
from app.core.models import Alert, EventStatus, WebhookRejection, table
from app.core.status import AccountGauges, account_gauges
from connectors.base import TargetError

__all__ = ["CHECK_EVERY_S", "LEASE", "Due", "Kind", "Rules", "Webhook", "check", "compose"]

log = logging.getLogger(__name__)

#: How often the worker checks. The lease outlives a check (a post times out within seconds) and
#: runs out before the next, so one process at a time checks and any may take over.
CHECK_EVERY_S = 60
LEASE = "alerts"
_LEASE_S = CHECK_EVERY_S - 5
#: Sections in one message: Slack takes 50 blocks; beyond these a line says how many more.
_MAX_SECTIONS = 20

_alerts = table(Alert)
_rejections = table(WebhookRejection)


class Kind(enum.StrEnum):
    DEAD_LETTERS = "dead_letters"
    PENDING_AGE = "pending_age"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Rules:
    """The thresholds (0 turns a condition off) and where links point."""

    sources: Sequence[str]  # the webhook sources, watched for rejections from the first check on
    pending_age_s: int = 1800
    rejected: int = 20
    rejected_window_s: int = 300
    min_interval_s: int = 900
    public_url: str | None = None  # without it, a link is the admin page's path


class Webhook(Protocol):
    def post(self, message: dict[str, Any]) -> None:
        """Deliver the message or raise a TargetError (kept, tried again at the next check)."""


@dataclass(frozen=True)
class _Row:
    seen: int = 0
    since: datetime | None = None
    news: int = 0
    sent_at: datetime | None = None


_Key = tuple[str, str, str]  # kind, source, account


@dataclass(frozen=True)
class Due:
    """An alert to send: its subject and what the row says about it."""

    kind: Kind
    source: str
    account: str
    seen: int
    since: datetime | None
    news: int


def check(engine: Engine, webhook: Webhook, rules: Rules, *, holder: str, now: datetime) -> int:
    """Notice and send; return how many subjects were alerted (0 too while another process checks)."""
    if not leases.acquire(engine, LEASE, holder, now=now, ttl_s=_LEASE_S):
        return 0
    gauges = account_gauges(engine, now=now)
    _notice(engine, rules, gauges, _rejected_by_source(engine), now=now)
    return _send(engine, webhook, rules, gauges, now=now)


# --- noticing -------------------------------------------------------------------------------


def _rejected_by_source(engine: Engine) -> dict[str, int]:
    with transaction(engine) as session:
        rows = session.execute(
            select(_rejections.c.source, func.sum(_rejections.c.count)).group_by(_rejections.c.source)
        ).all()
    return {source: int(count) for source, count in rows}


def _notice(
    engine: Engine, rules: Rules, gauges: Sequence[AccountGauges], rejected: Mapping[str, int], *, now: datetime
) -> None:
    with transaction(engine) as session:
        rows = {
            (row.kind, row.source, row.account): _Row(row.seen, row.since, row.news, row.sent_at)
            for row in session.execute(select(_alerts))
        }
        changed: dict[_Key, _Row] = {}

        def note(key: _Key, row: _Row) -> None:
            if rows.get(key) != row and (key in rows or row != _Row()):
                changed[key] = row

        dead = {(Kind.DEAD_LETTERS.value, g.source, g.account): g.dead_letters for g in gauges if g.dead_letters}
        for key in _keys(rows, Kind.DEAD_LETTERS, dead):
            note(key, _dead_letters(rows.get(key, _Row()), dead.get(key, 0)))
        if rules.pending_age_s:
            late = {
                (Kind.PENDING_AGE.value, g.source, g.account): g.oldest_open_age_s
                for g in gauges
                if g.oldest_open_age_s is not None and g.oldest_open_age_s >= rules.pending_age_s
            }
            for key in _keys(rows, Kind.PENDING_AGE, late):
                note(key, _pending_age(rows.get(key, _Row()), late.get(key), now))
        if rules.rejected:
            for source in sorted(set(rules.sources) | set(rejected)):
                key = (Kind.REJECTED.value, source, "")
                note(key, _rejected(rows.get(key), rejected.get(source, 0), rules, now))

        for (kind, source, account), row in sorted(changed.items()):
            values = {"seen": row.seen, "since": row.since, "news": row.news}
            statement = insert_for(engine, _alerts).values(kind=kind, source=source, account=account, **values)
            session.execute(statement.on_conflict_do_update(index_elements=["kind", "source", "account"], set_=values))
        # A subject with nothing to say and no rate limit left to keep has no row: the table stays small.
        session.execute(
            delete(_alerts).where(
                _alerts.c.kind.in_([Kind.DEAD_LETTERS.value, Kind.PENDING_AGE.value]),
                _alerts.c.seen == 0,
                _alerts.c.news == 0,
                or_(_alerts.c.sent_at.is_(None), _alerts.c.sent_at <= now - timedelta(seconds=rules.min_interval_s)),
            )
        )
    for key, row in changed.items():
        if row.news > rows.get(key, _Row()).news:
            log.info("alert noticed: %s %s %s", *key)


def _keys(rows: Mapping[_Key, _Row], kind: Kind, found: Mapping[_Key, object]) -> list[_Key]:
    """The subjects of a kind to look at: those found now and those a row remembers."""
    return sorted(set(found) | {key for key in rows if key[0] == kind.value})


def _dead_letters(row: _Row, count: int) -> _Row:
    return _Row(seen=count, news=row.news + max(0, count - row.seen), sent_at=row.sent_at)


def _pending_age(row: _Row, age_s: float | None, now: datetime) -> _Row:
    if age_s is None:
        # Caught up: an alert not sent yet would be out of date.
        return _Row(sent_at=row.sent_at)
    since = now - timedelta(seconds=age_s)
    return _Row(seen=1, since=since, news=row.news if row.seen else 1, sent_at=row.sent_at)


def _rejected(row: _Row | None, count: int, rules: Rules, now: datetime) -> _Row:
    if row is None:
        # The first look: what was rejected before alerts were on is history, not a burst.
        return _Row(seen=count, since=now)
    burst = count - row.seen
    if burst >= rules.rejected:
        return _Row(seen=count, since=now, news=row.news + burst, sent_at=row.sent_at)
    if burst <= 0 or row.since is None or now - row.since >= timedelta(seconds=rules.rejected_window_s):
        # Quiet (or the counts were reset), or too slow to be a burst: the window starts again here.
        return _Row(seen=count, since=now, news=row.news, sent_at=row.sent_at)
    return row


# --- sending --------------------------------------------------------------------------------


def _send(engine: Engine, webhook: Webhook, rules: Rules, gauges: Sequence[AccountGauges], *, now: datetime) -> int:
    quiet_since = now - timedelta(seconds=rules.min_interval_s)
    with transaction(engine) as session:
        due = [
            Due(Kind(row.kind), row.source, row.account, row.seen, row.since, row.news)
            for row in session.execute(
                select(_alerts)
                .where(_alerts.c.news > 0, or_(_alerts.c.sent_at.is_(None), _alerts.c.sent_at <= quiet_since))
                .order_by(_alerts.c.kind, _alerts.c.source, _alerts.c.account)
            )
        ]
    if not due:
        return 0
    statuses = {(g.source, g.account): g.oldest_open_status for g in gauges}
    try:
        webhook.post(compose(due, rules, statuses, now=now))
    except TargetError as exc:
        log.warning("alert about %d subject(s) not sent, kept for the next check: %s", len(due), exc)
        return 0
    with transaction(engine) as session:
        for item in due:
            session.execute(
                update(_alerts)
                .where(
                    _alerts.c.kind == item.kind.value,
                    _alerts.c.source == item.source,
                    _alerts.c.account == item.account,
                )
                .values(news=_alerts.c.news - item.news, sent_at=now)
            )
    log.info("alert sent about %d subject(s)", len(due))
    return len(due)


def compose(
    due: Iterable[Due],
    rules: Rules,
    statuses: Mapping[tuple[str, str], str | None],
    *,
    now: datetime,
) -> dict[str, Any]:
    """A Slack-compatible message: `text` alone says everything (receivers that ignore blocks, and
    notifications, show it), and `blocks` lay it out, each alert with its link."""
    items = [(_summary(item, rules, statuses, now), _link(item, rules, statuses)) for item in due]
    heading = f"ReviewBridge: {len(items)} alert{'s' if len(items) != 1 else ''}"
    text = "\n".join([heading, *(f"• {summary}: {link}" for summary, link in items)])
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": heading}}]
    for summary, link in items[:_MAX_SECTIONS]:
        shown = f"<{link}|open in the admin page>" if link.startswith("http") else f"admin page: `{link}`"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"{_escape(summary)}\n{shown}"}})
    if len(items) > _MAX_SECTIONS:
        more = f"… and {len(items) - _MAX_SECTIONS} more (see the text of this message)"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": more}]})
    return {"text": text, "blocks": blocks}


def _summary(item: Due, rules: Rules, statuses: Mapping[tuple[str, str], str | None], now: datetime) -> str:
    where = f"{item.source} {item.account}"
    if item.kind is Kind.DEAD_LETTERS:
        plural = "s" if item.news != 1 else ""
        return f"{item.news} new dead letter{plural} at {where} ({item.seen} in all)"
    if item.kind is Kind.PENDING_AGE:
        waited = _duration((now - item.since).total_seconds()) if item.since else "long"
        oldest = "retrying" if statuses.get((item.source, item.account)) == EventStatus.RETRY.value else "pending"
        after = _duration(rules.pending_age_s)
        return f"the oldest {oldest} event at {where} has waited {waited} (alert after {after})"
    return (
        f"{item.news} {item.source} webhooks rejected (bad signature, stale timestamp or unknown key), "
        f"{rules.rejected}+ within {_duration(rules.rejected_window_s)}"
    )


def _link(item: Due, rules: Rules, statuses: Mapping[tuple[str, str], str | None]) -> str:
    kind, source, account = item.kind, item.source, item.account
    if kind is Kind.REJECTED:
        path = "/admin/connections"  # rejections in a burst are most often a wrong or rotated secret
    else:
        status = (
            EventStatus.DEAD.value
            if kind is Kind.DEAD_LETTERS
            else statuses.get((source, account)) or EventStatus.PENDING.value
        )
        path = "/admin/events?" + urlencode({"status": status, "source": source, "account": account})
    return f"{rules.public_url.rstrip('/')}{path}" if rules.public_url else path


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 1:
        return f"{int(seconds)} s"
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


def _escape(text: str) -> str:
    """Slack's mrkdwn reads &, < and > as markup; an account name must show as it is."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
