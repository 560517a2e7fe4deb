"""The tables of running the service: leases and shared rate limits, operators' runs, alerts, and the
admin page's sessions and sign-in failures."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

__all__ = [
    "ACTIVE_RUN_STATES",
    "AdminSession",
    "Alert",
    "Lease",
    "RateLimitBucket",
    "Run",
    "RunJournal",
    "RunState",
    "SignInFailure",
]


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


class RunJournal(SQLModel, table=True):
    """One commercetools review a resync run wrote, with the state before the run's write: what
    `reviewbridge rollback` puts back (app/core/journal.py, app/core/rollback.py). One row per run
    and review key; it lives as long as its run (retention deletes both)."""

    __tablename__ = "run_journal"
    __table_args__ = (
        UniqueConstraint("run_id", "target", "target_key", name="uq_run_journal_review"),
        # A later run's entry for the same review: was it written again after this run?
        Index("ix_run_journal_target_key", "target", "target_key"),
    )

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    )
    run_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    target: str = Field(sa_column=Column(String(32), nullable=False))
    target_key: str = Field(sa_column=Column(String(256), nullable=False))
    source: str = Field(sa_column=Column(String(32), nullable=False))
    account: str = Field(sa_column=Column(String(255), nullable=False))
    source_review_id: str = Field(sa_column=Column(String(255), nullable=False))
    before: str | None = Field(default=None, sa_column=Column(Text))  # JSON: the review; None: there was none
    after: str | None = Field(default=None, sa_column=Column(Text))  # JSON: what the run wrote; None: deleted
    ledger_before: str | None = Field(default=None, sa_column=Column(Text))  # JSON: the ledger row; None: none
    written_at: datetime = Field(nullable=False)
    rolled_back_at: datetime | None = Field(default=None)
    rolled_back_by: int | None = Field(default=None, sa_column=Column(BigInteger))  # the rollback's run


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
