"""R2 disorder: each review lives a random (seeded) history of create, edits, hide, publish and
delete at its source; the webhooks arrive shuffled and duplicated; commercetools ends up showing
every review exactly as the source has it last, 100 %.

Full: 200 reviews per source. Reduced: 30 per source.

Trustoo timestamps are whole seconds, so history step n of a review is signed with its own
Open-Trustoo-Webhook-Timestamp (base + n) instead of sleeping; the Trustoo emulator's clock is set
to the same second so that its `updated_at` moves with the history. Wix bodies carry the
emulator's entityEventSequence.
"""

from __future__ import annotations

import random
import time
import uuid

from connectors.commercetools_mapping import review_key
from tests.builders import TRUSTOO_PUBLIC_TOKEN
from tests.reliability.conftest import (
    PRODUCT,
    drain_until_settled,
    inbox_counts,
    post_trustoo,
    post_wix,
    report,
    scale,
    signed_trustoo,
    trustoo_key,
)

REVIEWS = scale(30, 200)
COPIES = scale(2, 3)
WORDS = ("sturdy", "lovely", "cracked", "warm", "late", "perfect", "fine", "meh", "great", "broken")


class _SteppedClock:
    """The Trustoo emulator's clock: a second chosen by the test, not the wall clock."""

    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def _text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 8))).capitalize() + "."


def _trustoo_history(trustoo, clock: _SteppedClock, rng: random.Random, review_id: int, base: int):
    """Live one review's history in the emulator; return [(step, topic slug, item)] and the final item."""
    shop = trustoo.shop_info(TRUSTOO_PUBLIC_TOKEN)
    steps = []

    def snapshot(step: int, slug: str, rendered: dict) -> None:
        steps.append((step, slug, {"id": review_id, **shop, **rendered}))

    clock.now = base
    snapshot(
        0,
        "review-created",
        trustoo.add_review(
            TRUSTOO_PUBLIC_TOKEN,
            id=review_id,
            product_id=PRODUCT,
            rating=rng.randint(1, 5),
            title=_text(rng),
            content=_text(rng),
        ),
    )
    published = True
    for step in range(1, rng.randint(1, 7)):
        clock.now = base + step
        action = rng.choices(("edit", "toggle", "delete"), weights=(5, 3, 1))[0]
        if action == "delete":
            snapshot(step, "review-deleted", trustoo.delete_review_in_admin(TRUSTOO_PUBLIC_TOKEN, review_id))
            return steps, None
        if action == "toggle" and published:
            # Trustoo reports a hide as review/deleted (docs/platforms/trustoo.md §1.7).
            snapshot(step, "review-deleted", trustoo.hide_review(TRUSTOO_PUBLIC_TOKEN, review_id))
        elif action == "toggle":
            snapshot(step, "review-updated", trustoo.publish_review(TRUSTOO_PUBLIC_TOKEN, review_id))
        else:
            snapshot(
                step,
                "review-updated",
                trustoo.update_review(TRUSTOO_PUBLIC_TOKEN, review_id, rating=rng.randint(1, 5), content=_text(rng)),
            )
        if action == "toggle":
            published = not published
    return steps, steps[-1][2]


def _mismatches(emulator, expected: dict[str, dict | None]) -> list[str]:
    wrong = []
    for key, want in expected.items():
        got = emulator.review_by_key(key)
        if want is None:
            if got is not None:
                wrong.append(f"{key}: deleted at the source, still in commercetools")
            continue
        if got is None:
            wrong.append(f"{key}: missing in commercetools, source has {want}")
            continue
        shown = {
            "rating": got.get("rating"),
            "text": got.get("text"),
            "title": got.get("title"),
            "published": got.get("includedInStatistics"),
        }
        if shown != want:
            wrong.append(f"{key}: commercetools {shown} != source {want}")
    return wrong


