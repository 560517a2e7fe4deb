"""A fulfilled order becomes exactly one review request. Wix documents no idempotency for the
call, so the guarantee is ours:

    reserve the (site, order) row ──▶ skipped (no contact, no Wix Stores items) — with the reason
                                  ──▶ sending ──▶ requested (Wix's id)
                                        │ outcome unknown (timeout, 5xx) ──▶ next attempt asks Wix
                                        │   for the order's requests first and adopts one it finds
                                        └ a permanent error (ORDER_NOT_FOUND, …) ──▶ failed — the code as reason
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Engine, select, update

from app.core.db import insert_for, transaction
from app.core.ledger import Outcome
from app.core.models import ReviewRequest, table
from connectors.base import Event, FixAndReplayError, PayloadError

__all__ = ["Deferred", "ReviewRequester", "ReviewRequests", "handle_order", "list_requests"]

_requests = table(ReviewRequest)
_SETTLED = ("requested", "adopted", "skipped", "failed")


class ReviewRequester(Protocol):
    def create_review_request(self, instance: str, body: Mapping[str, Any]) -> Mapping[str, Any]: ...
    def query_review_requests(self, instance: str, *, order_id: str) -> Sequence[Mapping[str, Any]]: ...


class ReviewRequests(ReviewRequester, Protocol):
    """A requester that also knows what to ask for an order (Wix: app/core/wix.py)."""

    def body_for(self, order: Mapping[str, Any]) -> dict: ...


class Deferred(Exception):
    """Not yet: try again at `until` (WIX_REVIEW_REQUEST_DELAY); waiting is no failed attempt."""

    def __init__(self, until: datetime):
        super().__init__(f"review request waits until {until.isoformat()}")
        self.until = until


@dataclass(frozen=True)
class _Row:
    status: str
    request_id: str | None


def handle_order(
    event: Event,
    *,
    engine: Engine,
    requester: ReviewRequester,
    body_for: Callable[[Mapping[str, Any]], dict],
    delay_s: int,
    clock: Callable[[], datetime],
) -> Outcome:
    """Ask for one review for the order the event names; return how it ended."""
    if delay_s and clock() < event.occurred_at + timedelta(seconds=delay_s):
        raise Deferred(event.occurred_at + timedelta(seconds=delay_s))
    order = event.payload.get("order", event.payload)
    order_id = event.subject_id
    row = _reserve(engine, event, order_id, now=clock())
    if row.status in _SETTLED:
        if row.status in ("requested", "adopted"):
            return Outcome.ALREADY_REQUESTED
        return Outcome.REQUEST_SKIPPED if row.status == "skipped" else Outcome.REQUEST_FAILED
    if row.status == "sending":
        # An earlier attempt may have reached Wix: a request that exists is ours, not a reason to ask twice.
        found = [
            r
            for r in requester.query_review_requests(event.account, order_id=order_id)
            if str(r.get("status", "")).upper() != "CANCELED"
        ]
        if found:
            _settle(engine, event, order_id, "adopted", request_id=str(found[0].get("id")), now=clock())
            return Outcome.REQUEST_ADOPTED
    try:
        body = body_for(order)
    except PayloadError as exc:
        _settle(engine, event, order_id, "skipped", reason=exc.reason, now=clock())
        return Outcome.REQUEST_SKIPPED
    _settle(engine, event, order_id, "sending", now=clock())
    try:
        created = requester.create_review_request(event.account, body)
    except FixAndReplayError as exc:
        _settle(engine, event, order_id, "failed", reason=getattr(exc, "code", None) or str(exc), now=clock())
        raise
    request = created.get("reviewRequest", created)
    _settle(engine, event, order_id, "requested", request_id=str(request.get("id")), now=clock())
    return Outcome.REVIEW_REQUESTED


def list_requests(engine: Engine, *, order_id: str | None = None, limit: int = 200) -> list[dict]:
    query = select(_requests).order_by(_requests.c.id.desc()).limit(limit)
    if order_id is not None:
        query = query.where(_requests.c.order_id == order_id)
    with transaction(engine) as session:
        return [dict(row) for row in session.execute(query).mappings()]


def _reserve(engine: Engine, event: Event, order_id: str, *, now: datetime) -> _Row:
    """The order's row, made on first sight by the unique constraint (never looked up first)."""
    statement = (
        insert_for(engine, _requests)
        .values(
            source=event.source,
            account=event.account,
            order_id=order_id,
            status="reserved",
            event_id=event.event_id,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["source", "account", "order_id"])
    )
    with transaction(engine) as session:
        session.execute(statement)
        row = session.execute(
            select(_requests.c.status, _requests.c.request_id).where(
                _requests.c.source == event.source,
                _requests.c.account == event.account,
                _requests.c.order_id == order_id,
            )
        ).one()
    return _Row(status=row.status, request_id=row.request_id)


def _settle(
    engine: Engine,
    event: Event,
    order_id: str,
    status: str,
    *,
    now: datetime,
    request_id: str | None = None,
    reason: str | None = None,
) -> None:
    statement = (
        update(_requests)
        .where(
            _requests.c.source == event.source,
            _requests.c.account == event.account,
            _requests.c.order_id == order_id,
        )
        .values(status=status, request_id=request_id, reason=reason, event_id=event.event_id, updated_at=now)
    )
    with transaction(engine) as session:
        session.execute(statement)
