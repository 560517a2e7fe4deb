"""Rating statistics in reconcile: does the star summary commercetools keeps for a product agree
with the one the source shows for it?

    source   what the platform shows: Trustoo's get_rating (its own figures, average to 0.1);
             Wix has no such call, so its published reviews are counted as they are listed
    target   the product's reviewRatingStatistics: commercetools counts the reviews included in
             statistics, so hidden ones (our hidden State has no ReviewIncludedInStatistics) do not
    others   reviews that count on the product in commercetools but are not this account's own
             (another source or account, or written outside ReviewBridge), less the copies
             ReviewBridge wrote into this source (they count there and, as originals, in `others`)

A product agrees when the target equals source + others in count and distribution, and the averages
lie within the precision both give (Trustoo's "4.7" agrees with 4.66667, not with 4.6).
commercetools updates its statistics eventually (docs/platforms/commercetools.md §4), so a
disagreement on a product whose reviews were written in the last SETTLE_S is "settling", not drift.
Products with no commercetools match are not compared: reconcile reports their reviews as unmatched.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from connectors.base import FixAndReplayError, PayloadError, RatingSource, RatingStatistics, Review, ReviewSource
from connectors.commercetools import CommercetoolsTarget

__all__ = [
    "SETTLE_S",
    "ProductStatistics",
    "StatisticsTally",
    "agree",
    "combined",
    "compare",
    "counted",
    "figures",
    "scaled",
]

SETTLE_S = 60.0  # a product written this recently may not show its new statistics yet
_SHOWN = Decimal("0.00001")  # an exact average is shown to commercetools' 5 decimals


def counted(ratings: Mapping[int, int]) -> RatingStatistics:
    """Statistics counted from {rating: n}: the average is exact (no unit)."""
    distribution = {rating: n for rating, n in ratings.items() if n}
    count = sum(distribution.values())
    if count <= 0:
        return RatingStatistics(count=count, distribution=distribution)
    total = sum(rating * n for rating, n in distribution.items())
    return RatingStatistics(count=count, distribution=distribution, average=Decimal(total) / count)


def scaled(stats: RatingStatistics, factor: int) -> RatingStatistics:
    """1-5 statistics in a project whose ratings go to 100 (CTP_RATING_SCALE=100: 5 stars are 100)."""
    if factor == 1:
        return stats
    return RatingStatistics(
        count=stats.count,
        distribution={rating * factor: n for rating, n in stats.distribution.items()},
        average=None if stats.average is None else stats.average * factor,
        unit=None if stats.unit is None else stats.unit * factor,
    )


def combined(stats: RatingStatistics, extra: Mapping[int, int]) -> RatingStatistics:
    """`stats` with the `extra` ratings added ({rating: n}; a negative n takes away). The average
    keeps its precision: the source's rounding weighs less among more reviews."""
    extra = {rating: n for rating, n in extra.items() if n}
    if not extra:
        return stats
    together: Counter[int] = Counter(stats.distribution)
    together.update(extra)
    distribution = {rating: n for rating, n in together.items() if n}
    count = stats.count + sum(extra.values())
    if count <= 0 or (stats.count and stats.average is None):
        return RatingStatistics(count=count, distribution=distribution)
    total = (stats.average or Decimal(0)) * stats.count + sum(rating * n for rating, n in extra.items())
    unit = None if stats.unit is None or not stats.count else stats.unit * stats.count / count
    return RatingStatistics(count=count, distribution=distribution, average=total / count, unit=unit)


def agree(expected: RatingStatistics, actual: RatingStatistics) -> bool:
    """Equal counts and distributions, and averages equal to the precision both sides give: each may
    be off by half its unit (its rounding), so 4.7 (to 0.1) agrees with 4.66667 (to 0.00001)."""
    if expected.count != actual.count or dict(expected.distribution) != dict(actual.distribution):
        return False
    if expected.average is None or actual.average is None:
        return expected.average is None and actual.average is None
    slack = sum((unit / 2 for unit in (expected.unit, actual.unit) if unit is not None), Decimal(0))
    return abs(expected.average - actual.average) <= slack


@dataclass(frozen=True)
class ProductStatistics:
    """One product's comparison, as reconcile reports it."""

    source_product_id: str
    key: str | None  # the commercetools product's key
    source: RatingStatistics | None  # None when the source's figures could not be read (see error)
    target: RatingStatistics
    others: Mapping[int, int] = field(default_factory=dict)
    agrees: bool = False
    settling: bool = False
    error: str = ""

    @property
    def state(self) -> str:
        """agrees, settling (written in the last minute: commercetools may not have counted it yet) or drift."""
        return "agrees" if self.agrees else "settling" if self.settling else "drift"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "product": {"source_id": self.source_product_id, "key": self.key},
            "source": None if self.source is None else figures(self.source),
            "target": figures(self.target),
            "agrees": self.agrees,
            "settling": self.settling,
        }
        if self.others:
            out["others"] = {"count": sum(self.others.values()), "distribution": _distribution(self.others)}
        if self.error:
            out["error"] = self.error
        return out


