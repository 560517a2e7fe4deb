"""Trustoo review items → Review, and deliveries → Events (docs/platforms/trustoo.md §1.5, §1.7, §2 item 5).

Whole deliveries come from tests/payloads/trustoo/; single fields are changed with the builder.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from connectors.base import Event, EventKind, Media, PayloadError, RatingStatistics, Reply, Review
from connectors.trustoo import TrustooSource, TrustooWebhookVerifier, map_rating, map_review
from tests.builders import TRUSTOO_PRIVATE_TOKEN, TRUSTOO_PUBLIC_TOKEN, trustoo_body, trustoo_headers, trustoo_review

PAYLOADS = Path(__file__).resolve().parent.parent / "payloads" / "trustoo"
NOW = 1_700_000_000
SHOP = TRUSTOO_PUBLIC_TOKEN


def _payload(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


def _items(name: str) -> list:
    return json.loads(_payload(name))["list"]


def _webhooks() -> TrustooSource:
    return TrustooSource(TrustooWebhookVerifier({SHOP: (TRUSTOO_PRIVATE_TOKEN,)}, now=lambda: NOW))


def _parse(body: bytes, topic: str | None = "review/created", **header_overrides):
    headers = trustoo_headers(body, timestamp=header_overrides.pop("timestamp", NOW), **header_overrides)
    return _webhooks().parse(SHOP, topic, headers, body)


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- media: only http(s) links reach a target -------------------------------------------------------


@pytest.mark.parametrize(
    "url, kept",
    [
        ("https://img.trustoo.io/r/1.jpg", True),
        ("http://img.trustoo.io/r/1.jpg", True),
        ("HTTPS://IMG.TRUSTOO.IO/R/1.JPG", True),
        ("javascript:alert(document.cookie)", False),
        ("JaVaScRiPt:alert(1)", False),
        (" javascript:alert(1)", False),
        ("java\tscript:alert(1)", False),
        ("javascript\n:alert(1)", False),
        ("data:image/svg+xml;base64,PHN2Zz4=", False),
        ("vbscript:msgbox(1)", False),
        ("//evil.example/1.jpg", False),
        ("ftp://img.example/1.jpg", False),
        ("https:///no-host.jpg", False),
        ("https://[::1/unclosed.jpg", False),
        ("/r/1.jpg", False),
    ],
)
def test_trustoo_media_url_that_is_not_an_http_link_is_left_out_with_a_note(url, kept):
    review = map_review(SHOP, trustoo_review(media=[{"url": url, "type": 1}]))
    assert (len(review.media), len(review.notes)) == ((1, 0) if kept else (0, 1))
    if not kept:
        assert review.notes[0].startswith(f"media URL {url!r}"[:40]) and "not an http(s) link" in review.notes[0]


def test_trustoo_media_thumbnail_that_is_not_an_http_link_is_left_out_and_the_image_kept():
    item = trustoo_review(media=[{"url": "https://img.trustoo.io/r/1.jpg", "thumbnail_url": "javascript:x()"}])
    review = map_review(SHOP, item)
    assert review.media == (Media("https://img.trustoo.io/r/1.jpg"),)
    assert review.notes == ("thumbnail URL 'javascript:x()' left out: not an http(s) link",)


# --- map_review: whole items from real payloads ------------------------------------------------


def test_trustoo_review_with_media_and_reply_maps_every_field():
    review = map_review(SHOP, _items("review_created_batch.json")[0])

    assert review == Review(
        source="trustoo",
        account=SHOP,
        source_id="880100001",
        product_id="7982301249581",
        rating=5,
        title="Lovely mug",
        body="Keeps the tea hot and looks great on the desk.",
        author_name="Ada Lovelace",
        author_email="ada@example.com",
        author_country="GB",
        published=True,
        verified=True,
        media=(
            Media(
                url="https://img.trustoo.io/reviews/880100001/1.jpg?x-oss-process=style/trustoo_big",
                thumbnail_url="https://img.trustoo.io/reviews/880100001/1.jpg?x-oss-process=style/trustoo_small",
                kind="image",
            ),
            Media(
                url="https://img.trustoo.io/reviews/880100001/2.mp4",
                thumbnail_url="https://img.trustoo.io/reviews/880100001/2_cover.jpg",
                kind="video",
            ),
        ),
        reply=Reply(text="Thank you, Ada! Enjoy your tea.", replied_at=_utc("2026-11-21 08:00:00")),
        created_at=_utc("2026-11-20 09:15:02"),
    )


def test_trustoo_review_with_empty_strings_maps_them_to_none():
    review = map_review(SHOP, _items("review_created_batch.json")[1])

    assert (review.title, review.author_email, review.media, review.reply) == (None, None, (), None)


def test_trustoo_sparse_store_review_maps_with_defaults():
    review = map_review(SHOP, _items("store_review_sparse.json")[0])

    assert (
        review.source_id,
        review.is_store_review,
        review.rating,
        review.published,
        review.verified,
        review.title,
        review.media,
        review.reply,
    ) == ("880100004", True, 4, True, False, None, (), None)


# --- map_review: one field at a time ---------------------------------------------------------


@pytest.mark.parametrize(
    "given, expected", [(880100001, "880100001"), ("880100001", "880100001"), ("r-abc", "r-abc")], ids=repr
)
def test_trustoo_review_id_int_or_string_becomes_string_source_id(given, expected):
    assert map_review(SHOP, trustoo_review(id=given)).source_id == expected


@pytest.mark.parametrize("given", [None, ""], ids=repr)
def test_trustoo_review_without_id_is_a_payload_error(given):
    with pytest.raises(PayloadError):
        map_review(SHOP, trustoo_review(id=given))


@pytest.mark.parametrize(
    "given, store",
    [("0", True), (0, True), (None, True), ("", True), ("7982301249581", False), (7982301249581, False)],
    ids=repr,
)
def test_trustoo_product_id_zero_or_absent_is_a_store_review(given, store):
    assert map_review(SHOP, trustoo_review(product_id=given)).is_store_review is store


@pytest.mark.parametrize("given, expected", [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5), ("4", 4), (" 5 ", 5)], ids=repr)
def test_trustoo_rating_in_range_is_accepted(given, expected):
    assert map_review(SHOP, trustoo_review(rating=given)).rating == expected


@pytest.mark.parametrize("given", [0, 6, -1, "x", None, "", 4.5, "4.5", [4], {"value": 4}], ids=repr)
def test_trustoo_rating_out_of_range_or_not_a_number_is_a_payload_error(given):
    with pytest.raises(PayloadError):
        map_review(SHOP, trustoo_review(rating=given))


@pytest.mark.parametrize("given, expected", [(1, True), (0, False), ("1", True), ("0", False)], ids=repr)
def test_trustoo_is_verified_flag_becomes_boolean(given, expected):
    assert map_review(SHOP, trustoo_review(is_verified=given)).verified is expected


@pytest.mark.parametrize("given, expected", [(1, True), (0, False), ("0", False), (None, True)], ids=repr)
def test_trustoo_is_published_flag_becomes_boolean(given, expected):
    assert map_review(SHOP, trustoo_review(is_published=given)).published is expected


def test_trustoo_review_without_is_published_is_published():
    item = trustoo_review()
    del item["is_published"]

    assert map_review(SHOP, item).published is True


def test_trustoo_commented_at_becomes_aware_utc_datetime():
    created_at = map_review(SHOP, trustoo_review(commented_at="2026-11-20 09:15:02")).created_at

    assert created_at == datetime(2026, 11, 20, 9, 15, 2, tzinfo=UTC)
    assert created_at.utcoffset().total_seconds() == 0


@pytest.mark.parametrize("given", ["yesterday", "2026-13-40 99:00:00", 10**20, float("nan"), 1e300], ids=repr)
def test_trustoo_commented_at_that_is_no_date_is_a_payload_error(given):
    with pytest.raises(PayloadError):
        map_review(SHOP, trustoo_review(commented_at=given))


@pytest.mark.parametrize(
    "given, expected",
    [
        (
            {"url": "https://img.trustoo.io/a.jpg", "thumbnail_url": "https://img.trustoo.io/a_s.jpg", "type": 1},
            Media("https://img.trustoo.io/a.jpg", "https://img.trustoo.io/a_s.jpg", "image"),
        ),
        (
            {"url": "https://img.trustoo.io/v.mp4", "thumbnail_url": "https://img.trustoo.io/v.jpg", "type": 2},
            Media("https://img.trustoo.io/v.mp4", "https://img.trustoo.io/v.jpg", "video"),
        ),
        (
            {"url": "https://img.trustoo.io/v.mp4", "type": "video"},
            Media("https://img.trustoo.io/v.mp4", None, "video"),
        ),
        ({"url": "https://img.trustoo.io/b.jpg"}, Media("https://img.trustoo.io/b.jpg", None, "image")),
        (
            {"url": "https://img.trustoo.io/c.jpg", "type": 1, "is_published": 0},
            Media("https://img.trustoo.io/c.jpg", None, "image", hidden=True),
        ),
    ],
    ids=["image", "video", "video-word", "no-type", "unpublished"],
)
def test_trustoo_media_item_maps_url_thumbnail_and_type(given, expected):
    assert map_review(SHOP, trustoo_review(media=[given])).media == (expected,)


@pytest.mark.parametrize(
    "given",
    [None, [], [{"thumbnail_url": "https://img.trustoo.io/t.jpg"}], ["a.jpg"], {"images": []}],
    ids=["null", "empty", "no-url", "string", "old-object"],
)
def test_trustoo_media_without_usable_items_maps_to_no_media(given):
    assert map_review(SHOP, trustoo_review(media=given)).media == ()


@pytest.mark.parametrize(
    "given, expected",
    [
        ({"content": "Thanks!", "reply_at": "2026-11-21 08:00:00"}, Reply("Thanks!", _utc("2026-11-21 08:00:00"))),
        ({"content": "  Thanks!  ", "reply_at": None}, Reply("Thanks!", None)),
        ({"content": "Thanks!"}, Reply("Thanks!", None)),
        (None, None),
        ({"content": "", "reply_at": "2026-11-21 08:00:00"}, None),
        ({"content": "   "}, None),
        ("Thanks!", None),
    ],
    ids=["full", "padded", "no-date", "null", "empty", "blank", "not-an-object"],
)
def test_trustoo_reply_maps_to_reply_or_none(given, expected):
    assert map_review(SHOP, trustoo_review(reply=given)).reply == expected


def test_trustoo_unknown_keys_are_ignored():
    item = trustoo_review()
    with_extras = dict(item, widget_theme="dark", customer={"tier": "gold"}, is_top=1, tag=["vip"])

    assert map_review(SHOP, with_extras) == map_review(SHOP, item)


# --- parse -----------------------------------------------------------------------------------


def test_trustoo_batch_gives_one_upsert_event_per_item():
    events = _parse(_payload("review_created_batch.json"), request_id="req-batch-1")

    assert [(e.kind, e.subject_id, e.topic) for e in events] == [
        (EventKind.UPSERT, "880100001", "review/created"),
        (EventKind.UPSERT, "880100002", "review/created"),
    ]
    assert {(e.source, e.account, e.occurred_at, e.delivery_id) for e in events} == {
        ("trustoo", SHOP, datetime.fromtimestamp(NOW, tz=UTC), "req-batch-1")
    }


def test_trustoo_event_payload_is_the_item_and_maps_back_to_the_review():
    event = _parse(_payload("review_created_batch.json"))[0]

    assert _webhooks().resolve(event) == map_review(SHOP, _items("review_created_batch.json")[0])


def test_trustoo_redelivery_of_same_item_gives_same_event_id():
    item = trustoo_review()
    first = _parse(trustoo_body(item), request_id="req-1")[0]
    again = _parse(trustoo_body(item), request_id="req-2", timestamp=NOW + 180)[0]

    assert again.event_id == first.event_id


def test_trustoo_redelivery_with_other_key_order_gives_same_event_id():
    item = trustoo_review()
    reordered = json.dumps({"list": [dict(reversed(list(item.items())))]}).encode()

    assert _parse(reordered)[0].event_id == _parse(trustoo_body(item))[0].event_id


def test_trustoo_changed_item_gives_different_event_id():
    item = trustoo_review()
    first = _parse(trustoo_body(item))[0]
    edited = _parse(trustoo_body(dict(item, content="Changed my mind: the handle broke.")))[0]

    assert edited.event_id != first.event_id


def test_trustoo_review_deleted_topic_gives_delete_events():
    events = _parse(_payload("review_deleted.json"), topic="review/deleted")

    assert [(e.kind, e.subject_id) for e in events] == [
        (EventKind.DELETE, "880100001"),
        (EventKind.DELETE, "880100003"),
    ]


def test_trustoo_unusable_items_become_payload_errors_beside_events():
    results = _parse(_payload("mixed_batch_bad_items.json"))

    assert [type(r) for r in results] == [Event, PayloadError, PayloadError, PayloadError, Event]
    assert [r.subject_id for r in results if isinstance(r, Event)] == ["880100005", "880100007"]
    assert results[2].payload == "880100006"


@pytest.mark.parametrize(
    "body",
    [
        b"not json at all",
        b'{"list": [',
        b"\xff\xfe{\x00}\x00",
        '{"list": [{"id": 1, "content": "caf\u00e9"}]}'.encode("latin-1"),
        b"[]",
        b'"list"',
        b"null",
        b"{}",
        b'{"list": {"id": 1}}',
        b'{"list": null}',
        b"",
        b'{"list":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ],
    ids=[
        "not-json",
        "truncated",
        "utf16",
        "latin1",
        "array",
        "string",
        "null",
        "no-list",
        "list-is-object",
        "list-is-null",
        "empty",
        "nested-100000",
    ],
)
def test_trustoo_unusable_body_is_a_payload_error(body):
    with pytest.raises(PayloadError):
        _parse(body)


def test_trustoo_topic_from_body_event_type_when_route_has_none():
    events = _parse(_payload("review_updated_event_type.json"), topic=None)

    assert [(e.kind, e.topic, e.subject_id) for e in events] == [(EventKind.UPSERT, "review/updated", "880100001")]


@pytest.mark.parametrize(
    "document",
    [
        {"list": [{"id": 1}]},
        {"event_type": "customer_event/created", "list": [{"id": 1}]},
        {"event_type": "review/exploded", "list": [{"id": 1}]},
        {"event_type": None, "list": [{"id": 1}]},
    ],
    ids=["no-event-type", "customer-event", "unknown", "null"],
)
def test_trustoo_no_route_topic_and_no_known_event_type_is_a_payload_error(document):
    with pytest.raises(PayloadError):
        _parse(json.dumps(document).encode(), topic=None)


# --- get_rating (§1.4) --------------------------------------------------------------------------


def _rating(value: object = "4.3", count: object = 3, **stars: object) -> dict:
    return {
        "rating_value": value,
        "review_count": count,
        **{f"star{n}_count": stars.get(f"s{n}", 0) for n in range(1, 6)},
    }


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(
            _rating("4.3", 3, s4=2, s5=1),
            RatingStatistics(3, {4: 2, 5: 1}, Decimal("4.3"), Decimal("0.1")),
            id="one-decimal",
        ),
        pytest.param(
            _rating("4.33", "3", s4="2", s5="1"),
            RatingStatistics(3, {4: 2, 5: 1}, Decimal("4.33"), Decimal("0.01")),
            id="counts-as-strings-two-decimals",
        ),
        pytest.param(_rating(5, 1, s5=1), RatingStatistics(1, {5: 1}, Decimal(5), Decimal(1)), id="whole-number"),
        pytest.param(_rating("0.0", 0), RatingStatistics(), id="no-reviews"),
        pytest.param({}, RatingStatistics(), id="empty"),
    ],
)
def test_trustoo_rating_keeps_the_average_to_the_decimals_trustoo_gives(data, expected):
    assert map_rating(data) == expected


@pytest.mark.parametrize(
    "data",
    [
        _rating("n/a", 3, s5=3),
        _rating("NaN", 3, s5=3),
        _rating("7.5", 3, s5=3),
        _rating("4.3", -3),
        _rating("4.3", 3, s5=True),
        _rating("4.3", "9" * 5000),
    ],
    ids=["text", "nan", "above-5", "negative-count", "boolean-count", "5000-digits"],
)
def test_trustoo_unreadable_rating_is_a_payload_error(data):
    with pytest.raises(PayloadError):
        map_rating(data)
