"""The tables. Every one of them comes from a migration in `migrations/versions/`.

Times are timezone-aware UTC in Python (`utcnow()`); SQLModel stores them so on both databases.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

__all__ = [
    "ACTIVE_RUN_STATES",
    "OPEN_STATUSES",
    "REPLAYABLE_STATUSES",
    "Account",
    "AdminSession",
    "Alert",
    "Attempt",
    "Checkpoint",
    "EventStatus",
    "InboxEvent",
    "Lease",
    "LedgerEntry",
    "ProductMapping",
    "RateLimitBucket",
    "ReviewRequest",
    "Run",
    "RunState",
    "SignInFailure",
    "WebhookRejection",
    "table",
    "utcnow",
]


def table(model: type[SQLModel]) -> Table:
    """A model's Table, typed: SQLModel creates `__table__` at run time, out of the type checker's sight."""
    return SQLModel.metadata.tables[str(model.__tablename__)]


def utcnow() -> datetime:
    return datetime.now(UTC)


class EventStatus(enum.StrEnum):
    """Where an inbox event stands; the same words appear in the CLI, the admin API and metrics."""

    PENDING = "pending"  # stored, waiting for a worker
    PROCESSING = "processing"  # claimed under a lease
    RETRY = "retry"  # failed, waiting for next_attempt_at
    DONE = "done"  # applied (or found to need nothing)
    DEAD = "dead"  # gave up: attempts exhausted or a person must fix something; replayable
    QUARANTINED = "quarantined"  # verified but unusable; kept with the reason
    WAITING_FOR_PRODUCT = "waiting_for_product"  # no product match yet; a product mapping releases it
    IGNORED = "ignored"  # an event type ReviewBridge does not act on; kept for the record
    DISCARDED = "discarded"  # a person decided it needs no processing, and said why


#: Statuses of events that still have work ahead; later events of the same review wait for them.
OPEN_STATUSES = (EventStatus.PENDING.value, EventStatus.PROCESSING.value, EventStatus.RETRY.value)
#: What a person's replay moves back to pending: every status but pending (due already) and
#: processing (its worker holds it).
REPLAYABLE_STATUSES = tuple(s.value for s in EventStatus if s not in (EventStatus.PENDING, EventStatus.PROCESSING))


# Index predicates, written out: a partial index serves only queries that name the same literals.
_OPEN_EVENT = text("status IN (" + ", ".join(f"'{status}'" for status in OPEN_STATUSES) + ")")
_WAITING_EVENT = text("waiting_on IS NOT NULL")
_HAS_NEXT_ATTEMPT = text("next_attempt_at IS NOT NULL")


class InboxEvent(SQLModel, table=True):
    """One event a platform sent us; the inbox is also the work queue."""

    __tablename__ = "inbox"
    __table_args__ = (
        UniqueConstraint("source", "account", "event_id", name="uq_inbox_source_account_event"),
        # The claim (app/core/queue_claim.py) lists the accounts with open events from this index
        # and reads each account's due events from it in order. Settled rows hold NULL and are not in it.
        Index(
            "ix_inbox_account_due",
            "source",
            "account",
            "next_attempt_at",
            "id",
            postgresql_where=_HAS_NEXT_ATTEMPT,
            sqlite_where=_HAS_NEXT_ATTEMPT,
        ),
        Index("ix_inbox_subject", "source", "account", "subject_id", "id"),
        # The claim asks, for each candidate, whether an earlier event of its review is still open.
        # Only open events are in this index, so it stays small, and it is the planner's obvious
        # choice even before the table has statistics (with none, PostgreSQL once probed the
        # waiting index instead and read the whole inbox for every candidate).
        Index(
            "ix_inbox_open_subject",
            "source",
            "account",
            "subject_id",
            "id",
            postgresql_where=_OPEN_EVENT,
            sqlite_where=_OPEN_EVENT,
        ),
        Index(
            "ix_inbox_waiting",
            "source",
            "account",
            "waiting_on",
            postgresql_where=_WAITING_EVENT,
            sqlite_where=_WAITING_EVENT,
        ),
        # The admin dashboard counts the deliveries of the last hour and day.
        Index("ix_inbox_received_at", "received_at"),
    )

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    )
    source: str = Field(sa_column=Column(String(32), nullable=False))
    account: str = Field(sa_column=Column(String(255), nullable=False))
    event_id: str = Field(sa_column=Column(String(255), nullable=False))
    topic: str = Field(sa_column=Column(String(64), nullable=False))
    kind: str = Field(sa_column=Column(String(16), nullable=False))
    subject_id: str = Field(sa_column=Column(String(255), nullable=False))
    delivery_id: str | None = Field(default=None, sa_column=Column(String(255)))
    occurred_at: datetime = Field(nullable=False)
    sequence: int | None = Field(default=None, sa_column=Column(BigInteger))
    payload: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(sa_column=Column(String(32), nullable=False, index=True))
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default=text("0")))
    #: When a worker may next claim the event: now for new events, after the backoff for retries,
    #: at lease expiry while processing (a dead worker's event comes back), NULL once settled.
    next_attempt_at: datetime | None = Field(default=None)
    lease_until: datetime | None = Field(default=None)
    worker_id: str | None = Field(default=None, sa_column=Column(String(64)))
    outcome: str | None = Field(default=None, sa_column=Column(String(32)))
    #: The source product a waiting_for_product event needs a match for.
    waiting_on: str | None = Field(default=None, sa_column=Column(String(255)))
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    received_at: datetime = Field(nullable=False)
    finished_at: datetime | None = Field(default=None)


class LedgerEntry(SQLModel, table=True):
    """What we last did for one source review at one target: the memory behind "nothing twice"."""

    __tablename__ = "ledger"
    __table_args__ = (
        UniqueConstraint("source", "account", "source_review_id", "target", name="uq_ledger_review_target"),
        # Echo detection: was this review on a platform written there by us?
        Index("ix_ledger_target_id", "target", "target_id"),
        Index("ix_ledger_target_key", "target", "target_key"),
    )

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    )
    source: str = Field(sa_column=Column(String(32), nullable=False))
    account: str = Field(sa_column=Column(String(255), nullable=False))
    source_review_id: str = Field(sa_column=Column(String(255), nullable=False))
    target: str = Field(sa_column=Column(String(32), nullable=False))
    target_key: str | None = Field(default=None, sa_column=Column(String(256)))
    target_id: str | None = Field(default=None, sa_column=Column(String(255)))
    target_version: int | None = Field(default=None, sa_column=Column(BigInteger))
    content_hash: str | None = Field(default=None, sa_column=Column(String(64)))
    source_updated_at: datetime | None = Field(default=None)
    source_sequence: int | None = Field(default=None, sa_column=Column(BigInteger))
    last_action: str = Field(sa_column=Column(String(32), nullable=False))
    last_event_id: str | None = Field(default=None, sa_column=Column(String(255)))
    deleted_at: datetime | None = Field(default=None)
    first_synced_at: datetime = Field(nullable=False)
    last_synced_at: datetime = Field(nullable=False)
    last_error: str | None = Field(default=None, sa_column=Column(Text))


class WebhookRejection(SQLModel, table=True):
    """A count of rejected deliveries per source and reason; the deliveries themselves are not kept."""

    __tablename__ = "webhook_rejection"

    source: str = Field(sa_column=Column(String(32), primary_key=True))
    reason: str = Field(sa_column=Column(String(32), primary_key=True))
    count: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    last_at: datetime = Field(nullable=False)


class ProductMapping(SQLModel, table=True):
    """A source product's product at a target, by key or by id (`reviewbridge products import`)."""

    __tablename__ = "product_map"
    __table_args__ = (
        UniqueConstraint("target", "source", "account", "source_product_id", name="uq_product_map_source_product"),
    )

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    )
    source: str = Field(sa_column=Column(String(32), nullable=False))
    account: str = Field(sa_column=Column(String(255), nullable=False))
    source_product_id: str = Field(sa_column=Column(String(255), nullable=False))
    target: str = Field(
        default="commercetools", sa_column=Column(String(32), nullable=False, server_default="commercetools")
    )
    product_key: str | None = Field(default=None, sa_column=Column(String(256)))
    product_id: str | None = Field(default=None, sa_column=Column(String(64)))
    updated_at: datetime = Field(nullable=False)


