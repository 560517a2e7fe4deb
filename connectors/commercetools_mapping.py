"""Canonical Review ⇄ commercetools Review: the key, the draft, and the update actions between them.

Pure functions; `connectors/commercetools.py` does the HTTP around them.

Key derivation (also the `uniquenessValue`, which no update action can change)::

    key = "<source>-<source review id>-<digest>"      e.g. trustoo-880000001-3f2a…
    digest = first 32 hex of SHA-256("<source>\\0<account>\\0<source review id>")

The digest alone makes keys collision-free (128 bits over the full identity, the account
included); the readable id is there for people and is left out when it is not plain
`[A-Za-z0-9]{1,64}`. Keys stay within `[A-Za-z0-9_-]` and well under 256 characters.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.base import PayloadError, RatingStatistics, Review

__all__ = [
    "CUSTOM_FIELDS",
    "CUSTOM_TYPE_KEY",
    "HIDDEN_STATE_KEY",
    "PUBLISHED_STATE_KEY",
    "Desired",
    "desired_review",
    "desired_snapshot",
    "draft_for",
    "rating_statistics",
    "recreate_draft",
    "restore_actions",
    "review_key",
    "snapshot",
    "update_actions",
]

CUSTOM_TYPE_KEY = "reviewbridge-review"
PUBLISHED_STATE_KEY = "reviewbridge-published"
HIDDEN_STATE_KEY = "reviewbridge-hidden"

#: The Custom Type's fields: name → commercetools field type.
CUSTOM_FIELDS: dict[str, str] = {
    "source": "String",
    "account": "String",
    "sourceReviewId": "String",
    "sourceProductId": "String",
    "verified": "Boolean",
    "media": "String",
    "replyText": "String",
    "replyDate": "DateTime",
    "authorCountry": "String",
    "sourceCreatedAt": "DateTime",
    "sourceUpdatedAt": "DateTime",
    # A review several sources have (CROSS_SOURCE_IDENTITY): each of them, as JSON
    # [{"source", "account", "sourceReviewId"}, …]; absent on a review only one source has.
    "linkedSources": "String",
}

_PLAIN_ID = re.compile(r"[A-Za-z0-9]{1,64}")


def review_key(source: str, account: str, source_id: str) -> str:
    digest = hashlib.sha256(f"{source}\0{account}\0{source_id}".encode()).hexdigest()[:32]
    readable = f"{source_id}-" if _PLAIN_ID.fullmatch(source_id) else ""
    return f"{_safe(source)}-{readable}{digest}"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "", text)[:32] or "source"


@dataclass(frozen=True)
class Desired:
    """What the commercetools review should look like, with every reference already an id."""

    key: str
    target_id: str  # a product's id, or a channel's for a store review
    state_id: str
    type_id: str
    rating: int
    title: str | None
    text: str | None
    author_name: str | None
    locale: str | None
    fields: Mapping[str, Any]
    target_type: str = "product"  # product | channel

    @property
    def target(self) -> dict[str, str]:
        return {"typeId": self.target_type, "id": self.target_id}


def desired_review(
    review: Review,
    *,
    target_id: str,
    state_id: str,
    type_id: str,
    rating_scale: int,
    target_type: str = "product",
    key: str | None = None,
    linked: Sequence[Mapping[str, str]] = (),
) -> Desired:
    """The review as commercetools should hold it. A merged review (several sources have it) is
    written under its group's `key`, showing `review` (the source that takes precedence) and
    listing every source it is `linked` to."""
    fields = _custom_fields(review)
    if len(linked) > 1:
        fields["linkedSources"] = json.dumps(list(linked), separators=(",", ":"))
    return Desired(
        key=key or review_key(review.source, review.account, review.source_id),
        target_id=target_id,
        target_type=target_type,
        state_id=state_id,
        type_id=type_id,
        rating=review.rating * (20 if rating_scale == 100 else 1),
        title=review.title,
        text=review.body,
        author_name=review.author_name,
        locale=review.locale,
        fields=fields,
    )


def _custom_fields(review: Review) -> dict[str, Any]:
    media = [{"url": m.url, "thumbnailUrl": m.thumbnail_url, "type": m.kind, "hidden": m.hidden} for m in review.media]
    fields = {
        "source": review.source,
        "account": review.account,
        "sourceReviewId": review.source_id,
        "sourceProductId": review.product_id,
        "verified": review.verified,
        "media": json.dumps(media, separators=(",", ":")) if media else None,
        "replyText": review.reply.text if review.reply else None,
        "replyDate": _datetime(review.reply.replied_at) if review.reply else None,
        "authorCountry": review.author_country,
        "sourceCreatedAt": _datetime(review.created_at),
        "sourceUpdatedAt": _datetime(review.updated_at),
    }
    return {name: value for name, value in fields.items() if value is not None}


def _datetime(value: datetime | None) -> str | None:
    if value is None:
        return None
    value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def draft_for(desired: Desired) -> dict[str, Any]:
    """The ReviewDraft that creates the review; both our States are initial, so it may carry one."""
    draft: dict[str, Any] = {
        "key": desired.key,
        "uniquenessValue": desired.key,
        "rating": desired.rating,
        "target": desired.target,
        "state": {"typeId": "state", "id": desired.state_id},
        "custom": {"type": {"typeId": "type", "id": desired.type_id}, "fields": dict(desired.fields)},
    }
    for field, value in (
        ("title", desired.title),
        ("text", desired.text),
        ("authorName", desired.author_name),
        ("locale", desired.locale),
    ):
        if value is not None:
            draft[field] = value
    return draft


def update_actions(current: Mapping[str, Any], desired: Desired) -> list[dict[str, Any]]:
    """Only the actions that change something; none at all when the review already matches."""
    actions: list[dict[str, Any]] = []
    if current.get("key") != desired.key:
        actions.append({"action": "setKey", "key": desired.key})
    for field, action, value in (
        ("rating", "setRating", desired.rating),
        ("title", "setTitle", desired.title),
        ("text", "setText", desired.text),
        ("authorName", "setAuthorName", desired.author_name),
        ("locale", "setLocale", desired.locale),
    ):
        if current.get(field) != value:
            actions.append({"action": action, field: value} if value is not None else {"action": action})
    if (current.get("target") or {}).get("id") != desired.target_id:
        actions.append({"action": "setTarget", "target": desired.target})
    if (current.get("state") or {}).get("id") != desired.state_id:
        # force: a sync must move either way, whatever transitions a merchant has drawn.
        actions.append(
            {"action": "transitionState", "state": {"typeId": "state", "id": desired.state_id}, "force": True}
        )
    actions.extend(_custom_actions(current.get("custom"), desired))
    return actions


def _custom_actions(current: Mapping[str, Any] | None, desired: Desired) -> list[dict[str, Any]]:
    if not current or (current.get("type") or {}).get("id") != desired.type_id:
        return [
            {
                "action": "setCustomType",
                "type": {"typeId": "type", "id": desired.type_id},
                "fields": dict(desired.fields),
            }
        ]
    have = current.get("fields") or {}
    actions = [
        {"action": "setCustomField", "name": name, "value": value}
        for name, value in desired.fields.items()
        if have.get(name) != value
    ]
    # Removing a field that is not there is an error, so only fields we own and that are set.
    actions += [
        {"action": "setCustomField", "name": name}
        for name in CUSTOM_FIELDS
        if name in have and name not in desired.fields
    ]
    return actions


# --- what a write changed, and putting it back (rollback) -------------------------------------


def snapshot(review: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a commercetools review that ReviewBridge writes: two reviews with equal snapshots
    look the same to a shopper, whatever their ids and versions."""
    custom = review.get("custom") or {}
    target = review.get("target") or {}
    return {
        "key": review.get("key"),
        "rating": review.get("rating"),
        "title": review.get("title"),
        "text": review.get("text"),
        "authorName": review.get("authorName"),
        "locale": review.get("locale"),
        "target": {"typeId": target.get("typeId"), "id": target.get("id")} if target else None,
        "state": (review.get("state") or {}).get("id"),
        "type": (custom.get("type") or {}).get("id"),
        "fields": dict(custom.get("fields") or {}),
    }


