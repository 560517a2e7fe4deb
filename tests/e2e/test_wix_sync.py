"""Wix end to end: the Wix emulator's signed webhooks, delivered twice and out of order, reach the
commercetools emulator; fulfilled orders become exactly one review request each."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from app import create_app
from app.bootstrap import build_worker, services_of
from app.core.db import transaction
from app.core.models import InboxEvent
from app.core.review_requests import list_requests
from connectors.commercetools_mapping import review_key
from tests.cli import cli_runner
from tests.e2e.conftest import wix_settings
from tests.fakes.serving import serve_wsgi


@pytest.fixture
def service(ct_environ, wix):
    emulator, url, _ = wix
    app = create_app(
        ct_environ
        | wix_settings(emulator, url)
        | {
            "RETRY_BASE_S": "0.01",
            "RETRY_CAP_S": "1",
        }
    )
    assert cli_runner(app).invoke(args=["setup", "commercetools"]).exit_code == 0
    with serve_wsgi(app) as base_url:
        yield app, f"{base_url}/webhooks/wix"
    services_of(app).engine.dispose()


def _drain_until_settled(app, timeout_s: float = 30) -> None:
    services = services_of(app)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        build_worker(services).drain()
        with transaction(services.engine) as session:
            open_rows = session.execute(
                select(InboxEvent.id).where(InboxEvent.status.in_(("pending", "retry", "processing")))
            ).first()
        if open_rows is None:
            return
        time.sleep(0.05)
    raise AssertionError("events did not settle")


def test_wix_answers_an_empty_200_and_refuses_a_forged_delivery(service, wix):
    _app, url = service
    emulator, _, instance = wix
    review = emulator.add_review(instance)
    good = emulator.review_webhook(instance, review["id"], "created")
    [ok] = emulator.deliver(url, good)
    assert (ok.status, ok.body) == (200, b"") and ok.ok
    [forged] = emulator.deliver(url, emulator.review_webhook(instance, review["id"], "created", wrong_key=True))
    assert forged.status == 401


def test_wix_review_history_delivered_twice_and_shuffled_lands_in_its_final_state(service, wix, ct):
    app, url = service
    emulator, _, instance = wix
    ct_emulator, _ = ct
    review = emulator.add_review(
        instance, rating=4, moderationStatus="IN_MODERATION", title="Solid", body="Sturdy and warm."
    )
    ct_emulator.add_product(key=review["entityId"])
    bodies = [emulator.review_webhook(instance, review["id"], "created")]
    emulator.moderate(instance, review["id"], "APPROVED")
    bodies.append(emulator.review_webhook(instance, review["id"], "moderation_status_changed"))
    emulator.update_review(instance, review["id"], rating=2, body="The handle came off.")
    bodies.append(emulator.review_webhook(instance, review["id"], "updated"))
    emulator.moderate(instance, review["id"], "REJECTED")
    bodies.append(emulator.review_webhook(instance, review["id"], "moderation_status_changed"))
    emulator.moderate(instance, review["id"], "APPROVED")
    bodies.append(emulator.review_webhook(instance, review["id"], "moderation_status_changed"))
    deliveries = emulator.deliver_many(url, bodies, duplicates=2, seed=7)
    assert all(d.ok for d in deliveries)
    _drain_until_settled(app)
    stored = ct_emulator.review_by_key(review_key("wix", instance, review["id"]))
    assert (stored["rating"], stored["text"], stored["includedInStatistics"]) == (2, "The handle came off.", True)

    emulator.delete_review(instance, review["id"])
    emulator.deliver(url, emulator.review_webhook(instance, review["id"], "deleted"), times=2)
    _drain_until_settled(app)
    assert ct_emulator.review_by_key(review_key("wix", instance, review["id"])) is None


def test_wix_rejected_review_is_hidden_in_commercetools(service, wix, ct):
    app, url = service
    emulator, _, instance = wix
    ct_emulator, _ = ct
    review = emulator.add_review(instance, rating=1)
    ct_emulator.add_product(key=review["entityId"])
    emulator.moderate(instance, review["id"], "REJECTED")
    emulator.deliver(url, emulator.review_webhook(instance, review["id"], "moderation_status_changed"))
    _drain_until_settled(app)
    assert ct_emulator.review_by_key(review_key("wix", instance, review["id"]))["includedInStatistics"] is False


def test_twenty_fulfilled_orders_delivered_three_times_with_timeouts_give_twenty_review_requests(service, wix):
    app, url = service
    emulator, _, instance = wix
    bodies = []
    for _ in range(20):
        order = emulator.make_order(instance)
        bodies.append(
            emulator.sign_webhook(
                "wix.ecom.v1.order_fulfilled", instance, emulator.order_fulfilled_event(instance, order)
            )
        )
    emulator.inject(503, times=6, after_apply=True, path_contains="review-requests")  # created, reply lost
    deliveries = emulator.deliver_many(url, bodies, duplicates=3, seed=3)
    assert all(d.ok for d in deliveries)
    _drain_until_settled(app)
    assert len(emulator.review_request_creates) == 20
    requests = list_requests(services_of(app).engine)
    assert len(requests) == 20 and {r["status"] for r in requests} <= {"requested", "adopted"}
    assert sum(r["status"] == "adopted" for r in requests) >= 1


def test_wix_order_without_stores_items_is_skipped_with_the_reason(service, wix):
    app, url = service
    emulator, _, instance = wix
    order = emulator.make_order(instance, stores_items=0, other_items=2)
    emulator.deliver(
        url,
        emulator.sign_webhook("wix.ecom.v1.order_fulfilled", instance, emulator.order_fulfilled_event(instance, order)),
    )
    _drain_until_settled(app)
    [request] = list_requests(services_of(app).engine)
    assert request["status"] == "skipped" and request["reason"]
    assert emulator.review_request_creates == []


def test_wix_review_requests_list_shows_each_order_once(service, wix):
    app, url = service
    emulator, _, instance = wix
    order = emulator.make_order(instance)
    emulator.deliver(
        url,
        emulator.sign_webhook("wix.ecom.v1.order_fulfilled", instance, emulator.order_fulfilled_event(instance, order)),
        times=2,
    )
    _drain_until_settled(app)
    output = cli_runner(app).invoke(args=["wix", "review-requests", "list", "--order", order["id"]]).output
    assert output.count(order["id"]) == 1 and "requested" in output


def test_wix_resync_recovers_reviews_whose_webhooks_were_lost(service, wix, ct):
    import json

    app, _ = service
    emulator, _, instance = wix
    ct_emulator, _ = ct
    kept, edited, gone = (emulator.add_review(instance, rating=5) for _ in range(3))
    for review in (kept, edited, gone):
        ct_emulator.add_product(key=review["entityId"])
    runner = cli_runner(app)
    result = runner.invoke(args=["resync", "wix", "--account", instance, "--json"])
    assert result.exit_code == 0, result.output
    [first] = json.loads(result.output)
    assert first["counts"]["created"] == 3
    emulator.update_review(instance, edited["id"], rating=2)
    emulator.delete_review(instance, gone["id"])
    [second] = json.loads(runner.invoke(args=["resync", "wix", "--account", instance, "--json"]).output)
    assert (second["counts"]["updated"], second["counts"]["deleted"], second["counts"]["unchanged"]) == (1, 1, 1)
    assert ct_emulator.review_by_key(review_key("wix", instance, edited["id"]))["rating"] == 2
    assert ct_emulator.review_by_key(review_key("wix", instance, gone["id"])) is None


def test_a_wix_site_added_by_command_before_its_app_installed_event_is_known_to_every_command(service, wix):
    app, _ = service
    _, _, instance = wix
    runner = cli_runner(app)
    before = runner.invoke(args=["doctor"]).output
    assert (
        runner.invoke(args=["accounts", "add", "wix", "--instance", instance, "--label", "mugs.example"]).exit_code == 0
    )
    listed = runner.invoke(args=["accounts", "list", "--source", "wix"]).output
    after = runner.invoke(args=["doctor"]).output
    removed = runner.invoke(args=["accounts", "remove", "wix", instance])
    assert "✗ wix sites" in before and "no Wix site known yet" in before
    assert instance in listed and "app credentials" in listed and "mugs.example" in listed
    assert "✓ wix site mugs.example" in after and "wix sites" not in after  # named by its label
    assert removed.exit_code == 0 and services_of(app).accounts_of("wix") == []


def test_wix_connection_check_without_sites_says_so_rather_than_not_configured(service):
    from app.core.doctor import check_platform

    app, _ = service
    [check] = check_platform(services_of(app), "wix")
    assert not check.ok and check.detail.startswith("no Wix site known yet")
