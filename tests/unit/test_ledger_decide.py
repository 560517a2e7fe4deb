"""The "nothing twice" rule: `decide` over a table of ledger states, and what `content_hash` sees."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from app.core.ledger import Decision, LedgerState, content_hash, decide
from connectors.base import EventKind, Media, Reply, Review, TargetRef

T0 = datetime(2026, 11, 20, 9, 15, 2, tzinfo=UTC)
EARLIER = T0 - timedelta(minutes=5)
LATER = T0 + timedelta(minutes=5)
HASH = "a" * 64
OTHER_HASH = "b" * 64
REF = TargetRef(key="trustoo-880100001", id="ct-review-1", version=3)

UPSERT, DELETE = EventKind.UPSERT, EventKind.DELETE


def written(*, at: datetime = T0, sequence: int | None = None, content: str = HASH) -> LedgerState:
    """The ledger after we wrote the review to the target."""
    return LedgerState(ref=REF, content_hash=content, source_updated_at=at, source_sequence=sequence, deleted_at=None)


def tombstoned(*, at: datetime = T0, ref: TargetRef | None = REF) -> LedgerState:
    """The ledger after a delete: no content, the deletion time kept."""
    return LedgerState(ref=ref, content_hash=None, source_updated_at=at, source_sequence=None, deleted_at=at)


@pytest.mark.parametrize(
    "state, kind, occurred_at, sequence, new_hash, expected",
    [
        pytest.param(None, UPSERT, T0, None, HASH, Decision.UPSERT, id="first-upsert-writes"),
        pytest.param(None, DELETE, T0, None, None, Decision.TOMBSTONE, id="first-delete-only-remembers"),
        pytest.param(written(), UPSERT, LATER, None, HASH, Decision.UNCHANGED, id="same-hash-newer-is-unchanged"),
        pytest.param(written(), UPSERT, T0, None, HASH, Decision.UNCHANGED, id="same-hash-same-time-is-unchanged"),
        pytest.param(written(), UPSERT, LATER, None, OTHER_HASH, Decision.UPSERT, id="different-hash-writes"),
        pytest.param(written(), UPSERT, EARLIER, None, OTHER_HASH, Decision.STALE, id="older-timestamp-is-stale"),
        pytest.param(written(), DELETE, EARLIER, None, None, Decision.STALE, id="older-delete-is-stale"),
        pytest.param(
            written(sequence=7), UPSERT, LATER, 6, OTHER_HASH, Decision.STALE, id="lower-sequence-is-stale-though-newer"
        ),
        pytest.param(
            written(sequence=7), UPSERT, LATER, 7, OTHER_HASH, Decision.STALE, id="equal-sequence-is-stale-though-newer"
        ),
        pytest.param(
            written(sequence=7), UPSERT, EARLIER, 8, OTHER_HASH, Decision.UPSERT, id="higher-sequence-wins-though-older"
        ),
        pytest.param(
            written(sequence=7), UPSERT, LATER, None, OTHER_HASH, Decision.UPSERT, id="no-sequence-falls-back-to-time"
        ),
        pytest.param(written(), DELETE, LATER, None, None, Decision.DELETE, id="delete-after-upsert-deletes"),
        pytest.param(written(), DELETE, T0, None, None, Decision.DELETE, id="delete-same-time-as-upsert-deletes"),
        pytest.param(tombstoned(), UPSERT, EARLIER, None, HASH, Decision.STALE, id="upsert-older-than-tombstone"),
        pytest.param(tombstoned(), UPSERT, T0, None, HASH, Decision.STALE, id="tombstone-wins-tie"),
        pytest.param(tombstoned(), UPSERT, LATER, None, HASH, Decision.UPSERT, id="upsert-newer-than-tombstone"),
        pytest.param(
            tombstoned(ref=None),
            UPSERT,
            LATER,
            None,
            HASH,
            Decision.UPSERT,
            id="upsert-newer-than-never-written-tombstone",
        ),
        pytest.param(tombstoned(), DELETE, LATER, None, None, Decision.TOMBSTONE, id="delete-when-tombstoned"),
        pytest.param(
            tombstoned(ref=None), DELETE, LATER, None, None, Decision.TOMBSTONE, id="delete-when-never-written"
        ),
    ],
)
def test_ledger_decides(state, kind, occurred_at, sequence, new_hash, expected):
    assert decide(state, kind, occurred_at, sequence, new_hash) is expected


# --- content_hash ----------------------------------------------------------------------------


def _review(**overrides) -> Review:
    review = Review(
        source="trustoo",
        account="GfKu22TCaj4gULtrA3/OgA==",
        source_id="880100001",
        product_id="7982301249581",
        rating=5,
        title="Lovely mug",
        body="Keeps the tea hot.",
        author_name="Ada Lovelace",
        published=True,
        verified=True,
        media=(Media("https://img.trustoo.io/r/1.jpg", "https://img.trustoo.io/r/1_s.jpg"),),
        reply=Reply("Thank you!", T0),
        created_at=T0,
        updated_at=T0,
    )
    return dataclasses.replace(review, **overrides)


def test_ledger_hash_is_stable_for_equal_reviews():
    assert content_hash(_review()) == content_hash(_review())


def test_ledger_hash_ignores_updated_at():
    assert content_hash(_review(updated_at=LATER)) == content_hash(_review())


def test_ledger_hash_ignores_extra():
    assert content_hash(_review(extra={"raw": {"widget_theme": "dark"}})) == content_hash(_review())


@pytest.mark.parametrize(
    "change",
    [
        {"rating": 4},
        {"body": "Keeps the tea hot. Handle broke."},
        {"published": False},
        {"title": "Nice mug"},
        {"reply": None},
        {"media": ()},
    ],
    ids=["rating", "body", "published", "title", "reply", "media"],
)
def test_ledger_hash_changes_with_shown_content(change):
    assert content_hash(_review(**change)) != content_hash(_review())