def test_trustoo_shuffled_duplicated_histories_end_in_each_reviews_final_state(ct_app, ct, trustoo):
    emulator, _ = ct
    rng = random.Random(20)
    clock = _SteppedClock(time.time())
    trustoo.clock = clock
    base = int(time.time()) - 120  # inside the 900 s window, and each step one second later
    deliveries, expected = [], {}
    for index in range(REVIEWS):
        review_id = 770_000_001 + index
        steps, final = _trustoo_history(trustoo, clock, rng, review_id, base)
        for step, slug, item in steps:
            body, headers = signed_trustoo([item], base + step, request_id=f"{review_id}-{step}")
            deliveries += [(slug, body, headers)] * COPIES
        expected[trustoo_key(review_id)] = (
            None
            if final is None
            else {
                "rating": final["rating"],
                "text": final["content"],
                "title": final["title"],
                "published": final["is_published"] == 1,
            }
        )
    clock.now = time.time()  # the app's Open API calls (a delete is re-read) are checked against it
    trustoo.clock = time.time
    random.Random(21).shuffle(deliveries)

    client = ct_app.test_client()
    for slug, body, headers in deliveries:
        post_trustoo(client, slug, body, headers)
    started = time.perf_counter()
    drain_until_settled(ct_app, timeout_s=scale(90, 900), threads=4)
    drain_s = time.perf_counter() - started

    wrong = _mismatches(emulator, expected)
    report(
        "R2 disorder trustoo",
        reviews=REVIEWS,
        deliveries=len(deliveries),
        deleted=sum(v is None for v in expected.values()),
        hidden=sum(bool(v) and not v["published"] for v in expected.values()),
        matching_pct=100.0 * (REVIEWS - len(wrong)) / REVIEWS,
        drain_s=drain_s,
        inbox=dict(inbox_counts(ct_app)),
    )
    assert not wrong, "\n".join(wrong[:10])
    assert set(inbox_counts(ct_app)) <= {"done"}


def _wix_history(wix, rng: random.Random, instance: str, entity_id: str):
    """Live one Wix review's history; return the signed webhook bodies and the final review (None: deleted)."""
    review = wix.add_review(instance, entityId=entity_id, rating=rng.randint(1, 5), title=_text(rng), body=_text(rng))
    review_id = review["id"]
    bodies = [wix.review_webhook(instance, review_id, "created")]
    for _ in range(rng.randint(0, 6)):
        action = rng.choices(("edit", "approve", "reject", "reply", "delete"), weights=(5, 2, 2, 1, 1))[0]
        if action == "delete":
            wix.delete_review(instance, review_id)
            bodies.append(wix.review_webhook(instance, review_id, "deleted"))
            return review_id, bodies, None
        if action == "edit":
            wix.update_review(instance, review_id, rating=rng.randint(1, 5), body=_text(rng))
            bodies.append(wix.review_webhook(instance, review_id, "updated"))
        elif action == "reply":
            wix.set_reply(instance, review_id, _text(rng))
            bodies.append(wix.review_webhook(instance, review_id, "updated"))
        else:
            wix.moderate(instance, review_id, "APPROVED" if action == "approve" else "REJECTED")
            bodies.append(wix.review_webhook(instance, review_id, "moderation_status_changed"))
    return review_id, bodies, wix.get_review(instance, review_id)


def test_wix_shuffled_duplicated_histories_end_in_each_reviews_final_state(wix_app, ct, wix):
    emulator, _ = ct
    wix_emulator, _, instance = wix
    entity_id = str(uuid.UUID(int=7))
    emulator.add_product(key=entity_id)
    rng = random.Random(30)
    bodies, expected = [], {}
    for _ in range(REVIEWS):
        review_id, history, final = _wix_history(wix_emulator, rng, instance, entity_id)
        bodies += history * COPIES
        expected[review_key("wix", instance, review_id)] = (
            None
            if final is None
            else {
                "rating": final["content"]["rating"],
                "text": final["content"].get("body"),
                "title": final["content"].get("title"),
                "published": final["moderation"]["moderationStatus"] == "APPROVED",
            }
        )
    random.Random(31).shuffle(bodies)

    client = wix_app.test_client()
    for body in bodies:
        post_wix(client, body)
    started = time.perf_counter()
    drain_until_settled(wix_app, timeout_s=scale(90, 900), threads=4)
    drain_s = time.perf_counter() - started

    wrong = _mismatches(emulator, expected)
    report(
        "R2 disorder wix",
        reviews=REVIEWS,
        deliveries=len(bodies),
        deleted=sum(v is None for v in expected.values()),
        hidden=sum(bool(v) and not v["published"] for v in expected.values()),
        matching_pct=100.0 * (REVIEWS - len(wrong)) / REVIEWS,
        drain_s=drain_s,
        inbox=dict(inbox_counts(wix_app)),
    )
    assert not wrong, "\n".join(wrong[:10])
    assert set(inbox_counts(wix_app)) <= {"done"}
