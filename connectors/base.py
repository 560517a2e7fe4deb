"""Canonical types, capability protocols and the one error tree of ReviewBridge.

Everything a platform sends or accepts is translated into these types at the edge, so the
pipeline speaks one language whatever the platform. Nothing here knows Flask or the database.

Errors (each carries context, never a secret)::

    ReviewBridgeError
    ├── WebhookRejected            answered 401, nothing stored
    │   ├── SignatureError         missing or wrong signature
    │   ├── StaleRequest           timestamp outside the tolerance window
    │   └── UnknownKey             no secret configured for the key the request names
    ├── PayloadError               verified but unusable: quarantined with the reason
    └── TargetError                a platform call failed
        ├── RetryableTargetError   timeouts, 429, 5xx, 409: try again later (retry_after)
        │   └── RateLimited        not sent: the account's shared rate limit has no turn soon enough
        ├── FixAndReplayError      4xx validation: a person fixes, then replays
        │   └── ProductNotFound    no product match yet: waits, released by a product mapping
        └── ConfigError            our own credentials or settings are wrong
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

__all__ = [
    "AuthorEmails",
    "ConfigError",
    "Event",
    "EventKind",
    "FixAndReplayError",
    "Media",
    "PayloadError",
    "ProductNotFound",
    "RateLimited",
    "RatingSource",
    "RatingStatistics",
    "Reply",
    "RetryableTargetError",
    "Review",
    "ReviewBridgeError",
    "ReviewSource",
    "ReviewTarget",
    "SignatureError",
    "SourcePage",
    "StaleRequest",
    "TargetError",
    "TargetRef",
    "UnknownKey",
    "WebhookRejected",
    "WebhookSource",
    "is_web_url",
    "read_json",
    "web_media",
]


# --- errors -------------------------------------------------------------------------------


class ReviewBridgeError(Exception):
    """Base of every error ReviewBridge raises on purpose."""


class WebhookRejected(ReviewBridgeError):
    """A webhook we must not trust; answered 401 and never stored."""

    def __init__(self, source: str, reason: str):
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class SignatureError(WebhookRejected):
    """The signature is missing, malformed or matches none of our secrets."""


class StaleRequest(WebhookRejected):
    """The signed timestamp lies outside the tolerance window (a replay or a bad clock)."""


class UnknownKey(WebhookRejected):
    """The request names a public key or token we hold no secret for."""


class PayloadError(ReviewBridgeError):
    """A verified payload we cannot use; the event is quarantined with this reason.

    `payload` is the part of the delivery the reason is about, kept so a person can see it.
    """

    def __init__(self, reason: str, *, payload: Any = None):
        super().__init__(reason)
        self.reason = reason
        self.payload = payload


class TargetError(ReviewBridgeError):
    """A platform call failed; the subclass says what the pipeline does about it."""

    #: The platform's own code for the error (Wix's applicationError code, Trustoo's envelope code).
    code: str | None = None
    #: The request may have reached the platform and been applied (a timeout, a 5xx after sending).
    outcome_unknown: bool = False

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.status = status


class RetryableTargetError(TargetError):
    """Worth trying again later; `retry_after` (seconds) is the platform's own hint, if any."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        outcome_unknown: bool = False,
    ):
        super().__init__(message, status=status)
        self.retry_after = retry_after
        self.outcome_unknown = outcome_unknown


class RateLimited(RetryableTargetError):
    """Nothing was sent: the account's turn under its rate limit is `retry_after` seconds away,
    longer than a caller should hold a thread for. Not a failed attempt, only a later one."""

    def __init__(self, message: str, *, retry_after: float):
        super().__init__(message, status=None, retry_after=retry_after, outcome_unknown=False)


class FixAndReplayError(TargetError):
    """Retrying cannot help until a person fixes data or mapping; then the event is replayed."""


class ProductNotFound(FixAndReplayError):
    """The review's product has no match at the target; the event waits until a mapping exists."""

    def __init__(self, source_product_id: str, message: str):
        super().__init__(message)
        self.source_product_id = source_product_id


class ConfigError(TargetError):
    """Our own credentials or settings are wrong; the message names the variable to fix."""


# --- canonical types ----------------------------------------------------------------------


