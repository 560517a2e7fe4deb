"""Trustoo: webhook verification, delivery parsing and review mapping (docs/platforms/trustoo.md).

A delivery is signed like an Open API call (§1.2): HMAC-SHA256, lowercase hex, over
``timestamp=<ts>|<raw body>``, keyed by the private token of the shop whose public token the
``Open-Trustoo-Webhook-Public-token`` header names. The body is a batch: ``{"list": [review, ...]}``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from connectors.base import (
    ConfigError,
    Event,
    EventKind,
    Media,
    PayloadError,
    RatingStatistics,
    Reply,
    Review,
    SignatureError,
    SourcePage,
    StaleRequest,
    UnknownKey,
    first_present,
    mapped,
    read_json,
    web_media,
)

__all__ = ["TOPICS", "TrustooSource", "TrustooWebhookVerifier", "fingerprint", "map_rating", "map_review"]

SOURCE = "trustoo"

#: Route slug → Trustoo topic. Trustoo registers one URL per topic (§2 item 5).
TOPICS = {
    "review-created": "review/created",
    "review-updated": "review/updated",
    "review-deleted": "review/deleted",
}
_KIND_BY_TOPIC = {
    "review/created": EventKind.UPSERT,
    "review/updated": EventKind.UPSERT,
    # Trustoo sends review/deleted for hidden reviews as well (§1.7).
    "review/deleted": EventKind.DELETE,
}

PUBLIC_TOKEN_HEADER = "open-trustoo-webhook-public-token"
TIMESTAMP_HEADER = "open-trustoo-webhook-timestamp"
SIGN_HEADER = "open-trustoo-webhook-sign"
REQUEST_ID_HEADER = "open-trustoo-webhook-requestid"


class TrustooWebhookVerifier:
    """Checks a Trustoo delivery on its raw bytes, in the standardwebhooks order:
    headers present → known shop → timestamp window → signature against every private token."""

    def __init__(
        self,
        private_tokens_by_public_token: Mapping[str, Sequence[str]] | KeyLookup,
        *,
        tolerance_s: int = 900,
        now: Callable[[], float] = time.time,
    ):
        """`private_tokens_by_public_token`: a mapping, or anything with `get(public_token)` that
        looks shops up as they come (accounts added while the service runs)."""
        if isinstance(private_tokens_by_public_token, Mapping):
            for public_token, private_tokens in private_tokens_by_public_token.items():
                if not public_token or not private_tokens or not all(private_tokens):
                    raise ValueError("every Trustoo shop needs a public token and at least one private token")
        self._keys = private_tokens_by_public_token
        self._tolerance_s = tolerance_s
        self._now = now

    @staticmethod
    def sign(private_token: str, timestamp: int | str, body: bytes) -> str:
        message = f"timestamp={timestamp}".encode()
        if body:
            message += b"|" + body
        return hmac.new(private_token.encode(), message, hashlib.sha256).hexdigest()

    def verify(self, headers: Mapping[str, str], body: bytes) -> str:
        """Return the shop's public token (the account) or raise a WebhookRejected."""
        lowered = {k.lower(): v for k, v in headers.items()}
        public_token = lowered.get(PUBLIC_TOKEN_HEADER, "").strip()
        timestamp = lowered.get(TIMESTAMP_HEADER, "").strip()
        signature = lowered.get(SIGN_HEADER, "").strip()
        missing = [
            name
            for name, value in (
                (PUBLIC_TOKEN_HEADER, public_token),
                (TIMESTAMP_HEADER, timestamp),
                (SIGN_HEADER, signature),
            )
            if not value
        ]
        if missing:
            raise SignatureError(SOURCE, "missing header(s): " + ", ".join(missing))
        private_tokens = self._keys.get(public_token)
        if private_tokens is None:
            raise UnknownKey(SOURCE, "unknown public token")
        # isdigit() alone lets through "²" and other Unicode digits that int() rejects.
        if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
            raise SignatureError(SOURCE, "timestamp is not Unix seconds")
        if abs(self._now() - int(timestamp)) > self._tolerance_s:
            raise StaleRequest(SOURCE, f"timestamp outside the {self._tolerance_s} s window")
        given = signature.lower().encode("ascii", "replace")
        for private_token in private_tokens:
            expected = self.sign(private_token, timestamp, body).encode()
            if hmac.compare_digest(expected, given):
                return public_token
        raise SignatureError(SOURCE, "signature does not match")