def figures(stats: RatingStatistics) -> dict[str, Any]:
    """count, average (as the platform gives it; an exact one to 5 decimals) and distribution."""
    average = stats.average
    if average is not None and stats.unit is None:
        average = average.quantize(_SHOWN)
    return {
        "count": stats.count,
        "average": None if average is None else float(average),
        "distribution": _distribution(stats.distribution),
    }


def _distribution(ratings: Mapping[int, int]) -> dict[str, int]:
    return {str(rating): n for rating, n in sorted(ratings.items()) if n}


class StatisticsTally:
    """What reconcile notes for the statistics while it reads both sides, each once.

    `recent`: the account's reviews written to commercetools in the last SETTLE_S (the ledger); a
    product one of them belongs to is settling. One that neither side lists any more (deleted at the
    source, then in commercetools) cannot be placed, so then every disagreement is taken as settling.
    """

    def __init__(self, recent: Iterable[str] = ()):
        self._recent = set(recent)
        self.products: dict[str, str] = {}  # source product id → commercetools product id
        self.listed: dict[str, Counter[int]] = defaultdict(Counter)  # source product → published ratings
        self.copies: dict[str, Counter[int]] = defaultdict(Counter)  # of them, our copies of other sources'
        self.others: dict[str, Counter[int]] = defaultdict(Counter)  # commercetools product → others' ratings
        self.touched: dict[str, datetime] = {}  # commercetools product → its reviews' last lastModifiedAt
        self.written: set[str] = set()  # source products with a review in `recent`

    def note_source(self, review: Review, *, target_product: str | None = None, copy: bool = False) -> None:
        """A review the source lists; `target_product`: the commercetools product it maps to."""
        if review.is_store_review or review.product_id is None:
            return
        product = review.product_id
        if target_product is not None:
            self.products[product] = target_product
        if review.source_id in self._recent:
            self._recent.discard(review.source_id)
            self.written.add(product)
        if review.published:
            self.listed[product][review.rating] += 1
            if copy:
                self.copies[product][review.rating] += 1

    def note_target(self, review: Mapping[str, Any], *, ours: bool) -> None:
        """A commercetools review; `ours`: one of this source account's (our Custom Type says so)."""
        target = review.get("target") or {}
        product = target.get("id")
        if target.get("typeId") != "product" or not product:
            return
        modified = _instant(review.get("lastModifiedAt"))
        if modified is not None and (product not in self.touched or modified > self.touched[product]):
            self.touched[product] = modified
        if ours:
            fields = (review.get("custom") or {}).get("fields") or {}
            source_product = fields.get("sourceProductId")
            if source_product and source_product != "0":
                self.products.setdefault(source_product, product)
                if fields.get("sourceReviewId") in self._recent:
                    self._recent.discard(fields["sourceReviewId"])
                    self.written.add(source_product)
        elif review.get("includedInStatistics") and type(review.get("rating")) is int:
            self.others[product][review["rating"]] += 1

    def settling(self, source_product: str, target_product: str, now: datetime) -> bool:
        if self._recent or source_product in self.written:
            return True
        touched = self.touched.get(target_product)
        return touched is not None and touched >= now - timedelta(seconds=SETTLE_S)


def compare(
    source: ReviewSource,
    account: str,
    target: CommercetoolsTarget,
    tally: StatisticsTally,
    *,
    now: datetime,
    each: Callable[[], None] | None = None,
) -> list[ProductStatistics]:
    """One entry per product of the account that commercetools has, disagreeing ones first.

    Per product: one commercetools read and, for a source that states its statistics (Trustoo), one
    call there; each goes through the platform's client and the account's shared rate limit."""
    factor = 20 if target.config.rating_scale == 100 else 1
    entries = []
    for product, target_product in sorted(tally.products.items()):
        if each is not None:
            each()
        key: str | None = None
        actual, error = RatingStatistics(), ""
        stated: RatingStatistics | None = None
        try:  # an unreadable figure spoils this product's comparison only; the rest go on
            found = target.product_statistics(target_product)
            if found is None:
                error = f"commercetools has no product {target_product} any more"
            else:
                key, actual = found
            stated = (
                source.rating_statistics(account, product)
                if isinstance(source, RatingSource)
                else counted(tally.listed.get(product, {}))
            )
        except (PayloadError, FixAndReplayError) as exc:
            error = str(exc)
        others: Counter[int] = Counter(tally.others.get(target_product, {}))
        others.subtract({rating * factor: n for rating, n in tally.copies.get(product, {}).items()})
        others = Counter({rating: n for rating, n in others.items() if n})
        agreeing = stated is not None and not error and agree(combined(scaled(stated, factor), others), actual)
        settling = not agreeing and not error and tally.settling(product, target_product, now)
        entries.append(ProductStatistics(product, key, stated, actual, dict(others), agreeing, settling, error))
    order = {"drift": 0, "settling": 1, "agrees": 2}
    return sorted(entries, key=lambda entry: (order[entry.state], entry.source_product_id))


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
