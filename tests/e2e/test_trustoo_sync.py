"""Trustoo end to end: the Trustoo emulator's own webhooks reach the commercetools emulator through
ReviewBridge served on loopback; and reviews routed into Trustoo land there exactly once."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest
from sqlalchemy import select

from app import create_app
from app.bootstrap import build_worker, services_of
from app.core import queue, queue_store
from app.core.db import transaction
from app.core.models import InboxEvent
from app.core.pipeline import handle
from connectors.base import Event, EventKind, Review
from connectors.commercetools_mapping import review_key
from tests.builders import TRUSTOO_PUBLIC_TOKEN
from tests.cli import cli_runner
from tests.e2e.conftest import PRODUCT
from tests.fakes.serving import serve_wsgi


@pytest.fixture
def service(environ, ct):
    """ReviewBridge with both targets, served on loopback, Trustoo's webhooks registered to it."""
    _, ct_url = ct
    app = create_app(
        environ
        | {
            "CTP_PROJECT_KEY": "reviewbridge-test",
            "CTP_CLIENT_ID": "ct-client",
            "CTP_CLIENT_SECRET": "ct-secret-0123456789",
            "CTP_API_URL": ct_url,
            "CTP_AUTH_URL": ct_url,
            "ROUTES": "trustoo:commercetools,wix:trustoo",
        }
    )
    runner = cli_runner(app)
    assert runner.invoke(args=["setup", "commercetools"]).exit_code == 0
    with serve_wsgi(app) as base_url:
        result = runner.invoke(args=["trustoo", "webhooks", "register", "--base-url", base_url])
        assert result.output.count("registered") == 3, result.output
        yield app
    services_of(app).engine.dispose()


def _settle(app, trustoo) -> None:
    trustoo.flush_deliveries()
    build_worker(services_of(app)).drain()


def _inbox(app) -> list[InboxEvent]:
    with transaction(services_of(app).engine) as session:
        return list(session.execute(select(InboxEvent).order_by(InboxEvent.id)).scalars())


def test_trustoo_webhooks_register_twice_finds_the_first(service):
    output = cli_runner(service).invoke(args=["trustoo", "webhooks", "list"]).output
    assert output.count("/webhooks/trustoo/review-") == 3


def test_trustoo_review_lifecycle_reaches_commercetools_through_webhooks_alone(service, trustoo, ct):
    emulator, _ = ct
    item = trustoo.add_review(
        TRUSTOO_PUBLIC_TOKEN, product_id=PRODUCT, rating=5, author="Ada Lovelace", content="Keeps the tea hot."
    )
    key = review_key("trustoo", TRUSTOO_PUBLIC_TOKEN, str(item["id"]))
    _settle(service, trustoo)
    assert emulator.review_by_key(key)["rating"] == 5

    time.sleep(1.01)  # Trustoo stamps deliveries in whole seconds
    trustoo.update_review(TRUSTOO_PUBLIC_TOKEN, item["id"], rating=3, content="Lid cracked.")
    _settle(service, trustoo)
    assert (emulator.review_by_key(key)["rating"], emulator.review_by_key(key)["text"]) == (3, "Lid cracked.")

    time.sleep(1.01)
    trustoo.hide_review(TRUSTOO_PUBLIC_TOKEN, item["id"])  # arrives as review/deleted
    _settle(service, trustoo)
    assert emulator.review_by_key(key)["includedInStatistics"] is False

    time.sleep(1.01)
    trustoo.publish_review(TRUSTOO_PUBLIC_TOKEN, item["id"])
    _settle(service, trustoo)
    assert emulator.review_by_key(key)["includedInStatistics"] is True

    time.sleep(1.01)
    trustoo.delete_review_in_admin(TRUSTOO_PUBLIC_TOKEN, item["id"])
    _settle(service, trustoo)
    assert emulator.review_by_key(key) is None
    assert [row.status for row in _inbox(service)] == ["done"] * 5
    assert len(emulator.reviews) == 0


class _WixStandIn:
    """A source that takes event payloads as reviews, for routing tests before the Wix connector."""

    name = "wix"

    def resolve(self, event: Event) -> Review | None:
        return None if event.kind is EventKind.DELETE else Review(**event.payload)

    def echo_key(self, event: Event) -> str | None:
        return None


def _wix_event(review: Review, version: int, at) -> Event:
    payload = {
        field.name: getattr(review, field.name)
        for field in dataclasses.fields(Review)
        if field.name not in ("media", "reply", "created_at", "updated_at", "extra")
    }
    return Event(
        source="wix",
        account="wix-site-1",
        event_id=f"wix-{review.source_id}-{version}",
        kind=EventKind.UPSERT,
        subject_id=review.source_id,
        topic="review_created",
        occurred_at=at,
        payload=payload,
    )


def _route_to_trustoo(service, *events) -> list[str]:
    services = services_of(service)
    deps = dataclasses.replace(
        services,
        sources={**services.sources, "wix": _WixStandIn()},
        retry_base_s=0.01,
        retry_cap_s=0.01,
    )
    queue_store.enqueue(services.engine, "wix", "wix-site-1", list(events), now=services.clock(), quarantine_id="q")
    statuses = []
    for _ in range(10):
        claimed = queue.claim(services.engine, "test", now=services.clock(), lease_s=30)
        if not claimed:
            break
        statuses.append(handle(claimed[0], deps))
        time.sleep(0.02)
    return statuses