class Account(SQLModel, table=True):
    """A platform account (a Trustoo shop, a Wix site) beyond the one the environment names.

    Secrets are stored encrypted with SECRET_KEY (app/core/vault.py) and never printed.
    """

    __tablename__ = "account"
    __table_args__ = (UniqueConstraint("source", "account", name="uq_account_source_account"),)

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    )
    source: str = Field(sa_column=Column(String(32), nullable=False))
    account: str = Field(sa_column=Column(String(255), nullable=False))
    label: str | None = Field(default=None, sa_column=Column(String(255)))
    secret: str | None = Field(default=None, sa_column=Column(Text))  # encrypted
    access_token: str | None = Field(default=None, sa_column=Column(Text))  # encrypted
    refresh_token: str | None = Field(default=None, sa_column=Column(Text))  # encrypted
    token_expires_at: datetime | None = Field(default=None)
    enabled: bool = Field(default=True, sa_column=Column(Boolean, nullable=False, server_default=text("true")))
    created_at: datetime = Field(nullable=False)
    updated_at: datetime = Field(nullable=False)


class ReviewRequest(SQLModel, table=True):
    """One review request per (site, order), reserved before Wix is asked: Wix itself would make two."""

    __tablename__ = "review_request"
    __table_args__ = (UniqueConstraint("source", "account", "order_id", name="uq_review_request_order"),)

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    )
    source: str = Field(sa_column=Column(String(32), nullable=False))
    account: str = Field(sa_column=Column(String(255), nullable=False))
    order_id: str = Field(sa_column=Column(String(255), nullable=False))
    #: reserved → sending → requested | adopted; or skipped / failed, with the reason
    status: str = Field(sa_column=Column(String(32), nullable=False))
    request_id: str | None = Field(default=None, sa_column=Column(String(255)))
    reason: str | None = Field(default=None, sa_column=Column(Text))
    event_id: str | None = Field(default=None, sa_column=Column(String(255)))
    created_at: datetime = Field(nullable=False)
    updated_at: datetime = Field(nullable=False)


