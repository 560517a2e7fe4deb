"""Wix as a source: a verified delivery's envelope and domain event as our Event, reviews read
back for resync, and a review author's e-mail read from their contact (docs/platforms/wix.md §1.3,
§1.6, §1.8, §3).

The JWT and its claims are checked in connectors/wix_webhooks.py (where the layers of a delivery
are drawn); mapping and the Review Request body are in connectors/wix_mapping.py, the REST client in
connectors/wix_api.py.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, Protocol

from connectors.base import ConfigError, Event, EventKind, PayloadError, Review, SourcePage, mapped
from connectors.cache import ExpiringCache
from connectors.wix_mapping import (
    SOURCE,
    contact_email,
    event_body,
    event_sequence,
    json_layer,
    map_review,
    parse_time,
)
from connectors.wix_webhooks import WixWebhookVerifier, claims_time, unverified_claims

__all__ = [
    "ACCOUNT_EVENT_TYPES",
    "ORDER_APPROVED",
    "ORDER_FULFILLED",
    "REVIEW_EVENT_TYPES",
    "TRIGGERS",
    "WixSource",
]

#: eventType → what a review event means for the review (§1.4).
REVIEW_EVENT_TYPES = {
    "wix.reviews.v1.review_created": EventKind.UPSERT,
    "wix.reviews.v1.review_updated": EventKind.UPSERT,
    "wix.reviews.v1.review_deleted": EventKind.DELETE,
    "wix.reviews.v1.review_moderation_status_changed": EventKind.UPSERT,
    "wix.reviews.v1.review_review_published": EventKind.UPSERT,  # sic, as Wix names it
}
ORDER_FULFILLED = "wix.ecom.v1.order_fulfilled"
ORDER_APPROVED = "wix.ecom.v1.order_approved"
ACCOUNT_EVENT_TYPES = {"AppInstalled": "installed", "AppRemoved": "removed"}
#: Which order event earns a review request (§3): fulfilled (to FULFILLED), approved, or none.
TRIGGERS = ("fulfilled", "approved", "off")
#: Contacts' e-mails kept per process: (instance, contact id) -> e-mail or None. An hour bounds how
#: long a changed or deleted contact's old address is used; 10,000 bounds the memory (a few MB).
CONTACT_CACHE_ENTRIES = 10_000
CONTACT_CACHE_TTL_S = 3600.0


class WixSource:
    """Wix as a source: its webhooks (`WebhookSource`) and, with the REST API, its reviews
    (`ReviewSource`, for resync) and their authors' e-mails (`AuthorEmails`). `review_request_trigger`
    picks the order event that becomes an ORDER event: `fulfilled` (order_fulfilled to FULFILLED),
    `approved` (order_approved) or `off`. `contacts` keeps contacts' e-mails (one cache per source).
    """

    name = SOURCE

    def __init__(
        self,
        verifier: WixWebhookVerifier,
        api: ReviewApi | None = None,
        *,
        review_request_trigger: str = "fulfilled",
        contacts: ExpiringCache[tuple[str, str], str | None] | None = None,
    ):
        if review_request_trigger not in TRIGGERS:
            raise ValueError(f"review_request_trigger {review_request_trigger!r} is not one of {', '.join(TRIGGERS)}")
        self._verifier = verifier
        self._api = api
        self._trigger = review_request_trigger
        if contacts is None:
            contacts = ExpiringCache(max_entries=CONTACT_CACHE_ENTRIES, ttl_s=CONTACT_CACHE_TTL_S)
        self._contacts = contacts

    def verify(self, headers: Mapping[str, str], body: bytes) -> str:
        return self._verifier.verify(headers, body)

    def parse(
        self, account: str, topic: str | None, headers: Mapping[str, str], body: bytes
    ) -> list[Event | PayloadError]:
        """One Event for the delivery, or one PayloadError naming the layer that is unusable.
        Call only after `verify`: the claims are read here without checking them again."""
        claims: Any = body.decode("utf-8", "backslashreplace")
        try:
            claims = self._verifier.verified_claims(body) or unverified_claims(body)
            return [self._event(account, claims)]
        except PayloadError as exc:  # kept with what a person needs to see: the layer, else the claims
            return [exc if exc.payload is not None else PayloadError(exc.reason, payload=claims)]

    def resolve(self, event: Event) -> Review | None:
        """The review as the event shows it; re-read from Wix when the entity is too thin to map."""
        if event.kind is EventKind.DELETE:
            return None
        if event.kind is not EventKind.UPSERT:
            raise ValueError(f"resolve() takes review events, not {event.kind.value} ({event.topic})")
        entity = event.payload
        if self._api is not None and _incomplete(entity):
            fetched = self._api.get_review(event.account, event.subject_id)
            if fetched is None:
                return None  # gone at Wix
            entity = fetched
        return map_review(event.account, entity)

    def echo_key(self, event: Event) -> str | None:
        return None

    def iter_reviews(self, account: str, since: datetime | None = None) -> Iterator[Review | PayloadError]:
        """The instance's reviews, private ones included, newest first and lazily (one page in memory),
        created at or after `since`. A review that cannot be mapped comes as a PayloadError."""
        for page in self.iter_pages(account, since):
            yield from page.items

    def iter_pages(self, account: str, since: datetime | None = None, start: str | None = None) -> Iterator[SourcePage]:
        """A page at a time; `start` is a cursor handed out as `next_position` (a resumed resync)."""
        if self._api is None:
            raise ConfigError("reading Wix reviews needs its REST API (WIX_APP_ID, WIX_APP_SECRET)")
        cursor = start
        while True:
            items, cursor = self._api.query_reviews(account, since=since, cursor=cursor)
            yield SourcePage(
                items=[mapped(map_review, account, item) for item in items], next_position=cursor if items else None
            )
            if not cursor or not items:
                return

    def author_email(self, review: Review) -> str | None:
        """The review's own e-mail, else its author's contact's as Contacts v4 Get Contact gives it
        (kept per instance and contact: a customer's many reviews cost one call); None when the review
        names no contact, or the contact is gone or has no e-mail. E-mails are never logged."""
        own = _id(review.author_email)
        if own is not None:
            return own
        contact_id = _id(review.extra.get("contact_id"))
        if contact_id is None:
            return None
        api = self._api
        if api is None:
            raise ConfigError("reading a Wix review author's e-mail needs its REST API (WIX_APP_ID, WIX_APP_SECRET)")
        instance = review.account

        def ask() -> str | None:
            contact = api.get_contact(instance, contact_id)
            return None if contact is None else contact_email(contact)

        return self._contacts.get((instance, contact_id), ask)

    # --- the layers -----------------------------------------------------------------------------

    def _event(self, account: str, claims: Mapping[str, Any]) -> Event:
        envelope = json_layer(claims.get("data"), "the token's data claim")
        event_type = envelope.get("eventType")
        if not isinstance(event_type, str) or not event_type:
            raise PayloadError("the envelope has no eventType", payload=envelope)
        instance_id = envelope.get("instanceId")
        if not isinstance(instance_id, str) or not instance_id:
            raise PayloadError(f"the {event_type} envelope has no instanceId", payload=envelope)
        if account and instance_id != account:
            raise PayloadError(
                f"the envelope's instanceId {instance_id} is not the account {account}", payload=envelope
            )
        if event_type in ACCOUNT_EVENT_TYPES:
            return _account_event(instance_id, event_type, envelope, claims)
        kind = REVIEW_EVENT_TYPES.get(event_type)
        if kind is None and event_type not in (ORDER_FULFILLED, ORDER_APPROVED):
            return _ignored(instance_id, event_type, envelope, claims, "Wix event type ReviewBridge does not use")
        domain = json_layer(envelope.get("data"), f"the {event_type} envelope's data")
        if kind is not None:
            return _review_event(instance_id, event_type, kind, domain, claims)
        return self._order_event(instance_id, event_type, domain, envelope, claims)

    def _order_event(
        self,
        instance_id: str,
        event_type: str,
        domain: Mapping[str, Any],
        envelope: Mapping[str, Any],
        claims: Mapping[str, Any],
    ) -> Event:
        wanted = {"fulfilled": ORDER_FULFILLED, "approved": ORDER_APPROVED}.get(self._trigger)
        if event_type != wanted:
            return _ignored(
                instance_id,
                event_type,
                envelope,
                claims,
                f"review requests are triggered by {self._trigger}, not by this event",
            )
        _, body = event_body(domain, event_type)
        if event_type == ORDER_FULFILLED and body.get("newFulfillmentStatus") != "FULFILLED":
            return _ignored(
                instance_id,
                event_type,
                envelope,
                claims,
                f"fulfillment status became {body.get('newFulfillmentStatus')!r}, not FULFILLED",
            )
        order = json_layer(body.get("order"), f"the {event_type} body's order")
        order_id = _id(order.get("id")) or _id(domain.get("entityId"))
        if order_id is None:
            raise PayloadError(f"the {event_type} order has no id", payload=dict(domain))
        return Event(
            source=SOURCE,
            account=instance_id,
            event_id=_event_id(domain, event_type),
            kind=EventKind.ORDER,
            subject_id=order_id,
            topic=event_type,
            occurred_at=_occurred_at(domain, claims, event_type),
            payload=order,
            sequence=event_sequence(domain),
        )


class ReviewApi(Protocol):
    """What WixSource needs of connectors.wix_api.WixApi."""

    def get_review(self, instance: str, review_id: str) -> Mapping[str, Any] | None: ...

    def query_reviews(
        self, instance: str, *, since: datetime | None = None, cursor: str | None = None, limit: int = 100
    ) -> tuple[list[dict], str | None]: ...

    def get_contact(self, instance: str, contact_id: str) -> Mapping[str, Any] | None: ...


def _review_event(
    instance_id: str, event_type: str, kind: EventKind, domain: Mapping[str, Any], claims: Mapping[str, Any]
) -> Event:
    holder, body = event_body(domain, event_type)
    entity: Mapping[str, Any] | None = body
    if holder == "actionEvent":  # moderation_status_changed, review_published: {review, …}
        review = body.get("review")
        entity = None if review is None else json_layer(review, f"the {event_type} body's review")
    review_id = (_id(entity.get("id")) if entity else None) or _id(domain.get("entityId"))
    if review_id is None:
        raise PayloadError(f"the {event_type} event names no review id", payload=dict(domain))
    if kind is EventKind.DELETE:
        # The older guide says deletedEntity may hold only the id.
        payload = dict(entity) if entity and entity.get("id") else {"id": review_id}
    elif entity:
        payload = dict(entity)
    else:
        raise PayloadError(f"the {event_type} event carries no review", payload=dict(domain))
    return Event(
        source=SOURCE,
        account=instance_id,
        event_id=_event_id(domain, event_type),
        kind=kind,
        subject_id=review_id,
        topic=event_type,
        occurred_at=_occurred_at(domain, claims, event_type),
        payload=payload,
        sequence=event_sequence(domain),
    )


def _account_event(instance_id: str, event_type: str, envelope: Mapping[str, Any], claims: Mapping[str, Any]) -> Event:
    """AppInstalled / AppRemoved are legacy-shaped: no domain event, no event id. The id hashes the
    delivery with its `iat`, so a reinstall is not taken for a duplicate of the first install; a
    re-signed retry may then come twice, which installing or removing again makes harmless."""
    try:
        data = json_layer(envelope.get("data"), f"the {event_type} envelope's data")
    except PayloadError:
        data = {}  # nothing in it is needed
    raw = json.dumps([event_type, instance_id, envelope.get("data"), claims.get("iat")], sort_keys=True, default=str)
    payload = {"action": ACCOUNT_EVENT_TYPES[event_type], **{k: v for k, v in data.items() if k != "action"}}
    return Event(
        source=SOURCE,
        account=instance_id,
        event_id=f"{event_type}:{_digest(raw)}",
        kind=EventKind.ACCOUNT,
        subject_id=instance_id,
        topic=event_type,
        occurred_at=claims_time(claims),
        payload=payload,
    )


def _ignored(
    instance_id: str, event_type: str, envelope: Mapping[str, Any], claims: Mapping[str, Any], reason: str
) -> Event:
    """Kept as `ignored`, never an error: a broken inner layer here quarantines nothing."""
    try:
        domain: Mapping[str, Any] = json_layer(envelope.get("data"), "data")
    except PayloadError:
        domain = {}
    event_id = _id(domain.get("id")) or f"{event_type}:{_digest(str(envelope.get('data')))}"
    occurred_at = parse_time(domain.get("eventTime")) or claims_time(claims)
    summary = {k: domain.get(k) for k in ("entityFqdn", "slug", "entityId") if domain.get(k) is not None}
    return Event(
        source=SOURCE,
        account=instance_id,
        event_id=event_id,
        kind=EventKind.IGNORED,
        subject_id=_id(domain.get("entityId")) or event_id,
        topic=event_type,
        occurred_at=occurred_at,
        payload={"reason": reason, **summary},
        sequence=event_sequence(domain),
    )


# --- helpers --------------------------------------------------------------------------------------


def _incomplete(entity: Mapping[str, Any] | None) -> bool:
    content = entity.get("content") if isinstance(entity, Mapping) else None
    return not isinstance(content, Mapping) or content.get("rating") in (None, "")


def _event_id(domain: Mapping[str, Any], event_type: str) -> str:
    event_id = _id(domain.get("id"))
    if event_id is None:
        raise PayloadError(f"the {event_type} event has no id", payload=dict(domain))
    return event_id


def _occurred_at(domain: Mapping[str, Any], claims: Mapping[str, Any], event_type: str) -> datetime:
    value = domain.get("eventTime")
    if value is None:
        return claims_time(claims)
    moment = parse_time(value)
    if moment is None:
        raise PayloadError(f"the {event_type} eventTime {str(value)[:40]!r} is not a date", payload=dict(domain))
    return moment


def _id(value: Any) -> str | None:
    if value is None or isinstance(value, (bool, Mapping, list)):
        return None
    text = str(value).strip()
    return text or None


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]
