"""Many shops on one deployment: one shop's bulk work (a resync run) holds up no live review, neither
another shop's nor its own."""

from __future__ import annotations

import time

import pytest

from app.bootstrap import build_worker, services_of
from app.core import accounts, runs
from app.core.models import RunState, utcnow
from connectors.commercetools_mapping import review_key
from tests.builders import TRUSTOO_PRIVATE_TOKEN, TRUSTOO_PUBLIC_TOKEN, trustoo_body, trustoo_headers, trustoo_review
from tests.e2e.conftest import PRODUCT
from tests.fakes.trustoo import TrustooEmulator

SHOP_B = ("shop-b-public-token", "trustoo-private-shop-b-0123456789")


@pytest.fixture
def trustoo():
    """The Trustoo emulator with two shops: the environment's and shop B (added as accounts add does)."""
    emulator = TrustooEmulator(
        shops={TRUSTOO_PUBLIC_TOKEN: TRUSTOO_PRIVATE_TOKEN, SHOP_B[0]: SHOP_B[1]}, retry_delays_s=(0,) * 10
    )
    yield emulator
    emulator.close()


def _deliver(client, shop: tuple[str, str], item: dict) -> None:
    body = trustoo_body(item)
    headers = trustoo_headers(body, public_token=shop[0], private_token=shop[1], request_id=f"live-{item['id']}")
    response = client.post("/webhooks/trustoo/review-created", data=body, headers=headers)
    assert response.status_code == 200, response.data


def test_live_reviews_of_any_shop_land_within_seconds_while_a_resync_of_one_shop_runs(synced_app, trustoo, ct):
    emulator, _ = ct
    emulator.latency_s = 0.02  # about 40 ms per review written: the resync below takes many seconds
    for _ in range(300):
        trustoo.add_review(TRUSTOO_PUBLIC_TOKEN, product_id=PRODUCT, rating=5)
    services = services_of(synced_app)
    accounts.add(services.engine, services.vault, source="trustoo", account=SHOP_B[0], secret=SHOP_B[1], now=utcnow())
    [run_id] = runs.request(services.engine, "resync", "trustoo", [TRUSTOO_PUBLIC_TOKEN], {}, now=utcnow())
    worker = build_worker(services)
    worker.start()
    try:
        _wait(lambda: _written(services, run_id) >= 20, "the resync to be under way")
        live = {
            TRUSTOO_PUBLIC_TOKEN: trustoo_review(product_id=PRODUCT),
            SHOP_B[0]: trustoo_review(product_id=PRODUCT),
        }
        client = synced_app.test_client()
        _deliver(client, (TRUSTOO_PUBLIC_TOKEN, TRUSTOO_PRIVATE_TOKEN), live[TRUSTOO_PUBLIC_TOKEN])
        _deliver(client, SHOP_B, live[SHOP_B[0]])
        delivered = time.monotonic()
        keys = [review_key("trustoo", shop, str(item["id"])) for shop, item in live.items()]
        _wait(lambda: all(emulator.review_by_key(key) for key in keys), "both live reviews to land")
        landed_s = time.monotonic() - delivered
        run = runs.get(services.engine, run_id, now=utcnow())
    finally:
        worker.stop(timeout_s=5)
    assert landed_s < 3.0
    assert run is not None and run.state == RunState.RUNNING.value, "the resync had not finished: it was no wall"


def _written(services, run_id: int) -> int:
    run = runs.get(services.engine, run_id, now=utcnow())
    return 0 if run is None or not run.counts else int(run.counts.get("counts", {}).get("created", 0))


def _wait(condition, what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