class Attempt(SQLModel, table=True):
    """One try at processing an event: who, when, how it ended, and the error if any."""

    __tablename__ = "attempt"
    __table_args__ = (Index("ix_attempt_event", "event_pk", "number"),)

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    )
    event_pk: int = Field(sa_column=Column(BigInteger, nullable=False))
    number: int = Field(sa_column=Column(Integer, nullable=False))
    worker_id: str = Field(sa_column=Column(String(64), nullable=False))
    started_at: datetime = Field(nullable=False)
    finished_at: datetime = Field(nullable=False)
    status: str = Field(sa_column=Column(String(32), nullable=False))
    error: str | None = Field(default=None, sa_column=Column(Text))


class Checkpoint(SQLModel, table=True):
    """Where a resync or poll of one source account got to, so it can resume."""

    __tablename__ = "checkpoint"

    source: str = Field(sa_column=Column(String(32), primary_key=True))
    account: str = Field(sa_column=Column(String(255), primary_key=True))
    name: str = Field(sa_column=Column(String(32), primary_key=True))  # resync | poll
    position: str | None = Field(default=None, sa_column=Column(Text))  # the source's page or cursor
    since: datetime | None = Field(default=None)
    counts: str | None = Field(default=None, sa_column=Column(Text))  # JSON of the run's counts so far
    started_at: datetime | None = Field(default=None)
    updated_at: datetime = Field(nullable=False)
    finished_at: datetime | None = Field(default=None)


class Lease(SQLModel, table=True):
    """A named lease: one holder at a time across worker processes (periodic jobs)."""

    __tablename__ = "lease"

    name: str = Field(sa_column=Column(String(255), primary_key=True))
    holder: str = Field(sa_column=Column(String(64), nullable=False))
    until: datetime = Field(nullable=False)


class RateLimitBucket(SQLModel, table=True):
    """One platform account's token bucket, shared by every process (app/core/rate_limits.py)."""

    __tablename__ = "rate_limit"

    platform: str = Field(sa_column=Column(String(32), primary_key=True))
    account: str = Field(sa_column=Column(String(255), primary_key=True))
    # Epoch seconds: when the next request may go. Earlier than now while tokens are saved up,
    # later while callers queue or a 429's Retry-After runs. Floats, so both databases do the sums.
    free_at: float = Field(sa_column=Column(Float, nullable=False))


class RunState(enum.StrEnum):
    """Where a resync or reconcile run of the admin page or API stands."""

    QUEUED = "queued"  # asked for; waiting for a worker to claim it
    RUNNING = "running"  # claimed by worker_id, which beats updated_at while it works
    DONE = "done"
    FAILED = "failed"  # stopped early; error says why


