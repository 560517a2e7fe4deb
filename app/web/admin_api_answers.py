"""What the admin API answers, declared as pydantic models: the schemas of the OpenAPI document's admin part.

They are declared for the document only: the views build the answers (jsonify) from app.core's rows,
and tests/e2e/test_openapi.py holds real answers to these schemas; they are not validated again on
every request (see admin_api.ReadAsAlways).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.core.models import EventStatus
from connectors.base import EventKind

__all__ = [
    "DeadLetterPage",
    "DiscardResult",
    "Error",
    "EventCount",
    "EventDetail",
    "EventPage",
    "ReplayResult",
    "ResyncList",
    "ResyncStarted",
    "Status",
]


class Error(BaseModel):
    """Every error answer, whatever the route: `error` is the snake_case name of the HTTP status (or
    `unauthorized`, `platform_error`, `too_many_attempts`), `message` says what to change."""

    model_config = ConfigDict(extra="forbid")
    error: Annotated[str, Field(pattern="^[a-z_]+$", examples=["bad_request"])]
    message: Annotated[str, Field(examples=["limit: expected a whole number from 1 to 500"])]


StatusCounts = dict[EventStatus, Annotated[int, Field(ge=0)]]


class LastError(BaseModel):
    event_id: str
    status: EventStatus
    error: str
    received_at: datetime


class Status(BaseModel):
    """As `reviewbridge status --json`."""

    events: dict[str, StatusCounts] = Field(description="Events per status, by source.")
    totals: StatusCounts
    oldest_pending_age_s: float | None = Field(description="Age of the oldest `pending` event.")
    dead_letters: int = Field(ge=0)
    last_error: dict[str, LastError] = Field(description="The newest event with an error, by source.")
    rejected_webhooks: dict[str, Annotated[int, Field(ge=0)]] = Field(
        description="`<source>:<reason>` (reason `signature`, `stale` or `unknown_key`) → count."
    )
    rejected_signatures: int = Field(ge=0, description="All rejected webhooks.")


class EventSummary(BaseModel):
    """One inbox event as lists show it."""

    id: int = Field(description="Row id: what `before`, `GET /events/{event_id}` and `ids` take.")
    source: str
    account: str
    event_id: str = Field(description="The platform's event id (or one derived from topic, review id and content).")
    topic: str
    kind: EventKind
    subject_id: str = Field(description="The review (or order) id.")
    status: EventStatus
    outcome: str | None = Field(description="How a settled event ended: `created`, `updated`, `unchanged`…")
    attempts: int = Field(ge=0)
    last_error: str | None
    received_at: datetime
    next_attempt_at: datetime | None
    finished_at: datetime | None


class Attempt(BaseModel):
    id: int
    event_pk: int
    number: int
    worker_id: str
    started_at: datetime
    finished_at: datetime
    status: str
    error: str | None


class LedgerEntry(BaseModel):
    """What ReviewBridge last did for this review at one target."""

    id: int
    source: str
    account: str
    source_review_id: str
    target: str
    target_key: str | None = None
    target_id: str | None = None
    target_version: int | None = None
    content_hash: str | None = None
    source_updated_at: datetime | None = None
    source_sequence: int | None = None
    last_action: str
    last_event_id: str | None = None
    deleted_at: datetime | None = None
    first_synced_at: datetime | None = None
    last_synced_at: datetime | None = None
    last_error: str | None = None


class EventDetail(EventSummary):
    """The event with its payload, its attempts and the ledger rows of the review it names."""

    delivery_id: str | None = Field(description="e.g. Trustoo's `Open-Trustoo-Webhook-RequestId`.")
    occurred_at: datetime
    sequence: int | None
    lease_until: datetime | None
    worker_id: str | None
    waiting_on: str | None = Field(description="The source product a `waiting_for_product` event needs.")
    payload: Any = Field(description="The stored item: JSON when it parses, else the text.")
    attempt_history: list[Attempt]
    ledger: list[LedgerEntry]


class EventPage(BaseModel):
    events: list[EventSummary] = Field(description="Newest first.")
    next_before: int | None = Field(description="Pass as `before` for the next page; null on the last page.")


class DeadLetterPage(EventPage):
    by_reason: dict[str, Annotated[int, Field(ge=1)]] = Field(
        description="Every dead letter (of `source`, if given) counted by the first 120 characters of its error."
    )


class EventCount(BaseModel):
    matching: int = Field(ge=0)
    by_status: dict[EventStatus, Annotated[int, Field(ge=1)]]
    up_to_id: int = Field(ge=0, description="The newest matching event's row id (0 when none matches).")
    replayable: int = Field(ge=0, description="What a replay would move (not pending, not processing).")
    discardable: int = Field(ge=0, description="What a discard would move (all but processing).")
    in_flight: int = Field(ge=0, description="Being processed: left to their worker.")


class ReplayResult(BaseModel):
    replayed: int = Field(ge=0, description="Events made due again (those in flight are left alone).")
    in_flight: int | None = Field(None, ge=0, description="By filter only: matching events left to their worker.")


class DiscardResult(BaseModel):
    discarded: int = Field(ge=0, description="Events settled as discarded (those in flight are left alone).")
    in_flight: int | None = Field(None, ge=0, description="By filter only: matching events left to their worker.")


class AccountRef(BaseModel):
    source: str
    account: str


class ResyncStarted(BaseModel):
    started: list[AccountRef]
    progress: str = Field(description="The `GET /admin/api/resyncs` URL to poll.")


class ResyncCounts(BaseModel):
    counts: dict[str, int] = Field(description="seen, created, updated, unchanged, deleted, hidden, failed…")
    parked: dict[str, int] = Field(description="Reason → reviews waiting for a product or channel.")


class Resync(BaseModel):
    source: str
    account: str
    running: bool = Field(description="True while the newest run of the pair is queued, running or abandoned.")
    state: Literal["queued", "running", "abandoned", "done", "failed"] | None = Field(
        description="The newest run's state; null when the pair has only a checkpoint (a CLI resync)."
    )
    dry_run: bool
    position: str | None = Field(description="The source's page or cursor of the checkpoint.")
    counts: ResyncCounts | None
    requested_at: datetime | None
    started_at: datetime | None = Field(description="Null while the run is queued.")
    updated_at: datetime | None
    finished_at: datetime | None
    error: str | None = Field(description="Why the newest run failed.")
    run_id: int | None = Field(description="The newest run's id (its page: /admin/runs/{run_id}).")


class ResyncList(BaseModel):
    resyncs: list[Resync]
