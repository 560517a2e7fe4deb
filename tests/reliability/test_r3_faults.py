"""R3 faults: 30 % of the calls to each platform fail, and everything still converges with nothing
written twice.

- commercetools: fail_rate=0.3, i.e. 503, 502 and 429 (Retry-After: 1), half of the failed writes
  applied before the reply is lost;
- Wix: fail_rate=0.3 on its API (review requests: 500, 503, 504, 429, half of the failed creates
  applied before the reply is lost);
- Trustoo: fail_rate=0.3 on its Open API, which the app reads to tell a hidden review from a
  deleted one.

Full: 1,000 Trustoo reviews (one in five then deleted) and 100 fulfilled Wix orders, each order
delivered twice. Reduced: 60 reviews and 12 orders. The queue retries quickly (RETRY_BASE_S=0.01,
RETRY_CAP_S=1) and never gives up (MAX_ATTEMPTS=100): the scenario is about convergence.
"""

from __future__ import annotations

import random
import time
from collections import Counter

import pytest

from app.bootstrap import services_of
from app.core.review_requests import list_requests
from tests.builders import TRUSTOO_PUBLIC_TOKEN
from tests.reliability.conftest import (
    PRODUCT,
    drain_until_settled,
    inbox_counts,
    make_app,
    post_trustoo,
    post_wix,
    report,
    scale,
    signed_trustoo,
    trustoo_key,
)

REVIEWS = scale(60, 1000)
ORDERS = scale(12, 100)
FAIL_RATE = 0.3


@pytest.fixture
def faulty_app(wix_environ):
    app = make_app(wix_environ | {"RETRY_BASE_S": "0.01", "RETRY_CAP_S": "1", "MAX_ATTEMPTS": "100"})
    yield app
    services_of(app).engine.dispose()


def test_thirty_percent_faults_on_every_platform_converge_with_nothing_twice(faulty_app, ct, wix, trustoo):
    ct_emulator, _ = ct
    wix_emulator, _, instance = wix
    client = faulty_app.test_client()
    rng = random.Random(3)
    base = int(time.time()) - 60
    shop = trustoo.shop_info(TRUSTOO_PUBLIC_TOKEN)

    kept, deleted = [], []
    for index in range(REVIEWS):
        review_id = 660_000_001 + index
        item = {
            "id": review_id,
            **shop,
            **trustoo.add_review(
                TRUSTOO_PUBLIC_TOKEN,
                id=review_id,
                product_id=PRODUCT,
                rating=rng.randint(1, 5),
                content=f"Review {index}",
            ),
        }
        post_trustoo(client, "review-created", *signed_trustoo([item], base, request_id=f"c{review_id}"))
        if index % 5 == 4:
            trustoo.delete_review_in_admin(TRUSTOO_PUBLIC_TOKEN, review_id)
            post_trustoo(client, "review-deleted", *signed_trustoo([item], base + 1, request_id=f"d{review_id}"))
            deleted.append(trustoo_key(review_id))
        else:
            kept.append(trustoo_key(review_id))

    order_bodies = []
    for _ in range(ORDERS):
        order = wix_emulator.make_order(instance)
        order_bodies.append(
            wix_emulator.sign_webhook(
                "wix.ecom.v1.order_fulfilled", instance, wix_emulator.order_fulfilled_event(instance, order)
            )
        )
    for body in order_bodies * 2:
        post_wix(client, body)

    ct_emulator.fail_rate = wix_emulator.fail_rate = trustoo.fail_rate = FAIL_RATE
    started = time.perf_counter()
    try:
        rounds = drain_until_settled(faulty_app, timeout_s=scale(120, 1200), threads=8)
    finally:
        ct_emulator.fail_rate = wix_emulator.fail_rate = trustoo.fail_rate = 0.0
    took_s = time.perf_counter() - started

    ct_failures = sum(r.status >= 500 or r.status == 429 for r in ct_emulator.requests)
    wix_failures = sum(r.status >= 500 or r.status == 429 for r in wix_emulator.requests)
    creates = wix_emulator.review_request_creates
    per_order = Counter(str(r.get("order")) for r in wix_emulator.review_requests(instance))
    writes = {key: ct_emulator.writes_for(key) for key in kept + deleted}
    requests = list_requests(services_of(faulty_app).engine)
    report(
        "R3 faults",
        reviews=REVIEWS,
        orders=ORDERS,
        ct_calls=len(ct_emulator.requests),
        ct_failed=ct_failures,
        wix_calls=len(wix_emulator.requests),
        wix_failed=wix_failures,
        drain_rounds=rounds,
        took_s=took_s,
        inbox=dict(inbox_counts(faulty_app)),
        ct_reviews=len(ct_emulator.reviews),
        wix_review_requests=len(creates),
        adopted=sum(r["status"] == "adopted" for r in requests),
    )

    assert inbox_counts(faulty_app) == {"done": REVIEWS + len(deleted) + ORDERS}
    assert sorted(r["key"] for r in ct_emulator.reviews.values()) == sorted(kept)
    assert {key: n for key, n in writes.items() if n != (2 if key in deleted else 1)} == {}, (
        "a commercetools review was written more often than its history needs"
    )
    assert len(creates) == ORDERS and len(per_order) == ORDERS and set(per_order.values()) == {1}
    assert len(requests) == ORDERS and {r["status"] for r in requests} <= {"requested", "adopted"}