#: States of runs that are not over: at most one such run per (kind, source, account).
ACTIVE_RUN_STATES = (RunState.QUEUED.value, RunState.RUNNING.value)
_ACTIVE_RUN = text("state IN ('queued', 'running')")


class Run(SQLModel, table=True):
    """A resync or reconcile an operator started (admin page or API); a worker executes it."""

    __tablename__ = "run"
    __table_args__ = (
        # The database refuses a second unfinished run of a kind for one account (app/runs.py: Busy).
        Index(
            "uq_run_active",
            "kind",
            "source",
            "account",
            unique=True,
            postgresql_where=_ACTIVE_RUN,
            sqlite_where=_ACTIVE_RUN,
        ),
        # The claim looks for queued runs and running ones whose heartbeat stopped.
        Index("ix_run_state", "state", "updated_at"),
    )

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    )
    kind: str = Field(sa_column=Column(String(16), nullable=False))  # resync | reconcile
    source: str = Field(sa_column=Column(String(32), nullable=False))
    account: str = Field(sa_column=Column(String(255), nullable=False))
    options: str = Field(sa_column=Column(Text, nullable=False))  # JSON: since, until, dry_run, restart, fix
    state: str = Field(sa_column=Column(String(16), nullable=False))
    requested_at: datetime = Field(nullable=False)
    started_at: datetime | None = Field(default=None)  # first claimed
    updated_at: datetime = Field(nullable=False)  # the worker's heartbeat and progress
    finished_at: datetime | None = Field(default=None)
    worker_id: str | None = Field(default=None, sa_column=Column(String(64)))
    counts: str | None = Field(default=None, sa_column=Column(Text))  # JSON: the progress snapshot
    summary: str | None = Field(default=None, sa_column=Column(Text))  # JSON: failures, or the first drift rows
    error: str | None = Field(default=None, sa_column=Column(Text))


class Alert(SQLModel, table=True):
    """What the alerts (app/core/alerts.py) noticed and sent about one subject: a source account,
    or a whole source (account ""). One row per kind and subject, not one per alert, so the table
    stays as small as the list of accounts; a row with nothing left to say is deleted."""

    __tablename__ = "alert"

    kind: str = Field(sa_column=Column(String(32), primary_key=True))  # dead_letters | pending_age | rejected
    source: str = Field(sa_column=Column(String(32), primary_key=True))
    account: str = Field(sa_column=Column(String(255), primary_key=True))
    #: What the last check found: the dead letters in all, 1 while the queue is late, or the rejected
    #: webhooks counted so far (the start of the current window).
    seen: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    #: Since when: the oldest pending event's arrival, or the start of the rejected-webhook window.
    since: datetime | None = Field(default=None)
    #: Noticed but not sent yet (new dead letters, 1 for a late queue, rejected webhooks in the burst).
    news: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    sent_at: datetime | None = Field(default=None)  # the last alert about this subject: the rate limit


class AdminSession(SQLModel, table=True):
    """A signed-in admin page session (app/core/admin_sessions.py): the cookie carries a random id, the
    row only its SHA-256 (a copy of the table signs nobody in), and a fingerprint of ADMIN_TOKEN."""

    __tablename__ = "admin_session"
    __table_args__ = (Index("ix_admin_session_expires_at", "expires_at"),)  # the prune of ended sessions

    id_hash: str = Field(sa_column=Column(String(64), primary_key=True))
    token_fingerprint: str = Field(sa_column=Column(String(64), nullable=False))
    created_at: datetime = Field(nullable=False)
    expires_at: datetime = Field(nullable=False)  # absolute: using the session does not extend it
    client_address: str | None = Field(default=None, sa_column=Column(String(64)))
    user_agent: str | None = Field(default=None, sa_column=Column(String(120)))


class SignInFailure(SQLModel, table=True):
    """Failed admin sign-ins from one client address, and until when it must wait (app/core/sign_in_limits.py)."""

    __tablename__ = "sign_in_failure"

    address: str = Field(sa_column=Column(String(64), primary_key=True))
    failures: int = Field(sa_column=Column(Integer, nullable=False))
    last_at: datetime = Field(nullable=False)
    blocked_until: datetime | None = Field(default=None)
