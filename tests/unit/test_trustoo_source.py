"""Trustoo as a source with its Open API: review/deleted re-fetched, thin items re-fetched, resync feed."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from connectors.base import ConfigError, Event, EventKind, PayloadError, RatingStatistics
from connectors.trustoo import TrustooSource, TrustooWebhookVerifier
from connectors.trustoo_api import ShopCredentials, TrustooApi
from tests.builders import TRUSTOO_PRIVATE_TOKEN, TRUSTOO_PUBLIC_TOKEN
from tests.fakes.trustoo import TrustooEmulator

SHOP = TRUSTOO_PUBLIC_TOKEN


class _Credentials:
    def for_shop(self, shop):
        return ShopCredentials(shop, private_token=TRUSTOO_PRIVATE_TOKEN)

    def refresh(self, shop):
        return None


@pytest.fixture
def emulator():
    emulator = TrustooEmulator(shops={SHOP: TRUSTOO_PRIVATE_TOKEN})
    yield emulator
    emulator.close()


@pytest.fixture
def source(emulator):
    api = TrustooApi(
        "http://trustoo.test",
        _Credentials(),
        transport=httpx.WSGITransport(app=emulator),
        sleep=lambda s: None,
    )
    return TrustooSource(TrustooWebhookVerifier({SHOP: [TRUSTOO_PRIVATE_TOKEN]}), api=api)


def _event(review_id, kind=EventKind.DELETE, payload=None) -> Event:
    return Event(
        source="trustoo",
        account=SHOP,
        event_id=f"e-{review_id}",
        kind=kind,
        subject_id=str(review_id),
        topic="review/deleted",
        occurred_at=datetime.now(UTC),
        payload=payload or {"id": review_id},
    )


def test_trustoo_review_deleted_for_a_hidden_review_resolves_to_the_hidden_review(emulator, source):
    item = emulator.add_review(SHOP, product_id="123", rating=4)
    emulator.hide_review(SHOP, item["id"])
    review = source.resolve(_event(item["id"]))
    assert review is not None and review.published is False and review.rating == 4


def test_trustoo_review_deleted_for_a_gone_review_resolves_to_nothing(emulator, source):
    item = emulator.add_review(SHOP, product_id="123")
    emulator.delete_review_in_admin(SHOP, item["id"])
    assert source.resolve(_event(item["id"])) is None


def test_trustoo_item_without_a_rating_is_fetched_whole(emulator, source):
    item = emulator.add_review(SHOP, product_id="123", rating=2)
    review = source.resolve(_event(item["id"], kind=EventKind.UPSERT, payload={"id": item["id"]}))
    assert review.rating == 2


def test_trustoo_complete_item_is_taken_as_sent(emulator, source):
    emulator.requests.clear()
    review = source.resolve(_event(9, kind=EventKind.UPSERT, payload={"id": 9, "rating": 5, "product_id": "1"}))
    assert review.rating == 5 and emulator.requests == []


def test_trustoo_review_list_feeds_resync_lazily_and_reports_unmappable_items(emulator, source):
    for rating in (5, 4, 3):
        emulator.add_review(SHOP, product_id="123", rating=rating)
    reviews = list(source.iter_reviews(SHOP))
    assert sorted(r.rating for r in reviews if not isinstance(r, PayloadError)) == [3, 4, 5]


def test_trustoo_source_with_a_shared_webhook_key_needs_the_open_api_to_check_the_shop():
    with pytest.raises(ConfigError, match="need the Open API"):
        TrustooSource(TrustooWebhookVerifier({SHOP: [TRUSTOO_PRIVATE_TOKEN]}), shared_key=True)


def test_trustoo_rating_statistics_are_the_products_get_rating_without_hidden_reviews(emulator, source):
    for rating in (5, 4, 4):
        emulator.add_review(SHOP, product_id="111", rating=rating)
    hidden = emulator.add_review(SHOP, product_id="111", rating=1)
    emulator.hide_review(SHOP, hidden["id"])
    emulator.add_review(SHOP, product_id="222", rating=2)

    stats = source.rating_statistics(SHOP, "111")

    assert stats == RatingStatistics(3, {4: 2, 5: 1}, Decimal("4.3"), Decimal("0.1"))
    [call] = [r for r in emulator.requests if "get_rating" in r.path]
    assert call.status == 200 and call.query["product_id"] == ["111"]


def test_trustoo_rating_statistics_of_a_product_without_reviews_count_nothing(source):
    assert source.rating_statistics(SHOP, "999") == RatingStatistics()


def test_trustoo_rating_statistics_need_the_open_api():
    with pytest.raises(ConfigError, match="TRUSTOO_API_URL"):
        TrustooSource(TrustooWebhookVerifier({SHOP: [TRUSTOO_PRIVATE_TOKEN]})).rating_statistics(SHOP, "111")
