"""Canonical Review → commercetools key, draft and update actions (pure)."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from connectors.base import Media, PayloadError, RatingStatistics, Reply, Review
from connectors.commercetools_mapping import (
    desired_review,
    draft_for,
    rating_statistics,
    recreate_draft,
    restore_actions,
    review_key,
    snapshot,
    update_actions,
)

KEY_CHARSET = re.compile(r"[A-Za-z0-9_-]{2,256}")
REVIEW = Review(
    source="trustoo",
    account="GfKu22TCaj4gULtrA3/OgA==",
    source_id="880000001",
    product_id="7982301249581",
    rating=4,
    title="Lovely mug",
    body="Keeps the tea hot.",
    author_name="Ada",
    author_country="GB",
    verified=True,
    media=(Media(url="https://img.trustoo.io/1.jpg", thumbnail_url="https://img.trustoo.io/1s.jpg"),),
    reply=Reply(text="Thank you!", replied_at=datetime(2026, 11, 21, 8, 0, tzinfo=UTC)),
    created_at=datetime(2026, 11, 20, 9, 15, 2, tzinfo=UTC),
)


def _desired(review: Review = REVIEW, **overrides):
    options = {"target_id": "prod-1", "state_id": "state-published", "type_id": "type-1", "rating_scale": 5}
    return desired_review(review, **(options | overrides))


def _as_stored(desired) -> dict:
    """The review as commercetools returns it after creating the draft."""
    draft = draft_for(desired)
    return draft | {
        "id": "r-1",
        "version": 1,
        "target": desired.target,
        "state": {"typeId": "state", "id": desired.state_id},
        "custom": {"type": {"typeId": "type", "id": desired.type_id}, "fields": draft["custom"]["fields"]},
    }


@pytest.mark.parametrize(
    "source_id",
    [
        "880000001",
        "r-string-id",
        "2f1c0a9e-4b7d-4c55-9a1e-3f0d2b8c7e61",
        "ÜBER/../x y",
        "x" * 300,
        "a",
    ],
)
def test_commercetools_key_is_safe_short_and_deterministic(source_id):
    key = review_key("trustoo", "shop", source_id)
    assert KEY_CHARSET.fullmatch(key) and len(key) <= 256
    assert key == review_key("trustoo", "shop", source_id)


def test_commercetools_key_keeps_a_plain_id_readable():
    assert review_key("trustoo", "shop", "880000001").startswith("trustoo-880000001-")


def test_commercetools_keys_differ_by_account_source_and_id():
    keys = {review_key(s, a, i) for s in ("trustoo", "wix") for a in ("shop-a", "shop-b") for i in ("1", "2", "1-")}
    assert len(keys) == 12


def test_commercetools_key_of_ids_that_differ_only_in_odd_characters_differ():
    assert review_key("wix", "i", "a/b") != review_key("wix", "i", "a_b") != review_key("wix", "i", "ab")


def test_commercetools_draft_carries_every_field_and_the_key_as_uniqueness_value():
    draft = draft_for(_desired())
    assert draft["key"] == draft["uniquenessValue"] == review_key("trustoo", REVIEW.account, "880000001")
    assert (draft["rating"], draft["title"], draft["text"], draft["authorName"]) == (
        4,
        "Lovely mug",
        "Keeps the tea hot.",
        "Ada",
    )
    assert draft["target"] == {"typeId": "product", "id": "prod-1"}
    assert draft["state"] == {"typeId": "state", "id": "state-published"}
    fields = draft["custom"]["fields"]
    assert fields["source"] == "trustoo" and fields["sourceReviewId"] == "880000001"
    assert fields["sourceProductId"] == "7982301249581" and fields["verified"] is True
    assert fields["replyText"] == "Thank you!" and fields["replyDate"] == "2026-11-21T08:00:00.000Z"
    assert fields["sourceCreatedAt"] == "2026-11-20T09:15:02.000Z" and fields["authorCountry"] == "GB"
    assert json.loads(fields["media"]) == [
        {
            "url": "https://img.trustoo.io/1.jpg",
            "type": "image",
            "hidden": False,
            "thumbnailUrl": "https://img.trustoo.io/1s.jpg",
        }
    ]
    assert "locale" not in draft and "sourceUpdatedAt" not in fields


def test_commercetools_rating_on_a_100_scale_is_multiplied_by_20():
    assert draft_for(_desired(rating_scale=100))["rating"] == 80


def test_commercetools_review_that_matches_needs_no_action():
    desired = _desired()
    assert update_actions(_as_stored(desired), desired) == []


def test_commercetools_edit_sends_only_what_changed():
    stored = _as_stored(_desired())
    desired = _desired(replace(REVIEW, rating=2, body="Cracked after a week."))
    assert update_actions(stored, desired) == [
        {"action": "setRating", "rating": 2},
        {"action": "setText", "text": "Cracked after a week."},
    ]


def test_commercetools_hiding_is_a_forced_state_transition():
    stored = _as_stored(_desired())
    assert update_actions(stored, _desired(state_id="state-hidden")) == [
        {"action": "transitionState", "state": {"typeId": "state", "id": "state-hidden"}, "force": True}
    ]


def test_commercetools_removed_title_and_reply_are_removed_fields():
    stored = _as_stored(_desired())
    actions = update_actions(stored, _desired(replace(REVIEW, title=None, reply=None)))
    assert {"action": "setTitle"} in actions
    assert {"action": "setCustomField", "name": "replyText"} in actions
    assert {"action": "setCustomField", "name": "replyDate"} in actions


def test_commercetools_review_without_our_custom_type_gets_it_whole():
    stored = _as_stored(_desired()) | {"custom": None}
    [action] = update_actions(stored, _desired())
    assert action["action"] == "setCustomType" and action["fields"]["sourceReviewId"] == "880000001"


def test_commercetools_review_under_another_key_is_given_ours_back():
    stored = _as_stored(_desired()) | {"key": "renamed-by-someone"}
    assert update_actions(stored, _desired())[0] == {"action": "setKey", "key": _desired().key}


def test_commercetools_moved_product_is_a_set_target():
    stored = _as_stored(_desired())
    assert update_actions(stored, _desired(target_id="prod-2")) == [
        {"action": "setTarget", "target": {"typeId": "product", "id": "prod-2"}}
    ]


def test_commercetools_store_review_targets_a_channel():
    draft = draft_for(_desired(replace(REVIEW, product_id="0"), target_id="chan-1", target_type="channel"))
    assert draft["target"] == {"typeId": "channel", "id": "chan-1"}


# --- snapshots and putting a review back (rollback) ---------------------------------------------

_BEFORE = {
    "id": "r-1",
    "version": 3,
    "key": "trustoo-1-abc",
    "uniquenessValue": "trustoo-1-abc",
    "rating": 5,
    "title": "Lovely mug",
    "target": {"typeId": "product", "id": "p-1"},
    "state": {"typeId": "state", "id": "s-published"},
    "custom": {"type": {"typeId": "type", "id": "t-1"}, "fields": {"source": "trustoo", "verified": True}},
}


def test_snapshot_leaves_out_ids_versions_and_times():
    later = _BEFORE | {"id": "r-2", "version": 9, "lastModifiedAt": "2026-12-05T09:00:00.000Z"}
    assert snapshot(later) == snapshot(_BEFORE)


@pytest.mark.parametrize(
    ("current", "actions"),
    [
        (_BEFORE, []),
        (_BEFORE | {"rating": 1}, [{"action": "setRating", "rating": 5}]),
        (_BEFORE | {"title": None}, [{"action": "setTitle", "title": "Lovely mug"}]),
        (_BEFORE | {"text": "added"}, [{"action": "setText"}]),
        (
            _BEFORE | {"state": {"typeId": "state", "id": "s-hidden"}},
            [{"action": "transitionState", "state": {"typeId": "state", "id": "s-published"}, "force": True}],
        ),
        (
            _BEFORE | {"custom": {"type": {"typeId": "type", "id": "t-1"}, "fields": {"source": "trustoo"}}},
            [{"action": "setCustomField", "name": "verified", "value": True}],
        ),
    ],
)
def test_restore_actions_change_only_what_differs_from_the_review_before(current, actions):
    assert restore_actions(current, _BEFORE) == actions


def test_restore_actions_leave_a_state_the_review_before_lacked():
    before = {k: v for k, v in _BEFORE.items() if k != "state"}
    assert restore_actions(_BEFORE, before) == []


def test_recreate_draft_keeps_the_key_uniqueness_value_and_references_by_id():
    draft = recreate_draft(_BEFORE)
    assert "id" not in draft and "version" not in draft
    assert (draft["key"], draft["uniquenessValue"], draft["state"], draft["custom"]["type"]) == (
        "trustoo-1-abc",
        "trustoo-1-abc",
        {"typeId": "state", "id": "s-published"},
        {"typeId": "type", "id": "t-1"},
    )


# --- reviewRatingStatistics (§1.2) ---------------------------------------------------------------


def test_commercetools_rating_statistics_read_count_distribution_and_the_5_decimal_average():
    product = {
        "id": "p-1",
        "reviewRatingStatistics": {
            "averageRating": 4.66667,
            "highestRating": 5,
            "lowestRating": 4,
            "count": 3,
            "ratingsDistribution": {"4": 1, "5": 2},
        },
    }
    assert rating_statistics(product) == RatingStatistics(3, {4: 1, 5: 2}, Decimal("4.66667"), Decimal("0.00001"))


def test_commercetools_product_without_statistics_counts_nothing():
    assert rating_statistics({"id": "p-1"}) == RatingStatistics()


def test_commercetools_unreadable_statistics_are_a_payload_error():
    with pytest.raises(PayloadError):
        rating_statistics({"reviewRatingStatistics": {"count": 1, "ratingsDistribution": {"four": 1}}})
