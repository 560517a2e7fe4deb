"""The commercetools connector against the emulator (in process, no network): the upsert recipe."""

from __future__ import annotations

import dataclasses
import random
from decimal import Decimal

import httpx
import pytest

from connectors.base import ConfigError, ProductNotFound, RatingStatistics, RetryableTargetError, Review
from connectors.commercetools import CommercetoolsTarget
from connectors.commercetools_api import CommercetoolsConfig
from connectors.commercetools_mapping import snapshot
from connectors.http import RetryPolicy
from tests.fakes.commercetools import CommercetoolsEmulator

PRODUCT = "7982301249581"
SECRET = "ct-secret-0123456789"
CT_UNIT = Decimal("0.00001")  # averageRating is rounded to 5 decimals


def review(source_id: str = "880000001", **changes) -> Review:
    base = Review(
        source="trustoo",
        account="shop-a",
        source_id=source_id,
        product_id=PRODUCT,
        rating=5,
        title="Lovely mug",
        body="Keeps the tea hot.",
        author_name="Ada",
        verified=True,
    )
    return dataclasses.replace(base, **changes)


@pytest.fixture
def emulator():
    emulator = CommercetoolsEmulator(project_key="reviewbridge-test", client_id="ct-client", client_secret=SECRET)
    emulator.add_product(key=PRODUCT)
    return emulator


def make_target(emulator, **config) -> CommercetoolsTarget:
    settings = CommercetoolsConfig(
        project_key="reviewbridge-test",
        client_id="ct-client",
        client_secret=SECRET,
        api_url="http://ct.test",
        auth_url="http://ct.test",
        **config,
    )
    return CommercetoolsTarget(
        settings, transport=httpx.WSGITransport(app=emulator), sleep=lambda s: None, retry=RetryPolicy(attempts=3)
    )


@pytest.fixture
def target(emulator):
    target = make_target(emulator)
    target.setup()
    return target


def _writes(emulator) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in emulator.requests if r.method in ("POST", "DELETE") and "/reviews" in r.path]


def test_commercetools_setup_creates_type_and_states_then_finds_them(emulator):
    target = make_target(emulator)
    assert [outcome for *_, outcome in target.setup()] == ["created"] * 3
    assert [outcome for *_, outcome in target.setup()] == ["found"] * 3


def test_commercetools_missing_setup_is_a_configuration_error_saying_what_to_run(emulator):
    with pytest.raises(ConfigError, match="reviewbridge setup commercetools"):
        make_target(emulator).check()


def test_commercetools_new_review_is_created_once_with_key_as_uniqueness_value(emulator, target):
    ref = target.upsert(review())
    stored = emulator.review_by_key(ref.key)
    assert stored["uniquenessValue"] == ref.key and ref.version == stored["version"]
    assert stored["target"]["id"] == emulator.review_by_key(ref.key)["target"]["id"]
    assert (stored["rating"], stored["text"], stored["authorName"]) == (5, "Keeps the tea hot.", "Ada")
    assert stored["includedInStatistics"] is True
    assert stored["custom"]["fields"]["sourceReviewId"] == "880000001"


def test_commercetools_same_review_again_makes_no_write(emulator, target):
    target.upsert(review())
    before = len(_writes(emulator))
    target.upsert(review())
    assert len(_writes(emulator)) == before


def test_commercetools_edit_sends_one_update_with_only_the_changed_action(emulator, target):
    target.upsert(review())
    emulator.requests.clear()
    target.upsert(review(rating=2))
    [update] = [r for r in emulator.requests if r.method == "POST"]
    assert update.body["actions"] == [{"action": "setRating", "rating": 2}]


def test_commercetools_hidden_review_leaves_the_statistics(emulator, target):
    ref = target.upsert(review())
    target.upsert(review(published=False))
    assert emulator.review_by_key(ref.key)["includedInStatistics"] is False
    target.upsert(review())
    assert emulator.review_by_key(ref.key)["includedInStatistics"] is True


def test_commercetools_delete_removes_the_review_and_a_second_delete_is_fine(emulator, target):
    ref = target.upsert(review())
    target.delete(ref)
    assert emulator.review_by_key(ref.key) is None
    target.delete(ref)


def test_commercetools_delete_in_hide_mode_keeps_the_review_hidden(emulator):
    target = make_target(emulator, on_source_delete="hide")
    target.setup()
    ref = target.upsert(review())
    target.delete(ref)
    assert emulator.review_by_key(ref.key)["includedInStatistics"] is False


