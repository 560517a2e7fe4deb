"""Rating statistics compared, pure: counts and distributions equal, averages to the precision given."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from app.core.rating_statistics import ProductStatistics, StatisticsTally, agree, combined, counted, scaled
from connectors.base import RatingStatistics, Review

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
TENTH, CT = Decimal("0.1"), Decimal("0.00001")


def stats(distribution: dict[int, int], average: str | None = None, unit: Decimal | None = None) -> RatingStatistics:
    count = sum(distribution.values())
    return RatingStatistics(count, distribution, None if average is None else Decimal(average), unit)


@pytest.mark.parametrize(
    ("source", "target", "expected"),
    [
        pytest.param(stats({4: 1, 5: 2}, "4.7", TENTH), stats({4: 1, 5: 2}, "4.66667", CT), True, id="4.7-is-4.66667"),
        pytest.param(stats({4: 1, 5: 2}, "4.6", TENTH), stats({4: 1, 5: 2}, "4.66667", CT), False, id="4.6-is-not"),
        pytest.param(stats({4: 1, 5: 2}, "5", Decimal(1)), stats({4: 1, 5: 2}, "4.66667", CT), True, id="whole-stars"),
        pytest.param(stats({4: 1, 5: 2}, "4.7", TENTH), stats({4: 1, 5: 3}, "4.75", CT), False, id="count-differs"),
        pytest.param(stats({3: 1, 5: 1}, "4.0", TENTH), stats({4: 2}, "4", CT), False, id="distribution-differs"),
        pytest.param(counted({4: 1, 5: 2}), stats({4: 1, 5: 2}, "4.66667", CT), True, id="counted-to-5-decimals"),
        pytest.param(counted({4: 1, 5: 2}), stats({4: 1, 5: 2}, "4.66666", CT), False, id="counted-off-by-1e-5"),
        pytest.param(stats({}), stats({}), True, id="nothing-counts-on-either-side"),
        pytest.param(stats({5: 1}, "5.0", TENTH), stats({}), False, id="commercetools-counts-nothing"),
    ],
)
def test_statistics_agree_on_counts_distribution_and_the_average_to_the_sources_precision(source, target, expected):
    assert agree(source, target) is expected


def test_counted_statistics_have_an_exact_average_and_only_the_ratings_used():
    result = counted({1: 0, 4: 1, 5: 2})
    assert (result.count, dict(result.distribution), result.unit) == (3, {4: 1, 5: 2}, None)
    assert result.average == Decimal(14) / 3
    assert counted({}) == RatingStatistics()


def test_combined_adds_other_reviews_and_scales_the_sources_precision_down():
    source = stats({5: 2}, "5.0", TENTH)
    together = combined(source, {3: 1})
    assert (together.count, dict(together.distribution)) == (3, {3: 1, 5: 2})
    assert together.average == Decimal(13) / 3 and together.unit == TENTH * 2 / 3
    assert agree(together, stats({3: 1, 5: 2}, "4.33333", CT))


def test_combined_takes_away_copies_we_wrote_into_the_source():
    source = stats({4: 1, 5: 1}, "4.5", TENTH)
    # the rounding of two reviews' average now falls on one: twice the slack
    assert combined(source, {4: -1}) == RatingStatistics(1, {5: 1}, Decimal("5.0"), Decimal("0.2"))
    assert combined(source, {}) is source


def test_scaled_moves_five_stars_to_a_hundred_point_scale():
    result = scaled(stats({4: 1, 5: 2}, "4.7", TENTH), 20)
    assert result == RatingStatistics(3, {80: 1, 100: 2}, Decimal("94.0"), Decimal("2.0"))
    assert agree(result, stats({80: 1, 100: 2}, "93.33333", CT))


def test_product_statistics_report_the_product_both_figures_and_the_state():
    entry = ProductStatistics(
        "111", "mug-01", stats({4: 1, 5: 2}, "4.7", TENTH), counted({5: 3}), others={3: 1}, agrees=False
    )
    assert entry.state == "drift"
    assert entry.as_dict() == {
        "product": {"source_id": "111", "key": "mug-01"},
        "source": {"count": 3, "average": 4.7, "distribution": {"4": 1, "5": 2}},
        "target": {"count": 3, "average": 5.0, "distribution": {"5": 3}},
        "agrees": False,
        "settling": False,
        "others": {"count": 1, "distribution": {"3": 1}},
    }
    assert ProductStatistics("111", None, None, RatingStatistics(), settling=True).state == "settling"


def _review(source_id: str, product: str = "111", rating: int = 5, published: bool = True) -> Review:
    return Review("trustoo", "shop-a", source_id, product, rating, published=published)


def _ct_review(product_id: str, *, rating: int = 5, modified: datetime = NOW - timedelta(hours=1), **fields) -> dict:
    return {
        "rating": rating,
        "includedInStatistics": True,
        "target": {"typeId": "product", "id": product_id},
        "lastModifiedAt": modified.isoformat().replace("+00:00", "Z"),
        "custom": {"fields": fields},
    }


def test_tally_counts_published_reviews_and_copies_and_others_by_product():
    tally = StatisticsTally()
    tally.note_source(_review("1"), target_product="ct-111")
    tally.note_source(_review("2", rating=4, published=False), target_product="ct-111")
    tally.note_source(_review("3", rating=3), copy=True)
    tally.note_source(_review("4", product="0"))  # a store review: no product
    tally.note_target(_ct_review("ct-111", rating=2), ours=False)
    tally.note_target(_ct_review("ct-111", sourceProductId="222", sourceReviewId="9"), ours=True)
    assert tally.products == {"111": "ct-111", "222": "ct-111"}
    assert tally.listed == {"111": {5: 1, 3: 1}}
    assert tally.copies == {"111": {3: 1}}
    assert tally.others == {"ct-111": {2: 1}}


def test_tally_a_product_written_in_the_last_minute_is_settling_and_an_older_one_is_not():
    tally = StatisticsTally(recent={"1"})
    tally.note_source(_review("1"), target_product="ct-111")
    tally.note_target(_ct_review("ct-222", modified=NOW - timedelta(seconds=30)), ours=False)
    tally.note_target(_ct_review("ct-333", modified=NOW - timedelta(seconds=90)), ours=False)
    assert tally.settling("111", "ct-111", NOW)
    assert tally.settling("222", "ct-222", NOW)
    assert not tally.settling("333", "ct-333", NOW)


def test_tally_a_recent_write_neither_side_lists_any_more_leaves_every_product_settling():
    tally = StatisticsTally(recent={"deleted-everywhere"})
    tally.note_target(_ct_review("ct-333", modified=NOW - timedelta(hours=1)), ours=False)
    assert tally.settling("333", "ct-333", NOW)
