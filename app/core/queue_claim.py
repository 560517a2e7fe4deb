"""Which due events a claim takes: a fair share for every account, in one statement.

Many shops share one inbox. Taking the oldest due events first would make one shop's burst (a
retry storm after an outage, thousands of events) a wall in front of every other shop's next
review. So a claim deals in turns instead:

1. the accounts with open events are listed, each once, without reading their events
   (`ix_inbox_account_due`: only rows that will be due some day are in it);
2. each account offers its first due events, oldest first, at most the batch size;
3. every account's first event comes before any account's second, and so on; within a turn the
   accounts are drawn in a random order, so no account is always first.

A shop with one live event therefore waits for one turn, never behind another shop's backlog, and a
shop alone in the queue still gets whole batches.

An event is not offered while an earlier event of the same review is still open, so one review's
events never run at once and apply in arrival order. On PostgreSQL each account's offer is locked
with SKIP LOCKED, so concurrent workers pass each other by instead of queueing or claiming one event
twice; SQLite serialises writers with its own lock (BEGIN IMMEDIATE).
"""

from __future__ import annotations

import functools

from sqlalchemy import bindparam, func, literal_column, select, true, update
from sqlalchemy.sql import Update
from sqlalchemy.sql.selectable import NamedFromClause

from app.core.db import accounts_in
from app.core.models import OPEN_STATUSES, EventStatus, InboxEvent, table

__all__ = ["claim_statement"]

_inbox = table(InboxEvent)


@functools.lru_cache(maxsize=128)
def claim_statement(dialect: str, limit: int, returning: tuple[str, ...]) -> Update:
    """The claim for `dialect`, taking up to `limit` events, with `:now`, `:until` and `:worker_id`
    as parameters. Built once per dialect and batch size: a busy worker claims hundreds of times a
    second, and building the statement cost more than running it."""
    when = _inbox.c.next_attempt_at.type  # the column's own type, so SQLite stores times its way
    due = bindparam("now", type_=when)
    # ix_inbox_account_due holds only rows that will be due some day; its predicate names it.
    heads = accounts_in(dialect, _inbox, lambda rows: rows.c.next_attempt_at.is_not(None), name="heads")

    offer = _inbox.alias("offer")
    earlier = _inbox.alias("earlier")
    # A scalar subquery, not NOT EXISTS: PostgreSQL turns NOT EXISTS into an anti-join, and on a
    # table without statistics it planned one that read all the account's open events for every
    # candidate. A scalar subquery stays a lookup of this one review in ix_inbox_open_subject.
    earlier_open = (
        select(earlier.c.id)
        .where(
            earlier.c.source == offer.c.source,
            earlier.c.account == offer.c.account,
            earlier.c.subject_id == offer.c.subject_id,
            earlier.c.id < offer.c.id,
            # Literal statuses, as the partial index ix_inbox_open_subject names them, so it is used.
            earlier.c.status.in_([literal_column(f"'{status}'") for status in OPEN_STATUSES]),
        )
        .limit(1)
        .scalar_subquery()
    )
    offered = (
        select(offer.c.id, offer.c.next_attempt_at)
        .where(
            offer.c.source == heads.c.source,
            offer.c.account == heads.c.account,
            offer.c.next_attempt_at <= due,
            earlier_open.is_(None),
        )
        .order_by(offer.c.next_attempt_at, offer.c.id)
        .limit(limit)
    )
    mine: NamedFromClause  # the events an account offers
    if dialect == "postgresql":
        mine = offered.with_for_update(skip_locked=True, of=offer).lateral("mine")
        joined = heads.join(mine, true())
    else:  # SQLite has no LATERAL; the correlated IN list is looked up by rowid
        mine = _inbox.alias("mine")
        joined = heads.join(mine, mine.c.id.in_(offered.with_only_columns(offer.c.id).scalar_subquery()))
    turn = func.row_number().over(
        partition_by=(heads.c.source, heads.c.account), order_by=(mine.c.next_attempt_at, mine.c.id)
    )
    ranked = select(mine.c.id, turn.label("turn")).select_from(joined).subquery("ranked")
    chosen = select(ranked.c.id).order_by(ranked.c.turn, func.random()).limit(limit)
    return (
        update(_inbox)
        # Due still: on PostgreSQL a row claimed meanwhile by another worker fails this on recheck.
        .where(_inbox.c.id.in_(chosen.scalar_subquery()), _inbox.c.next_attempt_at <= due)
        .values(
            status=EventStatus.PROCESSING.value,
            lease_until=bindparam("until", type_=when),
            next_attempt_at=bindparam("until", type_=when),
            worker_id=bindparam("worker_id"),
            attempts=_inbox.c.attempts + 1,
        )
        .returning(*(_inbox.c[name] for name in returning))
    )