def test_commercetools_duplicate_key_on_create_continues_as_an_update(emulator, target):
    ref = target.upsert(review())
    emulator.inject(404, method="GET", path_contains=f"key={ref.key}")  # our read misses the racer's create
    target.upsert(review(body="Edited meanwhile."))
    assert len(emulator.reviews) == 1
    assert emulator.review_by_key(ref.key)["text"] == "Edited meanwhile."


def test_commercetools_version_conflict_is_read_again_and_retried(emulator, target):
    ref = target.upsert(review())
    emulator.inject(409, method="POST", path_contains="/reviews/")
    target.upsert(review(rating=3))
    assert emulator.review_by_key(ref.key)["rating"] == 3


def test_commercetools_rating_on_the_100_scale(emulator):
    target = make_target(emulator, rating_scale=100)
    target.setup()
    assert emulator.review_by_key(target.upsert(review(rating=4)).key)["rating"] == 80


def test_commercetools_unknown_product_raises_product_not_found_naming_it(emulator, target):
    with pytest.raises(ProductNotFound, match="no commercetools product with key 'missing-1'") as caught:
        target.upsert(review(product_id="missing-1"))
    assert caught.value.source_product_id == "missing-1"


def test_commercetools_store_review_waits_without_a_channel(target):
    with pytest.raises(ProductNotFound, match="CTP_STORE_REVIEW_CHANNEL"):
        target.upsert(review(product_id="0"))


def test_commercetools_store_review_attaches_to_the_configured_channel(emulator):
    channel = emulator.add_channel(key="webshop")
    target = make_target(emulator, store_review_channel="webshop")
    target.setup()
    ref = target.upsert(review(product_id="0"))
    assert emulator.review_by_key(ref.key)["target"] == {"typeId": "channel", "id": channel["id"]}


def test_commercetools_store_review_with_an_unknown_channel_names_it(emulator):
    target = make_target(emulator, store_review_channel="nowhere")
    target.setup()
    with pytest.raises(ProductNotFound, match="no commercetools channel with key 'nowhere'"):
        target.upsert(review(product_id="0"))


def test_commercetools_mapped_product_by_id_and_by_key(emulator):
    other = emulator.add_product(key="mug-blue")
    by_key = make_target(emulator)
    by_key._product_map = lambda source, account, product: ("key", "mug-blue")
    by_key.setup()
    assert emulator.review_by_key(by_key.upsert(review()).key)["target"]["id"] == other["id"]
    by_id = make_target(emulator)
    by_id._product_map = lambda source, account, product: ("id", other["id"])
    assert by_id.upsert(review("2")).key


def test_commercetools_product_key_template_with_sku(emulator):
    emulator.add_product(key="sku-MUG-9")
    target = make_target(emulator, product_key_template="sku-{sku}")
    target.setup()
    target.upsert(review(product_sku="MUG-9"))


def test_commercetools_expired_token_is_renewed_once(emulator, target):
    target.upsert(review())
    emulator.expire_tokens()
    target.upsert(review(rating=1))
    assert sum(1 for r in emulator.requests if r.path.endswith("/oauth/token")) == 2


def test_commercetools_wrong_credentials_are_a_configuration_error_without_the_secret(emulator):
    settings = CommercetoolsConfig(
        project_key="reviewbridge-test",
        client_id="ct-client",
        client_secret="wrong-secret-value",
        api_url="http://ct.test",
        auth_url="http://ct.test",
    )
    target = CommercetoolsTarget(settings, transport=httpx.WSGITransport(app=emulator), sleep=lambda s: None)
    with pytest.raises(ConfigError, match="CTP_CLIENT_SECRET") as caught:
        target.upsert(review())
    assert "wrong-secret-value" not in str(caught.value)


def test_commercetools_unavailable_every_time_is_retryable(emulator, target):
    emulator.inject(503, times=100)
    with pytest.raises(RetryableTargetError):
        target.upsert(review())


def test_commercetools_faults_on_three_in_ten_calls_still_give_one_review_each(emulator, target):
    emulator.fail_rate = 0.3
    random.seed(5)
    for n in range(30):
        for _ in range(20):
            try:
                target.upsert(review(str(n)))
                break
            except RetryableTargetError:
                continue
    emulator.fail_rate = 0.0
    keys = [r["key"] for r in emulator.reviews.values()]
    assert len(keys) == len(set(keys)) == 30