class KeyLookup(Protocol):
    def get(self, public_token: str) -> Sequence[str] | None: ...


class TrustooSource:
    """Trustoo as a source: its webhooks (`WebhookSource`) and, with the Open API, its review list
    (`ReviewSource`, for resync and the periodic poll).

    With an Open API client (`api`), events are checked against Trustoo itself: review/deleted
    means deleted *or hidden* (§1.7), so it is re-fetched to tell the two apart, and an upsert
    whose item lacks what the mapping needs is re-fetched too.

    `shared_key`: every shop's deliveries are signed with one key (OAuth platform mode, the app's
    client secret), so the signature does not bind the delivery to the shop its public-token
    header names: anyone holding one shop's signed delivery could send it under another shop's
    token. Nothing we hold says which Shopify domain a public token stands for, so the body's
    `my_shopify_domain` cannot be compared with the header; instead every event is re-fetched
    with the header shop's own credentials, and only what that shop's Open API answers is applied.
    An upsert of a review that shop does not have is quarantined.
    """

    name = SOURCE

    def __init__(self, verifier: TrustooWebhookVerifier, api: ReviewLookup | None = None, *, shared_key: bool = False):
        if shared_key and api is None:
            raise ConfigError("Trustoo webhooks signed with the client secret need the Open API to check their shop")
        self._verifier = verifier
        self._api = api
        self._shared_key = shared_key

    def verify(self, headers: Mapping[str, str], body: bytes) -> str:
        return self._verifier.verify(headers, body)

    def parse(
        self, account: str, topic: str | None, headers: Mapping[str, str], body: bytes
    ) -> list[Event | PayloadError]:
        """One event per review in the batch; an unusable item becomes a PayloadError of its own."""
        lowered = {k.lower(): v for k, v in headers.items()}
        document = _json_object(body)
        topic = topic or _topic_from_body(document)
        items = document.get("list")
        if not isinstance(items, list):
            raise PayloadError('body has no "list" of reviews')
        occurred_at = datetime.fromtimestamp(int(lowered[TIMESTAMP_HEADER]), tz=UTC)
        delivery_id = lowered.get(REQUEST_ID_HEADER) or None
        return [_event(account, topic, item, occurred_at, delivery_id) for item in items]

    def resolve(self, event: Event) -> Review | None:
        item: Mapping[str, Any] | None = event.payload
        if self._api is not None and (self._shared_key or event.kind is EventKind.DELETE or _incomplete(event.payload)):
            item = self._api.get_review(event.account, event.subject_id)
            if item is None and self._shared_key and event.kind is EventKind.UPSERT:
                raise PayloadError(
                    f"shop {event.account} has no review {event.subject_id}: the delivery, signed with the "
                    f"shared client secret, names {_shop_named(event.payload)} and came under this shop's "
                    f"public token; nothing is applied"
                )
        elif event.kind is EventKind.DELETE:
            item = None  # without the Open API, hidden and deleted look alike: take it as deleted
        return None if item is None else map_review(event.account, item)

    def echo_key(self, event: Event) -> str | None:
        return fingerprint(event.payload) if event.kind is EventKind.UPSERT else None

    def iter_reviews(self, account: str, since: datetime | None = None) -> Iterator[Review | PayloadError]:
        """The shop's reviews, newest first and lazily, back to `since` (with the client's overlap).
        A review that cannot be mapped comes as a PayloadError, so one bad review stops nothing."""
        for page in self.iter_pages(account, since):
            yield from page.items

    def iter_pages(self, account: str, since: datetime | None = None, start: str | None = None) -> Iterator[SourcePage]:
        if self._api is None:
            raise ConfigError("reading Trustoo's reviews needs its Open API (TRUSTOO_API_URL and a shop's tokens)")
        for page, items in self._api.iter_pages(account, since=since, start_page=int(start or 1)):
            last = page.page >= page.total_page or not page.items
            yield SourcePage(
                items=[mapped(map_review, account, item) for item in items],
                next_position=None if last else str(page.page + 1),
                total=page.count,
            )

    def author_email(self, review: Review) -> str | None:
        """`AuthorEmails`: Trustoo sends the author's e-mail with the review, so nothing is asked."""
        return _text(review.author_email)

    def rating_statistics(self, account: str, product_id: str) -> RatingStatistics:
        """What Trustoo's get_rating (§1.4) says of the product: the figures its widgets show."""
        if self._api is None:
            raise ConfigError("reading Trustoo's ratings needs its Open API (TRUSTOO_API_URL and a shop's tokens)")
        data = self._api.get_rating(account, product_id=product_id)
        try:
            return map_rating(data)
        except PayloadError as exc:
            raise PayloadError(f"Trustoo's rating of product {product_id}: {exc}", payload=data) from None


