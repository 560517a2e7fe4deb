"""Wix JSON read into our terms (docs/platforms/wix.md §1.2, §1.4-§1.6, §1.8): review entities as
canonical Reviews, orders as Review Request bodies, contacts as an e-mail, and the JSON-string layers
of a webhook as objects.

Pure functions over the REST/webhook JSON (``id``, ``createdDate``; not the SDK's ``_id``).
Unknown keys are ignored; what a Review cannot do without (an id, a rating 1-5) raises PayloadError.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote

from connectors.base import Media, PayloadError, Reply, Review, read_json, web_media

__all__ = [
    "PUBLISHED_STATUSES",
    "REVIEW_REQUEST_ITEMS_MAX",
    "SOURCE",
    "STORES_APP_ID",
    "contact_email",
    "event_body",
    "event_sequence",
    "json_layer",
    "map_review",
    "media_url",
    "parse_time",
    "review_request_body",
]

SOURCE = "wix"
#: The Wix Stores catalog's appId on order line items (§1.6); only Stores items can be reviewed.
STORES_APP_ID = "215238eb-22a5-4c36-9e7b-e7c08025e04e"
REVIEW_REQUEST_ITEMS_MAX = 5  # Create Review Request takes at most 5 items (§1.5)
#: Only an APPROVED review is on the site; IN_MODERATION, SUBMITTED, REJECTED and UNKNOWN are not.
PUBLISHED_STATUSES = frozenset({"APPROVED"})

# Where each domain event keeps its entity or body: (event key, body key), tried in order.
_BODIES = (
    ("createdEvent", "entity"),
    ("updatedEvent", "currentEntity"),
    ("deletedEvent", "deletedEntity"),
    ("actionEvent", "body"),
)

_IMAGE_BASE = "https://static.wixstatic.com/media/"
# Wix serves each video in several renditions; 480p exists for every upload, higher ones may not.
_VIDEO_URL = "https://video.wixstatic.com/video/{id}/480p/mp4/file.mp4"


def map_review(instance_id: str, entity: Mapping[str, Any]) -> Review:
    """A Wix review (webhook entity or Reviews API answer) as a canonical Review."""
    if not isinstance(entity, Mapping):
        raise PayloadError("review is not an object", payload=entity)
    review_id = _text(entity.get("id"))
    if review_id is None:
        raise PayloadError("review has no id", payload=entity)
    content = _object(entity.get("content"))
    author = _object(entity.get("author"))
    moderation = _object(entity.get("moderation"))
    status = _text(moderation.get("moderationStatus")) or "UNKNOWN"
    origin = _object(entity.get("origin"))
    media, notes = web_media(m for m in (_media(item) for item in _list(content.get("media"))) if m is not None)
    return Review(
        source=SOURCE,
        account=instance_id,
        source_id=review_id,
        product_id=_text(entity.get("entityId")),
        rating=_rating(content.get("rating")),
        title=_text(content.get("title")),
        body=_text(content.get("body")),
        author_name=_text(author.get("authorName")),
        published=status in PUBLISHED_STATUSES,
        verified=entity.get("verified") is True,
        media=media,
        reply=_reply(entity.get("reply")),
        # reviewDate is when the review was written (an imported review keeps its own); createdDate
        # is when Wix stored it.
        created_at=parse_time(entity.get("reviewDate")) or parse_time(entity.get("createdDate")),
        updated_at=parse_time(entity.get("updatedDate")),
        extra={
            k: v
            for k, v in {
                "namespace": _text(entity.get("namespace")),
                "contact_id": _text(author.get("contactId")),
                "moderation_status": status,
                "origin": _text(origin.get("type")),
                "origin_app_id": _text(origin.get("appId")),
                "revision": _text(entity.get("revision")),
                "created_date": _text(entity.get("createdDate")),
            }.items()
            if v is not None
        },
        notes=notes,
    )


def contact_email(contact: Mapping[str, Any]) -> str | None:
    """A Contacts v4 contact's e-mail (§1.8): its primary one (`primaryInfo.email`), else the item of
    `info.emails` marked primary, else the first item; None when it has none."""
    primary = _text(_object(contact.get("primaryInfo")).get("email"))
    if primary is not None:
        return primary
    items = [item for item in _list(_object(_object(contact.get("info")).get("emails")).get("items")) if _email(item)]
    chosen = next((item for item in items if item.get("primary") is True), items[0] if items else None)
    return _email(chosen) if chosen is not None else None


def _email(item: Any) -> str | None:
    return _text(item.get("email")) if isinstance(item, Mapping) else None


def review_request_body(order: Mapping[str, Any]) -> dict[str, Any]:
    """The Create Review Request body for an order (as in §1.5), or PayloadError saying why the
    order is skipped: no order id, no buyer contact, or nothing from Wix Stores to review.

    Up to five Stores items, the most expensive first: what Wix itself picks for an order alone.
    """
    if not isinstance(order, Mapping):
        raise PayloadError("order is not an object", payload=order)
    order_id = _text(order.get("id"))
    if order_id is None:
        raise PayloadError("skipped: the order has no id", payload=dict(order))
    contact_id = _text(_object(order.get("buyerInfo")).get("contactId"))
    if contact_id is None:
        raise PayloadError(
            f"skipped: order {order_id} has no buyerInfo.contactId, so there is no one to ask for a review",
            payload=dict(order),
        )
    items = _stores_items(order)
    if not items:
        raise PayloadError(
            f"skipped: order {order_id} has no Wix Stores line items (catalog appId "
            f"{STORES_APP_ID}), and only Stores products can be reviewed",
            payload=dict(order),
        )
    return {
        "reviewRequest": {
            "namespace": "stores",
            "order": {"id": order_id},
            "items": [{"catalogItemId": item_id} for item_id in items],
            "recipient": {"contactId": contact_id},
            "communicationChannel": "EMAIL",
        }
    }


def _stores_items(order: Mapping[str, Any]) -> list[str]:
    ranked: list[tuple[float, int, str]] = []
    for index, line in enumerate(_list(order.get("lineItems"))):
        reference = _object(_object(line).get("catalogReference"))
        item_id = _text(reference.get("catalogItemId"))
        if item_id is not None and reference.get("appId") == STORES_APP_ID:
            ranked.append((-_price(line), index, item_id))
    chosen: list[str] = []
    for _, _, item_id in sorted(ranked):
        if item_id not in chosen:
            chosen.append(item_id)
    return chosen[:REVIEW_REQUEST_ITEMS_MAX]


def _price(line: Mapping[str, Any]) -> float:
    try:
        return float(_object(line.get("price")).get("amount") or 0)
    except (TypeError, ValueError):
        return 0.0


# --- the layers of a webhook (§1.2) ---------------------------------------------------------------


def json_layer(value: Any, where: str) -> dict[str, Any]:
    """One layer as an object: Wix sends most of them as JSON strings, some as objects."""
    if isinstance(value, Mapping):
        return dict(value)
    if value is None:
        raise PayloadError(f"{where} is missing")
    if not isinstance(value, str):
        raise PayloadError(f"{where} is neither a JSON string nor an object", payload=value)
    try:
        parsed = read_json(value, where)
    except PayloadError as exc:
        raise PayloadError(exc.reason, payload=value) from None
    if not isinstance(parsed, dict):
        raise PayloadError(f"{where} is not a JSON object", payload=value)
    return parsed


def event_body(domain: Mapping[str, Any], event_type: str) -> tuple[str, dict[str, Any]]:
    """(where, what) of the one entity or body of a domain event: an object, a JSON string, or its
    `…AsJson` twin (§3: parse both forms)."""
    for event_key, key in _BODIES:
        holder = domain.get(event_key)
        if not isinstance(holder, Mapping):
            continue
        for name in (key, f"{key}AsJson"):
            if holder.get(name) is not None:
                return event_key, json_layer(holder[name], f"the {event_type} event's {event_key}.{name}")
    raise PayloadError(f"the {event_type} event has no entity or body", payload=dict(domain))


def event_sequence(domain: Mapping[str, Any]) -> int | None:
    """entityEventSequence: an int64, sent as a string."""
    value = domain.get("entityEventSequence")
    if isinstance(value, bool):
        return None
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def parse_time(value: Any) -> datetime | None:
    """Wix's ISO 8601 (`2026-11-22T22:40:00.123Z`) as an aware UTC datetime; None when absent or unreadable."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def media_url(value: Any, kind: str) -> tuple[str | None, str | None]:
    """(url, thumbnail) for a Wix media value: an http(s) URL, a `wix:image://v1/<id>/…` or
    `wix:video://v1/<id>/…#posterUri=…` URI, or an object with `url` or `id`."""
    if isinstance(value, Mapping):
        url = _text(value.get("url"))
        thumbnail = _text(_object(value.get("thumbnail")).get("url"))
        if url and url.startswith(("http://", "https://")):
            return url, thumbnail
        value = url or _text(value.get("id"))
    text = _text(value)
    if text is None:
        return None, None
    if text.startswith(("http://", "https://")):
        return text, None
    for prefix, kind_of_uri in (("wix:image://", "image"), ("wix:video://", "video")):
        if text.startswith(prefix):
            # wix:image://v1/<media id>/<file name>#originWidth=…; a video's fragment names its poster.
            path, _, fragment = text[len(prefix) :].partition("#")
            segments = [s for s in path.split("/") if s]
            if len(segments) < 2:
                return None, None
            media_id = unquote(segments[1])
            if kind_of_uri == "image":
                return _IMAGE_BASE + media_id, None
            poster = parse_qs(fragment).get("posterUri", [None])[0]
            return _VIDEO_URL.format(id=media_id), (_IMAGE_BASE + poster) if poster else None
    # A bare media id (no scheme): an image file name or a video id.
    return (_IMAGE_BASE + text, None) if kind == "image" else (_VIDEO_URL.format(id=text), None)


def _media(item: Any) -> Media | None:
    item = _object(item)
    for kind in ("image", "video"):
        if item.get(kind) not in (None, ""):
            url, thumbnail = media_url(item[kind], kind)
            return Media(url=url, thumbnail_url=thumbnail, kind=kind) if url else None
    return None


def _reply(value: Any) -> Reply | None:
    reply = _object(value)
    text = _text(reply.get("message"))
    if text is None:
        return None
    return Reply(text=text, replied_at=parse_time(reply.get("updatedDate")) or parse_time(reply.get("createdDate")))


def _rating(value: Any) -> int:
    if value is None or value == "":
        raise PayloadError("review has no content.rating")
    if isinstance(value, bool):
        raise PayloadError(f"rating {value!r} is not a whole number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise PayloadError(f"rating {value!r} is not a whole number") from None
    if not number.is_integer():
        raise PayloadError(f"rating {value!r} is not a whole number")
    if not 1 <= number <= 5:
        raise PayloadError(f"rating {int(number)} is outside 1-5")
    return int(number)


def _object(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, (bool, Mapping, list)):
        return None
    text = str(value).strip()
    return text or None
