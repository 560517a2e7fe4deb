"""One review request per (site, order), whatever the retries, duplicates and lost replies."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from sqlalchemy import select

from app.core import pipeline, queue, queue_store
from app.core.db import transaction
from app.core.models import InboxEvent
from app.core.review_requests import list_requests
from connectors.base import Event, EventKind, FixAndReplayError, PayloadError, RetryableTargetError


class ScriptedWix:
    """The review-request port, with Wix's behaviour: no idempotency, failures on demand."""

    def __init__(self):
        self.created: list[dict] = []
        self.failures: list[Exception] = []
        self.apply_then_fail = False

    def body_for(self, order):
        if not order.get("buyerInfo", {}).get("contactId"):
            raise PayloadError("order has no buyerInfo.contactId: no one to ask")
        return {"namespace": "stores", "order": {"id": order["id"]}}

    def create_review_request(self, instance, body):
        if self.apply_then_fail:
            self.apply_then_fail = False
            self.created.append(body)
            raise RetryableTargetError("timed out", outcome_unknown=True)
        if self.failures:
            raise self.failures.pop(0)
        self.created.append(body)
        return {"reviewRequest": {"id": f"rr-{len(self.created)}", "status": "SCHEDULED"}}

    def query_review_requests(self, instance, *, order_id):
        return [
            {"id": f"rr-{i + 1}", "status": "SCHEDULED"}
            for i, body in enumerate(self.created)
            if body["order"]["id"] == order_id
        ]


def _order_event(order_id: str, at, delivery: int = 0, contact: str | None = "contact-1") -> Event:
    order = {"id": order_id, "buyerInfo": {"contactId": contact} if contact else {}}
    return Event(
        source="wix",
        account="site-1",
        event_id=f"fulfilled-{order_id}-{delivery}",
        kind=EventKind.ORDER,
        subject_id=order_id,
        topic="wix.ecom.v1.order_fulfilled",
        occurred_at=at,
        payload={"order": order},
    )


def _drain(engine, deps) -> list[str]:
    statuses = []
    while claimed := queue.claim(engine, "w1", now=deps.clock(), lease_s=30):
        statuses.append(pipeline.handle(claimed[0], deps))
    return statuses


def _deps(deps, wix, **changes):
    return replace(deps, review_requests=wix, **changes)


def test_wix_order_delivered_three_times_gets_one_review_request(engine, deps, clock):
    wix = ScriptedWix()
    events = [_order_event("order-1", clock(), delivery=n) for n in range(3)]
    queue_store.enqueue(engine, "wix", "site-1", events, now=clock(), quarantine_id="q")
    assert _drain(engine, _deps(deps, wix)) == ["done"] * 3
    assert len(wix.created) == 1
    assert [r["status"] for r in list_requests(engine)] == ["requested"]


def test_wix_lost_reply_is_adopted_not_asked_twice(engine, deps, clock):
    wix = ScriptedWix()
    wix.apply_then_fail = True
    queue_store.enqueue(engine, "wix", "site-1", [_order_event("order-2", clock())], now=clock(), quarantine_id="q")
    assert _drain(engine, _deps(deps, wix)) == ["retry"]
    clock.advance(deps.retry_cap_s)
    assert _drain(engine, _deps(deps, wix)) == ["done"]
    assert len(wix.created) == 1
    [request] = list_requests(engine)
    assert (request["status"], request["request_id"]) == ("adopted", "rr-1")


def test_wix_order_without_a_contact_is_skipped_with_the_reason(engine, deps, clock):
    wix = ScriptedWix()
    queue_store.enqueue(
        engine, "wix", "site-1", [_order_event("order-3", clock(), contact=None)], now=clock(), quarantine_id="q"
    )
    assert _drain(engine, _deps(deps, wix)) == ["done"]
    [request] = list_requests(engine)
    assert request["status"] == "skipped" and "contactId" in request["reason"] and wix.created == []


def test_wix_permanent_error_is_recorded_with_its_code(engine, deps, clock):
    wix = ScriptedWix()
    error = FixAndReplayError("Wix refused: ORDER_NOT_FOUND")
    error.code = "ORDER_NOT_FOUND"
    wix.failures.append(error)
    queue_store.enqueue(engine, "wix", "site-1", [_order_event("order-4", clock())], now=clock(), quarantine_id="q")
    assert _drain(engine, _deps(deps, wix)) == ["dead"]
    assert list_requests(engine)[0]["reason"] == "ORDER_NOT_FOUND"


def test_wix_review_request_waits_for_the_configured_delay(engine, deps, clock):
    wix = ScriptedWix()
    queue_store.enqueue(engine, "wix", "site-1", [_order_event("order-5", clock())], now=clock(), quarantine_id="q")
    delayed = _deps(deps, wix, review_request_delay_s=3 * 86400)
    assert _drain(engine, delayed) == ["pending"]
    with transaction(engine) as session:
        row = session.execute(select(InboxEvent)).scalar_one()
    assert row.next_attempt_at == clock() + timedelta(days=3) and row.attempts == 0
    clock.advance(3 * 86400)
    assert _drain(engine, delayed) == ["done"] and len(wix.created) == 1


def test_wix_app_installed_and_removed_register_and_disable_the_site(engine, deps, clock):
    from app.core.accounts import list_accounts

    events = [
        Event(
            source="wix",
            account="site-9",
            event_id=f"app-{action}",
            kind=EventKind.ACCOUNT,
            subject_id="site-9",
            topic=topic,
            occurred_at=clock(),
            payload={"action": action},
        )
        for action, topic in (("installed", "AppInstalled"), ("removed", "AppRemoved"))
    ]
    queue_store.enqueue(engine, "wix", "site-9", events[:1], now=clock(), quarantine_id="q")
    _drain(engine, deps)
    assert [(a.account, a.enabled) for a in list_accounts(engine, "wix")] == [("site-9", True)]
    queue_store.enqueue(engine, "wix", "site-9", events[1:], now=clock(), quarantine_id="q")
    _drain(engine, deps)
    assert [(a.account, a.enabled) for a in list_accounts(engine, "wix")] == [("site-9", False)]
