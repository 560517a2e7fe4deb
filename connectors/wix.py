"""Wix: webhook verification and delivery parsing (specs/wix.md §1.1-§1.3, §1.6, §3).

The whole request body is an RS256 JWT signed with the app's private key; we hold its public key
(one PEM, or several while a rotation overlaps). Inside are three layers, two of them JSON strings::

    claims {data: "<envelope>", iat, exp}
      └─ envelope {eventType, instanceId, data: "<domain event>", identity: "<…>"}
           └─ domain event {id, entityFqdn, slug, entityId, eventTime, entityEventSequence,
                            createdEvent.entity | updatedEvent.currentEntity |
                            deletedEvent.deletedEntity | actionEvent.body}   (or their …AsJson strings)

Mapping and the Review Request body are in connectors/wix_mapping.py, the REST client in
connectors/wix_api.py.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from connectors.base import (
    ConfigError,
    Event,
    EventKind,
    PayloadError,
    Review,
    SignatureError,
    SourcePage,
    StaleRequest,
    mapped,
)
from connectors.wix_mapping import (
    SOURCE,
    event_body,
    event_sequence,
    json_layer,
    map_review,
    parse_time,
    review_request_body,
)

__all__ = [
    "ACCOUNT_EVENT_TYPES",
    "ORDER_APPROVED",
    "ORDER_FULFILLED",
    "REVIEW_EVENT_TYPES",
    "TRIGGERS",
    "WixSource",
    "WixWebhookVerifier",
    "map_review",
    "review_request_body",
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


class WixWebhookVerifier:
    """Checks a Wix delivery on its raw bytes: a JWT, RS256 only, against every public key we hold,
    then its `exp` (with leeway). No audience or issuer check: the Wix SDK makes none on webhooks.

    Unlike an HMAC scheme the time claims live inside the token, so the signature is checked first:
    an `exp` means nothing until it is known to come from Wix, and a forged token is then reported
    as a bad signature, never as a stale one.
    """

    def __init__(
        self, public_keys_pem: Sequence[str] | str, *, leeway_s: float = 60, now: Callable[[], float] = time.time
    ):
        if isinstance(public_keys_pem, (str, bytes)):
            public_keys_pem = [public_keys_pem]
        pems = [_pem_text(pem) for pem in public_keys_pem]
        if not pems or not all(pems):
            raise ValueError("the Wix webhook verifier needs at least one public key (WIX_PUBLIC_KEY), none empty")
        self._keys = [_public_key(pem, index) for index, pem in enumerate(pems, 1)]
        self._leeway_s = leeway_s
        self._now = now

    def verify(self, headers: Mapping[str, str], body: bytes) -> str:
        """Return the delivery's instanceId (the account) or raise a WebhookRejected.

        A correctly signed token whose envelope is unreadable or names no instance returns "":
        it is Wix's, so it is kept, and `parse` quarantines it with the reason."""
        return _instance_id(self._claims(body))

    def _claims(self, body: bytes) -> dict[str, Any]:
        token = _token_text(body)
        try:
            header = jwt.get_unverified_header(token)
        except (jwt.PyJWTError, ValueError, TypeError, RecursionError):
            raise SignatureError(SOURCE, "body is not a JWT") from None
        if header.get("alg") != "RS256":
            raise SignatureError(SOURCE, f"token algorithm {str(header.get('alg'))[:20]!r} is not RS256")
        claims = None
        for key in self._keys:
            try:
                claims = jwt.decode(token, key, algorithms=["RS256"], options=_SIGNATURE_ONLY)
                break
            except jwt.InvalidSignatureError:
                continue  # perhaps the other key of a rotation
            except (jwt.PyJWTError, ValueError, TypeError, RecursionError) as exc:
                raise SignatureError(SOURCE, f"token is malformed ({type(exc).__name__})") from None
        if claims is None:
            raise SignatureError(SOURCE, "signature matches none of the public keys")
        self._check_times(claims)
        return claims

    def _check_times(self, claims: Mapping[str, Any]) -> None:
        now = self._now()
        exp = claims.get("exp")
        if not _is_number(exp):
            raise SignatureError(SOURCE, "token has no numeric exp claim")
        if now > exp + self._leeway_s:
            raise StaleRequest(SOURCE, f"token expired {int(now - exp)} s ago (leeway {self._leeway_s:g} s)")
        for name in ("nbf", "iat"):
            value = claims.get(name)
            if value is not None and not _is_number(value):
                raise SignatureError(SOURCE, f"token {name} claim is not a number")
            if value is not None and value > now + self._leeway_s:
                raise StaleRequest(SOURCE, f"token {name} lies in the future (leeway {self._leeway_s:g} s)")


