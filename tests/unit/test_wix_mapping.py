"""Wix review entities → Review, orders → Review Request bodies (docs/platforms/wix.md §1.4-§1.6, §2).

Whole entities and events come from tests/payloads/wix/ (REST form, the spec's §2 examples filled
in); single fields are changed on a copy.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.base import EventKind, Media, PayloadError, Reply
from connectors.wix import WixSource
from connectors.wix_mapping import map_review, review_request_body
from connectors.wix_webhooks import WixWebhookVerifier

PAYLOADS = Path(__file__).resolve().parent.parent / "payloads" / "wix"
SITE = "6f1c9a2e-5b7d-4e0a-9c3f-2d8b7e6a1f40"
NOW = 1_795_000_000
_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_PUBLIC_PEM = (
    _KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
)


def _load(name: str) -> dict:
    return json.loads((PAYLOADS / name).read_text(encoding="utf-8"))


def _entity(**content_or_fields) -> dict:
    entity = _load("review_entity.json")
    for key, value in content_or_fields.items():
        if key in ("rating", "title", "body", "media"):
            entity["content"][key] = value
        else:
            entity[key] = value
    return entity


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _delivery(event_type: str, domain: dict) -> bytes:
    envelope = {
        "eventType": event_type,
        "instanceId": SITE,
        "data": json.dumps(domain),
        "identity": json.dumps({"identityType": "MEMBER", "memberId": "a3b1"}),
    }
    return jwt.encode(
        {"data": json.dumps(envelope), "iat": NOW, "exp": NOW + 300}, _KEY, algorithm="RS256", headers={"kid": "k1"}
    ).encode()


def _source(**options) -> WixSource:
    return WixSource(WixWebhookVerifier([_PUBLIC_PEM], now=lambda: NOW), **options)


# --- map_review --------------------------------------------------------------------------------


def test_wix_full_review_maps_every_field():
    review = map_review(SITE, _load("review_entity.json"))

    assert (review.source, review.account, review.source_id) == ("wix", SITE, "8c2f4e1a-7b3d-4c9e-a1f0-5d6b7c8e9f01")
    assert review.product_id == "e7d0c3b2-1a4f-4e5d-9c8b-7a6f5e4d3c21"
    assert (review.rating, review.title, review.body) == (5, "Great mug", "Keeps coffee hot.\nDishwasher safe too.")
    assert review.author_name == "Dana" and review.author_email is None
    assert review.published is True and review.verified is True
    assert review.created_at == _utc("2026-11-20T09:15:00.000Z")  # reviewDate: when it was written
    assert review.updated_at == _utc("2026-11-23T08:02:11.512Z")
    assert review.reply == Reply("Thanks, Dana!", _utc("2026-11-23T08:02:11.000Z"))
    assert review.extra == {
        "namespace": "stores",
        "contact_id": "c0ffee00-1111-4222-8333-944445555666",
        "moderation_status": "APPROVED",
        "origin": "ORGANIC",
        "revision": "3",
        "created_date": "2026-11-22T22:40:00.100Z",
    }


def test_wix_media_maps_image_uris_objects_and_videos_with_posters():
    review = map_review(SITE, _load("review_entity.json"))

    assert review.media == (
        Media("https://static.wixstatic.com/media/11062b_a1b2c3d4e5f6~mv2.jpg"),
        Media("https://static.wixstatic.com/media/11062b_ffeeddccbbaa~mv2.png"),
        Media(
            "https://video.wixstatic.com/video/11062b_0a1b2c3d4e5f/480p/mp4/file.mp4",
            thumbnail_url="https://static.wixstatic.com/media/11062b_0a1b2c3d4e5ff000.jpg",
            kind="video",
        ),
    )  # the empty {} is dropped


@pytest.mark.parametrize(
    "media, expected, notes",
    [
        ({"image": {"url": "https://x.example/1.jpg"}}, Media("https://x.example/1.jpg"), 0),
        (
            {"image": {"url": "https://x.example/1.jpg", "thumbnail": {"url": "javascript:alert(1)"}}},
            Media("https://x.example/1.jpg"),
            1,
        ),
        (
            {"video": {"url": "http://x.example/v.mp4", "thumbnail": {"url": "data:,x"}}},
            Media("http://x.example/v.mp4", kind="video"),
            1,
        ),
    ],
)
def test_wix_media_link_that_is_not_http_is_left_out_with_a_note(media, expected, notes):
    review = map_review(SITE, _entity(media=[media]))
    assert review.media == (expected,) and len(review.notes) == notes


@pytest.mark.parametrize(
    "status, published",
    [
        ("APPROVED", True),
        ("REJECTED", False),
        ("IN_MODERATION", False),
        ("SUBMITTED", False),
        ("UNKNOWN", False),
        (None, False),
    ],
)
def test_wix_moderation_status_decides_published(status, published):
    entity = _entity(moderation={"moderationStatus": status} if status else {})

    review = map_review(SITE, entity)

    assert review.published is published
    assert review.extra["moderation_status"] == (status or "UNKNOWN")


@pytest.mark.parametrize("rating, expected", [(1, 1), (5, 5), ("4", 4), (3.0, 3)])
def test_wix_rating_is_read_as_a_whole_number(rating, expected):
    assert map_review(SITE, _entity(rating=rating)).rating == expected


@pytest.mark.parametrize(
    "rating, reason",
    [
        (None, "review has no content.rating"),
        ("", "review has no content.rating"),
        (0, "rating 0 is outside 1-5"),
        (6, "rating 6 is outside 1-5"),
        (4.5, "rating 4.5 is not a whole number"),
        ("five", "rating 'five' is not a whole number"),
        (True, "rating True is not a whole number"),
        (float("nan"), "is not a whole number"),
    ],
)
def test_wix_bad_rating_is_a_payload_error(rating, reason):
    with pytest.raises(PayloadError, match=reason.replace(".", r"\.")):
        map_review(SITE, _entity(rating=rating))


def test_wix_review_without_content_is_a_payload_error():
    entity = _entity()
    del entity["content"]

    with pytest.raises(PayloadError, match=r"no content\.rating"):
        map_review(SITE, entity)


@pytest.mark.parametrize("review_id", [None, "", "  ", {"nested": 1}])
def test_wix_review_without_id_is_a_payload_error(review_id):
    with pytest.raises(PayloadError, match="review has no id"):
        map_review(SITE, _entity(id=review_id))


def test_wix_minimal_review_maps_with_defaults():
    review = map_review(SITE, {"id": "r-1", "content": {"rating": 2}})

    assert (review.source_id, review.rating, review.product_id, review.title) == ("r-1", 2, None, None)
    assert review.published is False and review.verified is False and review.media == () and review.reply is None


def test_wix_reply_without_message_is_no_reply():
    assert map_review(SITE, _entity(reply={"createdDate": "2026-11-23T08:00:00.000Z"})).reply is None


def test_wix_wrong_types_in_optional_fields_are_ignored():
    entity = _entity(
        author="Dana", moderation=["APPROVED"], reply="thanks", verified="yes", media="none", reviewDate="last week"
    )

    review = map_review(SITE, entity)

    assert review.author_name is None and review.published is False and review.reply is None
    assert review.verified is False and review.media == ()
    assert review.created_at == _utc("2026-11-22T22:40:00.100Z")  # createdDate when reviewDate is unreadable


# --- the spec's example deliveries ------------------------------------------------------------------


def test_wix_spec_review_created_example_parses_and_maps():
    source = _source()
    body = _delivery("wix.reviews.v1.review_created", _load("review_created_event.json"))

    [event] = source.parse(source.verify({}, body), None, {}, body)

    assert (event.kind, event.event_id, event.subject_id, event.sequence) == (
        EventKind.UPSERT,
        "0d9e7c1a-3b5f-4a2e-8c6d-1f0e9d8c7b6a",
        "8c2f4e1a-7b3d-4c9e-a1f0-5d6b7c8e9f01",
        1,
    )
    assert event.occurred_at == _utc("2026-11-22T22:40:00.123Z")
    review = source.resolve(event)
    assert review.published is False and review.rating == 5 and review.title == "Great mug"


def test_wix_spec_order_approved_example_is_an_order_with_the_approved_trigger():
    source = _source(review_request_trigger="approved")
    body = _delivery("wix.ecom.v1.order_approved", _load("order_approved_event.json"))

    [event] = source.parse(source.verify({}, body), None, {}, body)

    assert (event.kind, event.subject_id) == (EventKind.ORDER, "b9a4c8d7-6e5f-4a3b-9c2d-1e0f9a8b7c6d")
    assert event.sequence is None and event.payload["number"] == "10042"


# --- review_request_body ---------------------------------------------------------------------------------


def _order() -> dict:
    return _load("order_approved_event.json")["actionEvent"]["body"]["order"]


def test_wix_review_request_body_asks_for_the_stores_items_only():
    assert review_request_body(_order()) == {
        "reviewRequest": {
            "namespace": "stores",
            "order": {"id": "b9a4c8d7-6e5f-4a3b-9c2d-1e0f9a8b7c6d"},
            "items": [
                {"catalogItemId": "1a2b3c4d-5e6f-4708-9192-a3b4c5d6e7f8"},  # the teapot, 35.50
                {"catalogItemId": "e7d0c3b2-1a4f-4e5d-9c8b-7a6f5e4d3c21"},
            ],  # the mug, 12.00
            "recipient": {"contactId": "c0ffee00-1111-4222-8333-944445555666"},
            "communicationChannel": "EMAIL",
        }
    }


def test_wix_review_request_body_takes_the_five_most_expensive_distinct_items():
    order = _order()
    stores = order["lineItems"][0]
    order["lineItems"] = []
    for amount in [5, 50, 20, 70, 10, 60, 30]:
        line = copy.deepcopy(stores)
        line["price"] = {"amount": f"{amount}.00"}
        line["catalogReference"]["catalogItemId"] = f"item-{amount}"
        order["lineItems"].append(line)
    order["lineItems"].append(copy.deepcopy(order["lineItems"][3]))  # the same product twice

    items = review_request_body(order)["reviewRequest"]["items"]

    assert items == [{"catalogItemId": f"item-{amount}"} for amount in (70, 60, 50, 30, 20)]


@pytest.mark.parametrize(
    "change, reason",
    [
        (lambda o: o["buyerInfo"].pop("contactId"), "has no buyerInfo.contactId"),
        (lambda o: o.pop("buyerInfo"), "has no buyerInfo.contactId"),
        (lambda o: o.update(lineItems=[o["lineItems"][1]]), "has no Wix Stores line items"),
        (lambda o: o.update(lineItems=[]), "has no Wix Stores line items"),
        (
            lambda o: o["lineItems"][0]["catalogReference"].pop("catalogItemId") and o["lineItems"].pop(2),
            "has no Wix Stores line items",
        ),
    ],
)
def test_wix_review_request_body_skips_with_a_clear_reason(change, reason):
    order = _order()
    change(order)

    with pytest.raises(PayloadError) as caught:
        review_request_body(order)
    assert caught.value.reason.startswith(f"skipped: order b9a4c8d7-6e5f-4a3b-9c2d-1e0f9a8b7c6d {reason}")
    assert caught.value.payload == order


def test_wix_review_request_body_without_order_id_is_skipped():
    order = _order()
    del order["id"]

    with pytest.raises(PayloadError, match="skipped: the order has no id"):
        review_request_body(order)
