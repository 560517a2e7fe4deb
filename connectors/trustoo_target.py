"""Trustoo as a review target: reviews from other platforms copied into a shop (create_review).

Trustoo has no key and no update, so "exactly once" rests on the ledger: the pipeline reserves the
ledger row (with `key_for`, a fingerprint of the content) before each write, and when an earlier
write's outcome is unknown (`in_doubt`), this target looks for the review before creating it
again. An edit at the source is a delete and a create. The same fingerprint lets the pipeline
recognise the review when Trustoo sends it back as a webhook.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC
from typing import Any, Protocol

from connectors.base import ProductNotFound, Review, TargetRef
from connectors.trustoo import fingerprint

__all__ = ["TrustooTarget", "create_fields"]

_LOOKUP_PAGES = 3  # how far back (newest first) an in-doubt create is looked for
_COUNTRY = re.compile(r"[A-Z]{2}")
_DIGITS = re.compile(r"\d+")

ProductMap = Callable[[str, str, str], tuple[str, str] | None]


class TrustooReviews(Protocol):
    def create_review(self, shop: str, fields: Mapping[str, Any]) -> str: ...
    def delete_review(self, shop: str, review_id: str) -> None: ...
    def iter_reviews(self, shop: str, **options: Any) -> Iterator[dict]: ...
    def get_reviews(self, shop: str, **options: Any) -> Any: ...


class TrustooTarget:
    name = "trustoo"
    idempotent = False

    def __init__(
        self, api: TrustooReviews, *, shop: str, source_label: str = "ChatWILL", product_map: ProductMap | None = None
    ):
        self._api = api
        self._shop = shop
        self._source_label = source_label
        self._product_map = product_map

    def check(self) -> None:
        """One signed read: fails with a ConfigError when Trustoo refuses our credentials."""
        self._api.get_reviews(self._shop, page=1, page_size=1)

    def key_for(self, review: Review) -> str:
        return fingerprint(self._fields(review))

    def upsert(self, review: Review, known: TargetRef | None = None, *, in_doubt: bool = False) -> TargetRef:
        fields = self._fields(review)
        key = fingerprint(fields)
        if in_doubt:
            existing = self._find(fields)
            if existing is not None:
                if known is not None and known.id and known.id != existing:
                    self._api.delete_review(self._shop, known.id)
                return TargetRef(key=key, id=existing)
        if known is not None and known.id:
            self._api.delete_review(self._shop, known.id)  # no update in Trustoo: replace the copy
        return TargetRef(key=key, id=self._api.create_review(self._shop, fields))

    def delete(self, ref: TargetRef) -> None:
        if ref.id:
            self._api.delete_review(self._shop, ref.id)

    def _find(self, fields: Mapping[str, Any]) -> str | None:
        """The id of a review in the shop with exactly this content, if an unanswered create made it."""
        wanted = fingerprint(fields)
        items = self._api.iter_reviews(self._shop, product_ids=fields["product_id"])
        for seen, item in enumerate(items, start=1):
            if fingerprint(item) == wanted and (item.get("title") or None) == fields.get("title"):
                return str(item["id"])
            if seen >= _LOOKUP_PAGES * 100:
                return None
        return None

    def _fields(self, review: Review) -> dict[str, Any]:
        return create_fields(review, product_id=self._product_id(review), source_label=self._source_label)

    def _product_id(self, review: Review) -> str:
        product = review.product_id
        if review.is_store_review or product is None:
            return "0"
        mapped = self._product_map(review.source, review.account, product) if self._product_map else None
        if mapped is not None:
            return mapped[1]
        if review.source == "trustoo" or _DIGITS.fullmatch(product):
            return product
        raise ProductNotFound(
            product,
            f"no Trustoo product for {review.source} product {review.product_id}: import a mapping with target trustoo",
        )


def create_fields(review: Review, *, product_id: str, source_label: str) -> dict[str, Any]:
    """The Create Review body (the 2026 set of docs/platforms/trustoo.md §1.6, §2 item 9)."""
    fields: dict[str, Any] = {
        "product_id": product_id,
        "rating": review.rating,
        "author": (review.author_name or "Anonymous")[:120],
        "content": (review.body or "")[:10000],
        "source": source_label,
        "is_published": 1 if review.published else 0,
        "is_verified": 1 if review.verified else 0,
    }
    if review.title:
        fields["title"] = review.title[:300]
    if review.author_email:
        fields["author_email"] = review.author_email
    country = (review.author_country or "").upper()
    if _COUNTRY.fullmatch(country):
        fields["author_country"] = country
    if review.created_at is not None:
        fields["commented_at"] = review.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    media = [
        {
            "url": m.url,
            "thumbnail_url": m.thumbnail_url or m.url,
            "type": 2 if m.kind == "video" else 1,
            "is_published": 0 if m.hidden else 1,
        }
        for m in review.media[:10]
    ]
    if media:
        fields["media"] = media
    if review.reply is not None:
        reply: dict[str, Any] = {"content": review.reply.text}
        if review.reply.replied_at is not None:
            reply["reply_at"] = review.reply.replied_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        fields["reply"] = reply
    return fields