class ReviewLookup(Protocol):
    def get_review(self, shop: str, review_id: str) -> Mapping[str, Any] | None: ...
    def get_rating(self, shop: str, **selector: Any) -> Mapping[str, Any]: ...
    def iter_pages(
        self, shop: str, *, since: datetime | None = None, start_page: int = 1
    ) -> Iterator[tuple[Any, Sequence[Mapping[str, Any]]]]: ...


def _shop_named(item: Mapping[str, Any]) -> str:
    """The shop a review item says it belongs to (§1.7), as a reason may quote it."""
    named = [f"{name} {item[name]!r:.80}" for name in ("my_shopify_domain", "shopify_shop_id") if name in item]
    return ", ".join(named) or "no shop"


def _incomplete(item: Mapping[str, Any]) -> bool:
    return item.get("rating") in (None, "") and item.get("star") in (None, "")


def fingerprint(item: Mapping[str, Any]) -> str:
    """What identifies a review's content in Trustoo, whoever wrote it: product, rating, author
    and text. A review ReviewBridge created is recognised by it when Trustoo echoes it back."""
    parts = [str(item.get(name) or "").strip() for name in ("product_id", "rating", "author", "content")]
    return "tfp-" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:40]


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(f"body is not UTF-8 (byte {exc.start})") from None
    document = read_json(text, "body")
    if not isinstance(document, dict):
        raise PayloadError("body is not a JSON object")
    return document


def _topic_from_body(document: Mapping[str, Any]) -> str:
    topic = first_present(document, ("event_type", "topic"))
    if topic not in _KIND_BY_TOPIC:
        raise PayloadError(f"body names no known topic (event_type={topic!r})")
    return topic


