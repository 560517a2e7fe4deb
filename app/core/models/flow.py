"""The tables of a review's path: the inbox (also the work queue) and its attempts, rejected webhooks,
the ledger and its links of merged reviews, source accounts, product mappings, review requests and
resync checkpoints."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

__all__ = [
    "OPEN_STATUSES",
    "REPLAYABLE_STATUSES",
    "Account",
    "Attempt",
    "Checkpoint",
    "EventStatus",
    "InboxEvent",
    "LedgerEntry",
    "ProductMapping",
    "ReviewLink",
    "ReviewRequest",
    "WebhookRejection",
]


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


class ReviewLink(SQLModel, table=True):
    """A source review linked to the one target review it shows as (CROSS_SOURCE_IDENTITY): reviews of
    several sources that are the same review share a `target_key`. It keeps what the merge needs and
    the ledger does not: the identity (a digest) and the review as the source last told it."""

    __tablename__ = "review_link"
    __table_args__ = (
        UniqueConstraint("target", "source", "account", "source_review_id", name="uq_review_link_review"),
        Index("ix_review_link_identity", "target", "identity"),
        Index("ix_review_link_target_key", "target", "target_key"),
    )

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    )
    target: str = Field(sa_column=Column(String(32), nullable=False))
    source: str = Field(sa_column=Column(String(32), nullable=False))
    account: str = Field(sa_column=Column(String(255), nullable=False))
    source_review_id: str = Field(sa_column=Column(String(255), nullable=False))
    target_key: str = Field(sa_column=Column(String(256), nullable=False))
    #: The CROSS_SOURCE_IDENTITY rule the identity was taken under, and the identity (None: it has none).
    mode: str = Field(sa_column=Column(String(16), nullable=False))
    identity: str | None = Field(default=None, sa_column=Column(String(64)))
    #: The review as its source last told (JSON, without the author's e-mail); None once deleted there.
    review: str | None = Field(default=None, sa_column=Column(Text))
    #: Counts every change of the row: a merge that read the group re-reads when a count moved.
    revision: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default=text("0")))
    linked_at: datetime = Field(nullable=False)
    updated_at: datetime = Field(nullable=False)


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