class EventKind(enum.StrEnum):
    UPSERT = "upsert"  # a review was written or changed
    DELETE = "delete"  # a review was removed (or, for some platforms, perhaps only hidden)
    ORDER = "order"  # an order that may earn a review request
    ACCOUNT = "account"  # the platform installed or removed us for an account
    IGNORED = "ignored"  # an event we do not act on; kept, not processed


@dataclass(frozen=True)
class Event:
    """One thing a platform told us about one subject (a review or an order).

    `event_id` is unique per (source, account) and is what makes a redelivery a duplicate.
    `occurred_at` and `sequence` order events of one subject; `sequence` wins when both
    sides have one.
    """

    source: str
    account: str
    event_id: str
    kind: EventKind
    subject_id: str
    topic: str
    occurred_at: datetime
    payload: Mapping[str, Any]
    sequence: int | None = None
    delivery_id: str | None = None


@dataclass(frozen=True)
class Media:
    url: str
    thumbnail_url: str | None = None
    kind: str = "image"  # image | video
    hidden: bool = False


@dataclass(frozen=True)
class Reply:
    text: str
    replied_at: datetime | None = None


@dataclass(frozen=True)
class Review:
    """A review as ReviewBridge understands it, whatever platform it came from."""

    source: str
    account: str
    source_id: str
    product_id: str | None
    rating: int
    title: str | None = None
    body: str | None = None
    author_name: str | None = None
    author_email: str | None = None
    author_country: str | None = None
    locale: str | None = None
    product_sku: str | None = None
    product_handle: str | None = None
    published: bool = True
    verified: bool = False
    media: tuple[Media, ...] = ()
    reply: Reply | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    deleted: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    #: What the mapping left out of what the platform sent, and why, for people: kept in the ledger,
    #: never written to a target, and no part of the review's content.
    notes: tuple[str, ...] = field(default=(), compare=False, hash=False)

    @property
    def is_store_review(self) -> bool:
        return self.product_id in (None, "", "0")


@dataclass(frozen=True)
class SourcePage:
    """One page of a source's reviews: a resumable resync stores `next_position` after each."""

    items: Sequence[Review | PayloadError]
    next_position: str | None  # where the next page starts; None after the last
    total: int | None = None  # reviews in the whole listing, when the platform says


@dataclass(frozen=True)
class TargetRef:
    """Where a review lives at a target: its id, its key and the version we last saw."""

    key: str
    id: str | None = None
    version: int | None = None


@dataclass(frozen=True)
class RatingStatistics:
    """A product's ratings as a platform counts them: how many, how many of each rating (only the
    ratings used), and their average as the platform gives it, to the step it rounds to (`unit`,
    0.1 for Trustoo's "4.7"; None when exact, as when we count ourselves)."""

    count: int = 0
    distribution: Mapping[int, int] = field(default_factory=dict)
    average: Decimal | None = None  # None while nothing counts
    unit: Decimal | None = None


# --- capability protocols -----------------------------------------------------------------


@runtime_checkable
class WebhookSource(Protocol):
    name: str

    def verify(self, headers: Mapping[str, str], body: bytes) -> str:
        """Check the signature on the raw bytes; return the account it belongs to."""

    def parse(
        self, account: str, topic: str | None, headers: Mapping[str, str], body: bytes
    ) -> Sequence[Event | PayloadError]:
        """Split a verified delivery into events; a part that cannot be used comes back as a
        PayloadError (it is quarantined), and a delivery that is unusable as a whole raises one."""

    def resolve(self, event: Event) -> Review | None:
        """The review the event is about, as it stands at the source; None when it is gone there.

        PayloadError when the payload cannot be mapped."""

    def echo_key(self, event: Event) -> str | None:
        """For a platform that is also a target: the key under which ReviewBridge would have
        recorded writing this very review there (see ReviewTarget.key_for), else None."""


@runtime_checkable
class ReviewSource(Protocol):
    name: str

    def iter_reviews(self, account: str, since: datetime | None = None) -> Iterator[Review | PayloadError]:
        """Yield the account's reviews lazily, newest first, stopping past `since`."""

    def iter_pages(self, account: str, since: datetime | None = None, start: str | None = None) -> Iterator[SourcePage]:
        """The same, a page at a time, from `start` (a `next_position` given earlier)."""

    def resolve(self, event: Event) -> Review | None:
        """As WebhookSource.resolve: a resync asks it about reviews its listing no longer holds."""