def test_commercetools_iter_reviews_pages_by_id(emulator, target):
    for n in range(12):
        target.upsert(review(str(n)))
    seen = list(target.iter_reviews(page_size=5))
    assert len(seen) == 12 and [r["id"] for r in seen] == sorted(r["id"] for r in seen)
    pages = [r for r in emulator.requests if r.method == "GET" and r.path.endswith("/reviews")]
    assert len(pages) == 3


# --- the witness a run's journal listens with, and putting a review back (rollback) ---------------


def _witness():
    told: list[tuple] = []
    return told, lambda key, before, after: told.append((key, before, after))


def test_commercetools_upsert_tells_the_witness_the_review_before_each_write_and_nothing_when_unchanged(target):
    told, witness = _witness()
    created = target.upsert(review(), witness=witness)
    first = target.get(created.key)
    target.upsert(review(rating=2), witness=witness)
    target.upsert(review(rating=2), witness=witness)
    assert [(key, before, after["rating"]) for key, before, after in told] == [
        (created.key, None, 5),
        (created.key, first, 2),
    ]
    assert told[1][2] == snapshot(target.get(created.key)), "the snapshot told is what the review became"


def test_commercetools_delete_tells_the_witness_the_review_it_deletes(target):
    told, witness = _witness()
    ref = target.upsert(review())
    was = target.get(ref.key)
    target.delete(ref, witness=witness)
    assert told == [(ref.key, was, None)]


def test_commercetools_restore_puts_back_the_fields_an_update_changed(target):
    ref = target.upsert(review())
    was = target.get(ref.key)
    target.upsert(review(rating=1, title=None, published=False, author_country="DE"))
    restored = target.restore(target.get(ref.key), was)
    assert restored is not None and restored["id"] == was["id"] and snapshot(restored) == snapshot(was)


def test_commercetools_restore_at_a_stale_version_is_a_conflict(target):
    ref = target.upsert(review())
    was = target.get(ref.key)
    target.upsert(review(rating=1))
    stale = target.get(ref.key)
    target.upsert(review(rating=2))
    assert target.restore(stale, was) is None


def test_commercetools_recreate_brings_a_deleted_review_back_with_its_key_and_a_new_id(target):
    ref = target.upsert(review())
    was = target.get(ref.key)
    target.delete(ref)
    back = target.recreate(was)
    assert back is not None and back["key"] == was["key"] and back["uniquenessValue"] == was["uniquenessValue"]
    assert back["id"] != was["id"] and snapshot(back) == snapshot(was)


def test_commercetools_delete_in_hide_mode_tells_the_witness_an_update_that_restore_undoes(emulator):
    target = make_target(emulator, on_source_delete="hide")
    target.setup()
    told, witness = _witness()
    ref = target.upsert(review())
    was = target.get(ref.key)
    target.delete(ref, witness=witness)
    [(key, before, after)] = told
    hidden = target.get(ref.key)
    assert (key, before, after) == (ref.key, was, snapshot(hidden)) and after["state"] != snapshot(was)["state"]
    restored = target.restore(hidden, was)
    assert restored is not None and snapshot(restored) == snapshot(was)


def test_commercetools_product_statistics_count_the_reviews_included_in_statistics(emulator, target):
    target.upsert(review("1", rating=5))
    target.upsert(review("2", rating=4))
    target.upsert(review("3", rating=4))
    target.upsert(review("4", rating=1, published=False))  # our hidden State has no ReviewIncludedInStatistics
    product_id = emulator.review_by_key(target.key_for(review("1")))["target"]["id"]

    key, stats = target.product_statistics(product_id)

    assert key == PRODUCT
    assert stats == RatingStatistics(3, {4: 2, 5: 1}, Decimal("4.33333"), Decimal("0.00001"))


def test_commercetools_product_statistics_are_read_afresh_each_time(emulator, target):
    product_id = emulator.add_product(key="kettle-01")["id"]
    assert target.product_statistics(product_id) == ("kettle-01", RatingStatistics())
    target.upsert(review("1", product_id="kettle-01", rating=3))
    assert target.product_statistics(product_id) == ("kettle-01", RatingStatistics(1, {3: 1}, Decimal(3), CT_UNIT))
    assert [r.path for r in emulator.requests if r.path.endswith(product_id)] == [
        f"/reviewbridge-test/products/{product_id}"
    ] * 2


def test_commercetools_product_statistics_of_a_deleted_product_are_none(target):
    assert target.product_statistics("0b6bd4cc-0000-4000-8000-000000000000") is None