# PyJWT checks times against its own clock; ours is injected, so it checks only the signature.
_SIGNATURE_ONLY = {
    "verify_signature": True,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
}


class WixSource:
    """Wix as a source: its webhooks (`WebhookSource`) and, with the REST API, its reviews
    (`ReviewSource`, for resync). `review_request_trigger` picks the order event that becomes an
    ORDER event: `fulfilled` (order_fulfilled to FULFILLED), `approved` (order_approved) or `off`.
    """

    name = SOURCE

    def __init__(
        self, verifier: WixWebhookVerifier, api: ReviewApi | None = None, *, review_request_trigger: str = "fulfilled"
    ):
        if review_request_trigger not in TRIGGERS:
            raise ValueError(f"review_request_trigger {review_request_trigger!r} is not one of {', '.join(TRIGGERS)}")
        self._verifier = verifier
        self._api = api
        self._trigger = review_request_trigger

    def verify(self, headers: Mapping[str, str], body: bytes) -> str:
        return self._verifier.verify(headers, body)

    def parse(
        self, account: str, topic: str | None, headers: Mapping[str, str], body: bytes
    ) -> list[Event | PayloadError]:
        """One Event for the delivery, or one PayloadError naming the layer that is unusable.
        Call only after `verify`: the claims are read here without checking them again."""
        claims: Any = body.decode("utf-8", "backslashreplace")
        try:
            claims = _unverified_claims(body)
            return [self._event(account, claims)]
        except PayloadError as exc:  # kept with what a person needs to see: the layer, else the claims
            return [exc if exc.payload is not None else PayloadError(exc.reason, payload=claims)]

    def resolve(self, event: Event) -> Review | None:
        """The review as the event shows it; re-read from Wix when the entity is too thin to map."""
        if event.kind is EventKind.DELETE:
            return None
        if event.kind is not EventKind.UPSERT:
            raise ValueError(f"resolve() takes review events, not {event.kind.value} ({event.topic})")
        entity: Mapping[str, Any] | None = event.payload
        if self._api is not None and _incomplete(entity):
            entity = self._api.get_review(event.account, event.subject_id)
            if entity is None:
                return None  # gone at Wix
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
        occurred_at=_claims_time(claims),
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
    occurred_at = parse_time(domain.get("eventTime")) or _claims_time(claims)
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


def _unverified_claims(body: bytes) -> dict[str, Any]:
    try:
        claims = jwt.decode(_token_text(body), options={"verify_signature": False})
    except (SignatureError, jwt.PyJWTError, ValueError, TypeError, RecursionError):  # verify() let it through?
        raise PayloadError("body is not a readable JWT") from None
    if not isinstance(claims, dict):
        raise PayloadError("the token's claims are not an object")
    return claims


def _instance_id(claims: Mapping[str, Any]) -> str:
    try:
        envelope = json_layer(claims.get("data"), "data")
    except PayloadError:
        return ""
    instance_id = envelope.get("instanceId")
    return instance_id if isinstance(instance_id, str) else ""


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
        return _claims_time(claims)
    moment = parse_time(value)
    if moment is None:
        raise PayloadError(f"the {event_type} eventTime {str(value)[:40]!r} is not a date", payload=dict(domain))
    return moment


def _claims_time(claims: Mapping[str, Any]) -> datetime:
    """When the token was issued; else its expiry, which `verify` made sure is a number."""
    for name in ("iat", "exp"):
        value = claims.get(name)
        if _is_number(value):
            try:
                return datetime.fromtimestamp(value, tz=UTC)
            except (OverflowError, OSError, ValueError):
                continue
    raise PayloadError("the token has no usable iat or exp")


def _id(value: Any) -> str | None:
    if value is None or isinstance(value, (bool, Mapping, list)):
        return None
    text = str(value).strip()
    return text or None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value  # NaN is not


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _token_text(body: bytes) -> str:
    """The body as the token's text, whatever the Content-Type said."""
    if isinstance(body, str):
        body = body.encode()
    try:
        return body.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise SignatureError(SOURCE, "body is not UTF-8") from None


def _pem_text(pem: str | bytes) -> str:
    """A PEM as text with real line breaks: an env var often holds it on one line with literal \\n."""
    text = pem.decode("ascii", "replace") if isinstance(pem, bytes) else str(pem or "")
    return text.replace("\\n", "\n").strip()


def _public_key(pem: str, index: int) -> RSAPublicKey:
    try:
        key = load_pem_public_key(pem.encode())
    except (ValueError, TypeError):
        raise ValueError(f"Wix public key #{index} is not a PEM public key (-----BEGIN PUBLIC KEY-----)") from None
    if not isinstance(key, RSAPublicKey):
        raise ValueError(f"Wix public key #{index} is not an RSA key; Wix signs webhooks with RS256")
    return key