@runtime_checkable
class AuthorEmails(Protocol):
    """A source that can say who wrote a review by e-mail: what tells one customer's reviews on two
    platforms apart from two customers' (cross-source identity)."""

    def author_email(self, review: Review) -> str | None:
        """The review author's e-mail as the platform knows it: the review's own when it carries one,
        else asked of the platform (cached); None when the platform knows none. RetryableTargetError
        (or RateLimited) on 429, 5xx and timeouts; ConfigError naming the missing permission on 401/403."""


@runtime_checkable
class RatingSource(Protocol):
    """A source that states a product's rating statistics itself (Trustoo's get_rating); the others
    are counted from their reviews."""

    def rating_statistics(self, account: str, product_id: str) -> RatingStatistics:
        """The product's statistics as the platform shows them (PayloadError when unreadable)."""


@runtime_checkable
class ReviewTarget(Protocol):
    name: str
    #: True when the target itself makes a repeated create harmless (a unique key). False means
    #: the pipeline reserves the ledger row before each write and says when an outcome is in doubt.
    idempotent: bool

    def key_for(self, review: Review) -> str:
        """The key the review has, or will have, at this target."""

    def upsert(self, review: Review, known: TargetRef | None = None, *, in_doubt: bool = False) -> TargetRef:
        """Create or update the review so the target matches it. `in_doubt`: an earlier write may
        or may not have happened; look before writing again."""

    def delete(self, ref: TargetRef) -> None:
        """Remove the review; deleting what is already gone is not an error."""

    def check(self) -> None:
        """Raise ConfigError, saying how to fix it, when the target is not set up for us."""


def mapped(
    mapper: Callable[[str, Mapping[str, Any]], Review], account: str, item: Mapping[str, Any]
) -> Review | PayloadError:
    """A listed item as a Review, or as a PayloadError carrying it: one bad review stops no listing."""
    try:
        return mapper(account, item)
    except PayloadError as exc:
        return PayloadError(exc.reason, payload=item)


def first_present(mapping: Mapping[str, Any], names: Iterable[str]) -> Any:
    """The value of the first of `names` that the mapping holds and is not None or ''."""
    for name in names:
        value = mapping.get(name)
        if value not in (None, ""):
            return value
    return None


def read_json(text: str, where: str) -> Any:
    """`text` as JSON, or a PayloadError naming `where` and what is wrong with it.

    Beyond bad syntax, two valid documents cannot be read: a number of more than 4,300 digits
    (Python's limit on converting text to int raises ValueError inside json.loads) and nesting
    deeper than the recursion limit."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise PayloadError(f"{where} is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except ValueError:
        raise PayloadError(f"{where} holds a number too long to read (over 4300 digits)") from None
    except RecursionError:
        raise PayloadError(f"{where} is nested too deeply") from None


def web_media(media: Iterable[Media]) -> tuple[tuple[Media, ...], tuple[str, ...]]:
    """The media a target may link to, and a note for each URL left out. Only http(s) links pass:
    a storefront that renders a `javascript:` or `data:` URL runs or embeds whatever it holds."""
    kept: list[Media] = []
    notes: list[str] = []
    for item in media:
        if not is_web_url(item.url):
            notes.append(f"media URL {item.url!r:.120} left out: not an http(s) link")
            continue
        if item.thumbnail_url is not None and not is_web_url(item.thumbnail_url):
            notes.append(f"thumbnail URL {item.thumbnail_url!r:.120} left out: not an http(s) link")
            item = dataclasses.replace(item, thumbnail_url=None)
        kept.append(item)
    return tuple(kept), tuple(notes)


def is_web_url(url: str) -> bool:
    """An absolute http or https URL with a host, written plainly: no white space or control
    character, which a browser would strip and so read a scheme urlsplit did not see."""
    if any(c.isspace() or not c.isprintable() for c in url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return False
    scheme = parts.scheme.lower()
    return scheme in ("http", "https") and bool(parts.netloc) and url[: len(scheme) + 3].lower() == f"{scheme}://"