def _wix_review(**changes) -> Review:
    base = Review(
        source="wix",
        account="wix-site-1",
        source_id="5f1b2c3d-wix-review",
        product_id=PRODUCT,
        rating=4,
        title="Nice",
        body="Arrived quickly.",
        author_name="Grace Hopper",
    )
    return dataclasses.replace(base, **changes)


def test_review_routed_to_trustoo_is_created_once_even_when_the_reply_is_lost(service, trustoo):
    trustoo.inject(503, after_apply=True, path_contains="create_review")  # stored, then the reply is lost
    statuses = _route_to_trustoo(service, _wix_event(_wix_review(), 1, services_of(service).clock()))
    assert statuses[:2] == ["retry", "done"]  # then perhaps Trustoo's webhook for the copy: an echo
    [wix] = [row for row in _inbox(service) if row.source == "wix"]
    assert (wix.status, wix.attempts) == ("done", 2)
    assert trustoo.create_calls(TRUSTOO_PUBLIC_TOKEN) == 1
    assert [r["author"] for r in trustoo.reviews(TRUSTOO_PUBLIC_TOKEN)] == ["Grace Hopper"]


def test_review_routed_to_trustoo_comes_back_as_a_webhook_and_is_not_sent_on(service, trustoo, ct):
    emulator, _ = ct
    _route_to_trustoo(service, _wix_event(_wix_review(), 1, services_of(service).clock()))
    _settle(service, trustoo)  # Trustoo's review/created for the copy we made
    assert [row.outcome for row in _inbox(service) if row.source == "trustoo"] == ["echo"]
    assert emulator.reviews == {}


def test_edit_of_a_review_routed_to_trustoo_replaces_the_copy(service, trustoo):
    clock = services_of(service).clock
    _route_to_trustoo(service, _wix_event(_wix_review(), 1, clock()))
    time.sleep(0.01)
    _route_to_trustoo(service, _wix_event(_wix_review(rating=2, body="Broke after a week."), 2, clock()))
    [copy] = trustoo.reviews(TRUSTOO_PUBLIC_TOKEN)
    assert (copy["rating"], copy["content"]) == (2, "Broke after a week.")
    assert trustoo.create_calls(TRUSTOO_PUBLIC_TOKEN) == 2


def test_reconcile_of_trustoo_leaves_out_the_copies_we_wrote_there_from_wix(service, trustoo, ct):
    _route_to_trustoo(service, _wix_event(_wix_review(), 1, services_of(service).clock()))
    _settle(service, trustoo)
    result = cli_runner(service).invoke(args=["reconcile", "--source", "trustoo", "--json"])
    assert result.exit_code == 0, result.output  # 3 would be drift: the copy is Wix's review, not Trustoo's
    [report] = json.loads(result.stdout)
    assert (report["compared"], report["counts"], report["copies"]) == (0, {}, 1)


def test_register_at_a_new_address_moves_our_registrations_and_leaves_other_apps_alone(service, trustoo):
    foreign = trustoo.add_webhook(TRUSTOO_PUBLIC_TOKEN, "review/created", "https://other-app.example.com/hooks")
    before = {hook["id"]: hook for hook in trustoo.webhooks()}
    result = cli_runner(service).invoke(
        args=["trustoo", "webhooks", "register", "--base-url", "https://moved.example.com"]
    )
    assert result.exit_code == 0, result.output
    assert [line.split()[0] for line in result.output.splitlines()] == ["moved"] * 3
    after = {hook["id"]: hook for hook in trustoo.webhooks()}
    assert set(after) == set(before)  # updated in place: same ids, nothing created or deleted
    assert after[foreign["id"]]["url"] == "https://other-app.example.com/hooks"
    assert sorted(hook["url"] for id_, hook in after.items() if id_ != foreign["id"]) == [
        f"https://moved.example.com/webhooks/trustoo/review-{name}" for name in ("created", "deleted", "updated")
    ]
    again = cli_runner(service).invoke(
        args=["trustoo", "webhooks", "register", "--base-url", "https://moved.example.com"]
    )
    assert [line.split()[0] for line in again.output.splitlines()] == ["found"] * 3 and {
        hook["id"] for hook in trustoo.webhooks()
    } == set(before)


def test_register_points_at_public_url_when_no_base_url_is_given(service, trustoo, monkeypatch):
    services = services_of(service)
    monkeypatch.setattr(
        services, "settings", dataclasses.replace(services.settings, public_url="https://reviews.example.com")
    )
    result = cli_runner(service).invoke(args=["trustoo", "webhooks", "register"])
    assert [line.split()[0] for line in result.output.splitlines()] == ["moved"] * 3, result.output
    assert {hook["url"].split("/webhooks/")[0] for hook in trustoo.webhooks()} == {"https://reviews.example.com"}


def test_webhooks_list_says_none_when_the_shop_has_no_registrations(service, trustoo):
    for hook in trustoo.webhooks():
        cli_runner(service).invoke(args=["trustoo", "webhooks", "delete", str(hook["id"])])
    assert cli_runner(service).invoke(args=["trustoo", "webhooks", "list"]).output == "none\n"
