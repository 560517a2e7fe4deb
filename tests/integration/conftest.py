from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from connectors.base import Event, EventKind
from connectors.trustoo import TrustooSource, TrustooWebhookVerifier


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime | None = None):
        self.now = start or datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def deps(services, target, clock):
    # The pipeline on its own: the Trustoo source without an Open API, so events are taken as sent.
    sources = {"trustoo": TrustooSource(TrustooWebhookVerifier({"shop-a": ["unused-private-token"]}))}
    return dataclasses.replace(
        services,
        sources=sources,
        targets=[target],
        clock=clock,
        routes=None,
        review_requests=None,
        review_request_delay_s=0,
        max_attempts=3,
        retry_base_s=1.0,
        retry_cap_s=60.0,
    )


def make_event(
    review_id: str,
    *,
    kind: EventKind = EventKind.UPSERT,
    at: datetime,
    version: int = 0,
    account: str = "shop-a",
    payload: dict | None = None,
    sequence: int | None = None,
) -> Event:
    item = (
        payload if payload is not None else {"id": review_id, "rating": 5, "content": f"v{version}", "product_id": "42"}
    )
    topic = "review/deleted" if kind is EventKind.DELETE else "review/updated"
    return Event(
        source="trustoo",
        account=account,
        event_id=f"{topic}:{review_id}:{version}",
        kind=kind,
        subject_id=review_id,
        topic=topic,
        occurred_at=at,
        payload=item,
        sequence=sequence,
    )