def desired_snapshot(desired: Desired) -> dict[str, Any]:
    """The snapshot of the review once `desired` is written."""
    return {
        "key": desired.key,
        "rating": desired.rating,
        "title": desired.title,
        "text": desired.text,
        "authorName": desired.author_name,
        "locale": desired.locale,
        "target": desired.target,
        "state": desired.state_id,
        "type": desired.type_id,
        "fields": dict(desired.fields),
    }


def _as_desired(before: Mapping[str, Any]) -> Desired:
    shot = snapshot(before)
    target = shot["target"] or {}
    return Desired(
        key=shot["key"],
        target_id=target.get("id") or "",
        target_type=target.get("typeId") or "product",
        state_id=shot["state"] or "",
        type_id=shot["type"] or "",
        rating=shot["rating"],
        title=shot["title"],
        text=shot["text"],
        author_name=shot["authorName"],
        locale=shot["locale"],
        fields=shot["fields"],
    )


def restore_actions(current: Mapping[str, Any], before: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The actions that make `current` look as `before` did (none when it does already). A part
    `before` lacked (no State, no Custom Type) is left as it is: no action can remove a State."""
    actions = update_actions(current, _as_desired(before))
    if not (before.get("state") or {}).get("id"):
        actions = [action for action in actions if action["action"] != "transitionState"]
    if not ((before.get("custom") or {}).get("type") or {}).get("id"):
        actions = [action for action in actions if action["action"] not in ("setCustomType", "setCustomField")]
    return actions


def recreate_draft(before: Mapping[str, Any]) -> dict[str, Any]:
    """The ReviewDraft that brings a deleted review back with its key and uniquenessValue (commercetools
    gives it a new id, and version 1)."""
    draft: dict[str, Any] = {"key": before["key"]}
    for field in ("uniquenessValue", "locale", "authorName", "title", "text", "rating"):
        if before.get(field) is not None:
            draft[field] = before[field]
    target = before.get("target") or {}
    if target.get("id"):
        draft["target"] = {"typeId": target.get("typeId", "product"), "id": target["id"]}
    if (before.get("state") or {}).get("id"):
        draft["state"] = {"typeId": "state", "id": before["state"]["id"]}
    custom = before.get("custom") or {}
    if (custom.get("type") or {}).get("id"):
        draft["custom"] = {
            "type": {"typeId": "type", "id": custom["type"]["id"]},
            "fields": dict(custom.get("fields") or {}),
        }
    if (before.get("customer") or {}).get("id"):
        draft["customer"] = {"typeId": "customer", "id": before["customer"]["id"]}
    return draft


def rating_statistics(resource: Mapping[str, Any]) -> RatingStatistics:
    """A product's `reviewRatingStatistics` (§1.2): from the reviews included in statistics, the
    count, `ratingsDistribution` {rating: n} (only the ratings used) and `averageRating` rounded to 5
    decimals; absent while no review counts. In the project's rating scale (CTP_RATING_SCALE)."""
    stats = resource.get("reviewRatingStatistics")
    if not isinstance(stats, Mapping) or not stats.get("count"):
        return RatingStatistics()
    try:
        distribution = {int(rating): int(n) for rating, n in (stats.get("ratingsDistribution") or {}).items() if n}
        average = Decimal(str(stats["averageRating"]))
        count = int(stats["count"])
    except (KeyError, TypeError, ValueError, AttributeError, InvalidOperation) as exc:
        raise PayloadError(f"reviewRatingStatistics is unreadable ({type(exc).__name__})", payload=stats) from None
    return RatingStatistics(count=count, distribution=distribution, average=average, unit=Decimal("0.00001"))