def _event(account: str, topic: str, item: Any, occurred_at: datetime, delivery_id: str | None) -> Event | PayloadError:
    if not isinstance(item, dict):
        return PayloadError("list item is not an object", payload=item)
    review_id = item.get("id")
    if review_id in (None, "") or isinstance(review_id, (bool, dict, list)):
        return PayloadError("list item has no review id", payload=item)
    # A redelivery carries the same topic, review and content; its id must come out the same.
    content = json.dumps(item, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # surrogatepass: a lone surrogate escape ("\\ud800") in the body must not stop the delivery here.
    digest = hashlib.sha256(content.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return Event(
        source=SOURCE,
        account=account,
        event_id=f"{topic}:{review_id}:{digest}",
        kind=_KIND_BY_TOPIC[topic],
        subject_id=str(review_id),
        topic=topic,
        occurred_at=occurred_at,
        payload=item,
        delivery_id=delivery_id,
    )


# --- mapping ---------------------------------------------------------------------------------


def map_review(account: str, item: Mapping[str, Any]) -> Review:
    """A Trustoo review item (webhook or Open API) as a canonical Review."""
    review_id = item.get("id")
    if review_id in (None, ""):
        raise PayloadError("review has no id")
    media, notes = web_media(_media(m) for m in _list(item.get("media")) if isinstance(m, dict) and m.get("url"))
    return Review(
        source=SOURCE,
        account=account,
        source_id=str(review_id),
        product_id=_text(item.get("product_id")) or "0",
        rating=_rating(item.get("rating", item.get("star"))),
        title=_text(item.get("title")),
        body=_text(item.get("content")),
        author_name=_text(item.get("author")),
        author_email=_text(item.get("author_email")),
        author_country=_text(item.get("author_country")),
        published=_flag(item.get("is_published"), default=True),
        verified=_flag(item.get("is_verified"), default=False),
        media=media,
        reply=_reply(item.get("reply")),
        created_at=_time(item.get("commented_at") or item.get("created_at")),
        updated_at=_time(item.get("updated_at")),
        notes=notes,
    )


def map_rating(data: Mapping[str, Any]) -> RatingStatistics:
    """get_rating's `data{rating_value (string), review_count, star1_count..star5_count}` (§1.4). The
    average keeps the decimals Trustoo wrote ("4.7": to 0.1), which is the precision it is compared to."""
    count = _count(data, "review_count")
    distribution = {n: stars for n in range(1, 6) if (stars := _count(data, f"star{n}_count"))}
    text = str(data.get("rating_value") if data.get("rating_value") is not None else "").strip()
    try:
        average = Decimal(text) if len(text) <= 32 else None
    except InvalidOperation:
        average = None
    if count and (average is None or not average.is_finite() or not 1 <= average <= 5):
        raise PayloadError(f"rating_value {text[:40]!r} is not an average from 1 to 5")
    if not count or average is None:
        return RatingStatistics(count=count, distribution=distribution)
    exponent = average.as_tuple().exponent
    unit = Decimal(1).scaleb(min(int(exponent), 0))
    return RatingStatistics(count=count, distribution=distribution, average=average, unit=unit)


def _count(data: Mapping[str, Any], name: str) -> int:
    value = data.get(name)
    if value is None or value == "":
        return 0
    text = str(value).strip()
    if isinstance(value, bool) or not (text.isascii() and text.isdigit()) or len(text) > 12:
        raise PayloadError(f"{name} {text[:40]!r} is not a count")
    return int(text)


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _rating(value: Any) -> int:
    try:
        rating = int(str(value).strip())
    except (TypeError, ValueError):
        raise PayloadError(f"rating {value!r} is not a whole number") from None
    if not 1 <= rating <= 5:
        raise PayloadError(f"rating {rating} is outside 1-5")
    return rating


def _flag(value: Any, *, default: bool) -> bool:
    if value is None or value == "":
        return default
    return str(value).strip().lower() in ("1", "true", "yes")


def _time(value: Any) -> datetime | None:
    """Trustoo writes `YYYY-MM-DD HH:MM:SS` (taken as UTC); ISO 8601 and Unix seconds also occur."""
    if value in (None, ""):
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError):  # NaN, or seconds beyond year 9999
            raise PayloadError(f"time {value!r} is not a date") from None
    try:
        parsed = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        raise PayloadError(f"time {value!r} is not a date") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _media(item: Mapping[str, Any]) -> Media:
    kind = str(item.get("type", "")).lower()
    return Media(
        url=str(item["url"]),
        thumbnail_url=_text(item.get("thumbnail_url") or item.get("thumbnail")),
        kind="video" if kind in ("2", "video") else "image",
        hidden=not _flag(item.get("is_published"), default=True),
    )


def _reply(value: Any) -> Reply | None:
    if not isinstance(value, dict) or not _text(value.get("content")):
        return None
    return Reply(text=str(value["content"]).strip(), replied_at=_time(value.get("reply_at")))
