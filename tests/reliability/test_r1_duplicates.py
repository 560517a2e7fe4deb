"""R1 duplicates: every Trustoo review event delivered many times, interleaved, makes exactly one
commercetools review, written once.

Full: 1,000 review events, each delivered 10 times. Reduced: 100 events, each 3 times.
"""

from __future__ import annotations

import random
import time

from tests.builders import trustoo_review
from tests.reliability.conftest import (
    drain_until_settled,
    inbox_counts,
    post_trustoo,
    report,
    scale,
    signed_trustoo,
    trustoo_key,
)

EVENTS = scale(100, 1000)
COPIES = scale(3, 10)


def test_trustoo_review_events_delivered_many_times_make_one_commercetools_review_each(ct_app, ct):
    emulator, _ = ct
    client = ct_app.test_client()
    now = int(time.time())
    items = [trustoo_review() for _ in range(EVENTS)]
    deliveries = [signed_trustoo([item], now, request_id=f"req-{item['id']}") for item in items] * COPIES
    random.Random(1).shuffle(deliveries)  # copies of one event interleave with every other event

    started = time.perf_counter()
    for body, headers in deliveries:
        post_trustoo(client, "review-created", body, headers)
    intake_s = time.perf_counter() - started
    assert inbox_counts(ct_app)["pending"] == EVENTS

    started = time.perf_counter()
    drain_until_settled(ct_app, timeout_s=scale(60, 600), threads=4)
    drain_s = time.perf_counter() - started

    keys = [trustoo_key(item["id"]) for item in items]
    writes = [emulator.writes_for(key) for key in keys]
    reviews = emulator.reviews
    report(
        "R1 duplicates",
        events=EVENTS,
        deliveries=len(deliveries),
        stored=sum(inbox_counts(ct_app).values()),
        ct_reviews=len(reviews),
        max_writes_per_key=max(writes),
        intake_per_s=len(deliveries) / intake_s,
        drain_per_s=EVENTS / drain_s,
    )
    assert inbox_counts(ct_app) == {"done": EVENTS}
    assert sorted(review["key"] for review in reviews.values()) == sorted(keys)
    assert writes == [1] * EVENTS
