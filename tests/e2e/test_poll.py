"""The periodic poll repairs missed webhooks by itself, once per account across workers."""

from __future__ import annotations

from datetime import timedelta

from app.bootstrap import build_worker, services_of
from app.core import leases
from connectors.commercetools_mapping import review_key
from tests.builders import TRUSTOO_PUBLIC_TOKEN
from tests.e2e.conftest import PRODUCT


def test_poll_brings_in_a_review_whose_webhook_was_lost(synced_app, trustoo, ct):
    emulator, _ = ct
    item = trustoo.add_review(TRUSTOO_PUBLIC_TOKEN, product_id=PRODUCT, rating=5)
    worker = build_worker(services_of(synced_app))
    assert worker.poll() == 1
    assert emulator.review_by_key(review_key("trustoo", TRUSTOO_PUBLIC_TOKEN, str(item["id"])))["rating"] == 5


def test_poll_is_skipped_while_another_worker_holds_the_account(synced_app):
    services = services_of(synced_app)
    assert leases.acquire(
        services.engine, f"poll:trustoo:{TRUSTOO_PUBLIC_TOKEN}", "other-worker", now=services.clock(), ttl_s=600
    )
    assert build_worker(services).poll() == 0


def test_lease_is_free_again_once_it_runs_out(engine, services):
    now = services.clock()
    assert leases.acquire(engine, "job", "a", now=now, ttl_s=60)
    assert not leases.acquire(engine, "job", "b", now=now + timedelta(seconds=59), ttl_s=60)
    assert leases.acquire(engine, "job", "b", now=now + timedelta(seconds=61), ttl_s=60)
    assert leases.acquire(engine, "job", "b", now=now + timedelta(seconds=62), ttl_s=60)  # renewing its own
