"""A faithful Wix emulator: app OAuth, Reviews v1, Review Requests v2, Contacts v4 (Get Contact), and
signed webhooks.

A WSGI app: drive it in-process with `httpx.WSGITransport(app=emulator)`, over loopback with
`tests.fakes.serving.serve_wsgi(emulator)`, or alone from a shell::

    python -m tests.fakes.wix --port 9003 [--latency-ms 50] [--fail-rate 0.3] [--instance ID]

It behaves like `docs/platforms/wix.md` says Wix does, and where that lists an unknown, like the
assumption it gives, so that our bugs show up here and not in production:

- `POST /oauth2/token` (JSON client credentials + `instance_id`) gives 4-hour tokens that expire by
  the injected clock; API calls carry `Authorization: <token>`, and a `Bearer ` prefix is refused.
- 200 API calls per instance per sliding minute, then 429.
- Reviews v1, Review Requests v2 and Contacts v4 Get Contact (rules in `wix_model.py`); Wix documents
  no idempotency for Review Requests, so two creates for one order make two requests.
- Webhooks are RS256 JWTs over the three layers of §1.2, signed with a per-emulator RSA key
  (`public_key_pem`), and delivered (duplicated, shuffled, concurrently) to loopback URLs only.
- Faults (`inject`, `fail_rate`, `latency_s`) touch API calls; every request is logged.
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import hmac
import json
import math
import random
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from tests.fakes.faults import FaultSchedule
from tests.fakes.wix_model import (
    _DEFAULT,
    BOOKINGS_APP_ID,
    ORDER_EVENT_TYPES,
    REVIEW_EVENT_TYPES,
    REVIEW_REQUEST_EVENT_TYPES,
    STORES_APP_ID,
    WixError,
    WixEvent,
    WixState,
    app_error,
    invalid,
    system_error,
)

__all__ = [
    "BOOKINGS_APP_ID",
    "ORDER_EVENT_TYPES",
    "REVIEW_EVENT_TYPES",
    "REVIEW_REQUEST_EVENT_TYPES",
    "STORES_APP_ID",
    "TOKEN_TTL_S",
    "WEBHOOK_TIMEOUT_S",
    "Delivery",
    "LoggedRequest",
    "WixEmulator",
    "WixEvent",
]

TOKEN_TTL_S = 14400  # "Tokens always last 4 h"
WEBHOOK_TIMEOUT_S = 1.25  # a delivery succeeds only with an HTTP 200 within 1250 ms
TOKEN_PATH = "/oauth2/token"
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
_STANDARD_CODES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    428: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
}
_RANDOM_FAULTS = (500, 503, 504, 429)

_ROUTES = Map(
    [
        Rule("/reviews/v1/reviews", methods=["POST"], endpoint="create_review"),
        Rule("/reviews/v1/reviews/query", methods=["POST"], endpoint="query_reviews"),
        Rule("/reviews/v1/reviews/count", methods=["POST"], endpoint="count_reviews"),
        Rule("/reviews/v1/reviews/<review_id>", methods=["GET", "PATCH", "DELETE"], endpoint="review"),
        Rule("/reviews/v1/reviews/<review_id>/moderate", methods=["PATCH"], endpoint="moderate"),
        Rule("/reviews/v1/reviews/<review_id>/reply", methods=["PATCH", "DELETE"], endpoint="reply"),
        Rule("/reviews/v2/review-requests", methods=["POST"], endpoint="create_review_request"),
        Rule("/reviews/v2/review-requests/query", methods=["POST"], endpoint="query_review_requests"),
        Rule("/reviews/v2/review-requests/count", methods=["POST"], endpoint="count_review_requests"),
        Rule("/reviews/v2/review-requests/<request_id>", methods=["GET", "DELETE"], endpoint="review_request"),
        Rule("/reviews/v2/bulk/review-requests/cancel-by-filter", methods=["PUT"], endpoint="cancel_review_requests"),
        Rule("/contacts/v4/contacts/<contact_id>", methods=["GET"], endpoint="contact"),
    ],
    strict_slashes=False,
)


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any  # parsed JSON when it is JSON, else the text (None when empty)
    status: int
    instance_id: str | None = None  # the token's instance, when the call was authenticated


@dataclass
class Delivery:
    """One webhook POST the emulator made: Wix counts it as delivered only on 200 within 1250 ms."""

    url: str
    status: int | None
    elapsed_s: float
    body: bytes = b""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status == 200 and self.elapsed_s <= WEBHOOK_TIMEOUT_S


@dataclass
class _Fault:
    status: int | None
    times: int
    path_contains: str | None = None
    method: str | None = None
    after_apply: bool = False
    hang_s: float | None = None
    body: Any = None
    retry_after: float | str | None = None

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method:
            return False
        if path == TOKEN_PATH:  # the token endpoint fails only when a fault names it
            return self.path_contains is not None and self.path_contains in path
        return self.path_contains is None or self.path_contains in path


@dataclass
class _Token:
    instance_id: str
    expires_at: float
    identity: dict[str, Any]


class WixEmulator:
    def __init__(
        self,
        app_id: str = "wix-app-id",
        app_secret: str = "wix-app-secret-0123456789",
        clock: Callable[[], float] = time.time,
        latency_s: float = 0.0,
        fail_rate: float = 0.0,
        seed: int | None = None,
        rate_limit_per_minute: int | None = 200,
        *,
        private_key_pem: str | bytes | None = None,
    ):
        self.app_id = app_id
        self.app_secret = app_secret
        self.clock = clock
        self.latency_s = latency_s
        self.fail_rate = fail_rate
        self.rate_limit_per_minute = rate_limit_per_minute
        self.rate_limit_retry_after = False  # Wix documents no Retry-After; True adds one to 429s
        self.delivery_timeout_s = WEBHOOK_TIMEOUT_S
        self._rng = random.Random(seed)
        self._lock = threading.RLock()
        self._state = WixState(clock, app_id)
        self._tokens: dict[str, _Token] = {}
        self._windows: dict[str, deque[float]] = {}
        self._faults: FaultSchedule[_Fault] = FaultSchedule()
        self.requests: list[LoggedRequest] = []
        self.deliveries: list[Delivery] = []
        if private_key_pem is None:
            self._private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            pem = private_key_pem.encode() if isinstance(private_key_pem, str) else private_key_pem
            self._private_key = serialization.load_pem_private_key(pem, password=None)
        self._wrong_key: rsa.RSAPrivateKey | None = None
        self.key_id = uuid.uuid4().hex
        self.wix_user_id = str(uuid.uuid4())
        self.public_key_pem = (
            self._private_key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode("ascii")
        )

    # --- instances and tokens -------------------------------------------------------------------

    def add_instance(self, instance_id: str | None = None, *, moderation: bool = False) -> str:
        """Install the app on a site. `moderation=True`: reviews created through the API wait IN_MODERATION."""
        with self._lock:
            instance_id = instance_id or str(uuid.uuid4())
            self._state.add_instance(instance_id, moderation=moderation)
            return instance_id

    def remove_instance(self, instance_id: str) -> None:
        """Uninstall (AppRemoved): its data goes, its tokens stop working, /oauth2/token refuses it."""
        with self._lock:
            self._state.instances.pop(instance_id, None)
            self._tokens = {t: v for t, v in self._tokens.items() if v.instance_id != instance_id}

    @property
    def instances(self) -> list[str]:
        with self._lock:
            return list(self._state.instances)

    def issue_token(self, instance_id: str, *, identity_type: str = "APP", ttl_s: float = TOKEN_TTL_S) -> str:
        """A token without an HTTP round trip; identity_type MEMBER/ANONYMOUS_VISITOR makes one Review
        Requests refuse (INITIATOR_IDENTITY_NOT_SUPPORTED)."""
        with self._lock:
            self._state.instance(instance_id)
            return self._issue(instance_id, identity_type, ttl_s)

    def _issue(self, instance_id: str, identity_type: str, ttl_s: float) -> str:
        identity: dict[str, Any] = {"identityType": identity_type}
        identity.update(
            {
                "APP": {"appId": self.app_id},
                "WIX_USER": {"wixUserId": self.wix_user_id},
                "MEMBER": {"memberId": str(uuid.uuid4())},
            }.get(identity_type, {"anonymousVisitorId": str(uuid.uuid4())})
        )
        token = "OauthNG.JWS." + secrets.token_urlsafe(48)
        self._tokens[token] = _Token(instance_id, self.clock() + ttl_s, identity)
        return token

    def expire_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    # --- reviews --------------------------------------------------------------------------------

    def add_review(self, instance_id: str, **fields: Any) -> dict[str, Any]:
        """A review as the Reviews API returns it (default: APPROVED, ORGANIC, rating 5, a new contact and
        product). Fields: id, namespace, entityId, content or title/body/rating/media, author or
        contactId/authorName, moderationStatus, origin/originType, verified, createdDate, reviewDate,
        reply/replyMessage, foundHelpful, foundUnhelpful (snake_case aliases accepted). The created
        event is in `last_event` (and `events`, with moderation_status_changed and review_published)."""
        with self._lock:
            return self._state.add_review(instance_id, fields)

    def update_review(self, instance_id: str, review_id: str, **fields: Any) -> dict[str, Any]:
        with self._lock:
            return self._state.update_review(instance_id, review_id, fields)

    def moderate(self, instance_id: str, review_id: str, status: str) -> dict[str, Any]:
        """APPROVED | REJECTED | IN_MODERATION | SUBMITTED; last_event: moderation_status_changed."""
        with self._lock:
            return self._state.moderate(instance_id, review_id, status)

    def delete_review(self, instance_id: str, review_id: str) -> dict[str, Any]:
        with self._lock:
            return self._state.delete_review(instance_id, review_id)

    def set_reply(self, instance_id: str, review_id: str, message: str | None) -> dict[str, Any]:
        with self._lock:
            return self._state.update_review(instance_id, review_id, {"replyMessage": message})

    def get_review(self, instance_id: str, review_id: str) -> dict[str, Any] | None:
        with self._lock:
            review = self._state.instance(instance_id).reviews.get(review_id)
            return copy.deepcopy(review)

    def reviews(self, instance_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(list(self._state.instance(instance_id).reviews.values()))

    def review_event(self, instance_id: str, review_id: str, kind: str, *, as_json: bool = False) -> dict[str, Any]:
        """A new domain event from the review's current state (or its tombstone): kind created, updated,
        deleted, moderation_status_changed or review_published. `as_json` gives `entityAsJson` forms."""
        with self._lock:
            return self._state.review_event(instance_id, review_id, kind, as_json=as_json)

    def review_webhook(self, instance_id: str, review_id: str, kind: str, **sign: Any) -> bytes:
        """review_event + sign_webhook with the matching eventType."""
        event = self.review_event(instance_id, review_id, kind, as_json=sign.pop("as_json", False))
        return self.sign_webhook(REVIEW_EVENT_TYPES[kind], instance_id, event, **sign)

    @property
    def last_event(self) -> dict[str, Any] | None:
        with self._lock:
            return copy.deepcopy(self._state.last_event)

    @property
    def events(self) -> list[WixEvent]:
        with self._lock:
            return copy.deepcopy(self._state.events)

    # --- orders ---------------------------------------------------------------------------------

    def make_order(
        self,
        instance_id: str,
        *,
        order_id: str | None = None,
        contact_id: Any = _DEFAULT,
        stores_items: int = 2,
        other_items: int = 0,
        **options: Any,
    ) -> dict[str, Any]:
        """An eCommerce order (APPROVED, PAID, NOT_FULFILLED) with `stores_items` Wix Stores line items
        (prices 10, 20, …) then `other_items` of another app (Bookings). contact_id=None: no
        buyerInfo.contactId. Options: other_app_id, prices, fulfillment_status, status,
        payment_status, email, catalog_item_ids."""
        with self._lock:
            return self._state.make_order(
                instance_id,
                order_id=order_id,
                contact_id=contact_id,
                stores_items=stores_items,
                other_items=other_items,
                **options,
            )

    def add_order(self, instance_id: str, order: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock:
            return self._state.add_order(instance_id, order)

    def get_order(self, instance_id: str, order_id: str) -> dict[str, Any] | None:
        with self._lock:
            return copy.deepcopy(self._state.instance(instance_id).orders.get(order_id))

    def order_fulfilled_event(
        self,
        instance_id: str,
        order: Mapping[str, Any],
        *,
        previous: str = "NOT_FULFILLED",
        new: str = "FULFILLED",
        action: str | None = None,
        as_json: bool = False,
    ) -> dict[str, Any]:
        """The `wix.ecom.v1.order_fulfilled` domain event: actionEvent.body {order, previousFulfillmentStatus,
        newFulfillmentStatus[, action]}; the stored order takes the new status."""
        with self._lock:
            return self._state.order_fulfilled_event(
                instance_id, order, previous=previous, new=new, action=action, as_json=as_json
            )

    def order_event(
        self, instance_id: str, order: Mapping[str, Any], slug: str, *, as_json: bool = False, **body: Any
    ) -> dict[str, Any]:
        """Any `wix.ecom.v1.order` event (created, approved, updated, fulfilled, payment_status_updated, canceled)."""
        with self._lock:
            return self._state.order_event(instance_id, order, slug, as_json=as_json, **body)

    # --- contacts -------------------------------------------------------------------------------

    def add_contact(
        self,
        instance_id: str,
        contact_id: str | None = None,
        email: str | None = None,
        *,
        more_emails: Iterable[str] = (),
        first: str | None = None,
        last: str | None = None,
    ) -> dict[str, Any]:
        """A contact on the site, as Get Contact returns it: `email` is its primary e-mail (none
        without it), `more_emails` further ones. Give a review's `contactId` to name its author."""
        with self._lock:
            return self._state.add_contact(
                instance_id, contact_id, email, more_emails=tuple(more_emails), first=first, last=last
            )

    def delete_contact(self, instance_id: str, contact_id: str) -> None:
        """The site owner deletes the contact: Get Contact answers 404 from now on."""
        with self._lock:
            self._state.delete_contact(instance_id, contact_id)

    # --- review requests ------------------------------------------------------------------------

    @property
    def review_request_creates(self) -> list[dict[str, Any]]:
        """The request body of every create call that created a review request (faulted-after-apply ones too)."""
        with self._lock:
            return copy.deepcopy(self._state.review_request_creates)

    def review_requests(self, instance_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(list(self._state.instance(instance_id).review_requests.values()))

    def set_review_request_status(
        self, instance_id: str, request_id: str, status: str, **options: Any
    ) -> dict[str, Any]:
        """SENT (opened=…), FAILED (reason=…, message=…), CANCELED, SCHEDULED: what Wix does on its side."""
        with self._lock:
            return self._state.set_review_request_status(instance_id, request_id, status, **options)

    def cancel_review_request(self, instance_id: str, request_id: str) -> dict[str, Any]:
        """Cancel one request as the site owner would (the REST bulk cancel only takes automation requests)."""
        return self.set_review_request_status(instance_id, request_id, "CANCELED")

    # --- faults ---------------------------------------------------------------------------------

    def inject(
        self,
        status: int | None = 503,
        *,
        times: int = 1,
        path_contains: str | None = None,
        after_apply: bool = False,
        hang_s: float | None = None,
        body: Any = None,
        method: str | None = None,
        retry_after: float | str | None = None,
    ) -> None:
        """Answer the next `times` matching API calls with `status` (None: the real answer, only delayed).

        after_apply: the call takes effect first, then the fault replaces its answer (a lost response).
        hang_s: wait that long before answering (a client timeout). body: dict → JSON, str/bytes → text.
        The token endpoint is touched only by a fault whose path_contains matches `/oauth2/token`."""
        with self._lock:
            self._faults.add(_Fault(status, times, path_contains, method, after_apply, hang_s, body, retry_after))

    def reset(self) -> None:
        """Forget all instances' data, events, the request and delivery logs and the faults; keep the key,
        the settings and the issued tokens (of instances that are added again)."""
        with self._lock:
            self._state = WixState(self.clock, self.app_id)
            self._faults.clear()
            self._windows.clear()
            self.requests.clear()
            self.deliveries.clear()

    # --- webhooks -------------------------------------------------------------------------------

    def sign_webhook(
        self,
        event_type: str,
        instance_id: str,
        data: Mapping[str, Any] | str,
        *,
        identity: Mapping[str, Any] | str | None = None,
        expires_in_s: float = 300,
        account_info: Mapping[str, Any] | None = None,
        issued_at: float | None = None,
        extra_claims: Mapping[str, Any] | None = None,
        algorithm: str = "RS256",
        wrong_key: bool = False,
    ) -> bytes:
        """The exact body Wix POSTs: an RS256 JWT with claims {data, iat, exp}; `data` is the JSON string of
        {eventType, instanceId, data: <JSON string of the domain event>, identity: <JSON string>}.

        For verifier tests: wrong_key signs with another RSA key, algorithm "none" or "HS256" (keyed
        with the public PEM: the algorithm-confusion attack) builds tokens a verifier must refuse,
        extra_claims adds e.g. `aud`, issued_at/expires_in_s make expired tokens."""
        envelope: dict[str, Any] = {
            "eventType": event_type,
            "instanceId": instance_id,
            "data": data if isinstance(data, str) else _compact(data),
        }
        if identity is None:
            identity = {"identityType": "WIX_USER", "wixUserId": self.wix_user_id}
        envelope["identity"] = identity if isinstance(identity, str) else _compact(identity)
        if account_info is not None:
            envelope["accountInfo"] = dict(account_info)
        iat = int(issued_at if issued_at is not None else self.clock())
        claims = {"data": _compact(envelope), "iat": iat, "exp": iat + int(expires_in_s), **(extra_claims or {})}
        if algorithm == "RS256":
            key = self._other_key() if wrong_key else self._private_key
            return jwt.encode(claims, key, algorithm="RS256", headers={"kid": self.key_id}).encode("ascii")
        if algorithm == "none":
            return _unsigned_jwt({"alg": "none", "typ": "JWT"}, claims, b"")
        if algorithm == "HS256":
            signing_input = _jwt_input({"alg": "HS256", "typ": "JWT", "kid": self.key_id}, claims)
            mac = hmac.new(self.public_key_pem.encode("ascii"), signing_input, hashlib.sha256).digest()
            return signing_input + b"." + _b64(mac)
        raise ValueError(f"algorithm {algorithm!r}: use RS256, none or HS256")

    def sign_claims_text(self, claims: str) -> bytes:
        """An RS256 token, signed as Wix signs, over claims given as JSON text: for what only raw text
        can hold, such as a number of more than 4,300 digits (Python will not write one)."""
        token = jwt.PyJWS().encode(claims.encode(), self._private_key, algorithm="RS256", headers={"kid": self.key_id})
        return token.encode("ascii")

    def sign_event(self, event: WixEvent, **sign: Any) -> bytes:
        """Sign one of `events` (what the emulator produced) as its webhook."""
        return self.sign_webhook(event.event_type, event.instance_id, event.event, **sign)

    def _other_key(self) -> rsa.RSAPrivateKey:
        with self._lock:
            if self._wrong_key is None:
                self._wrong_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            return self._wrong_key

    def deliver(
        self, url: str, body: bytes, *, times: int = 1, retries: int = 0, timeout_s: float | None = None
    ) -> list[Delivery]:
        """POST the body to a loopback URL `times` times (duplicates), each failed one re-sent up to
        `retries` more times at once (Wix waits 1 min, 10 min, 1 h, … between them)."""
        _check_loopback(url)
        results = []
        with httpx.Client(trust_env=False, timeout=timeout_s or self.delivery_timeout_s) as client:
            for _ in range(times):
                for _attempt in range(retries + 1):
                    delivery = self._post(client, url, body)
                    results.append(delivery)
                    if delivery.ok:
                        break
        return results

    def deliver_many(
        self,
        url: str,
        bodies: Iterable[bytes],
        *,
        shuffle: bool = True,
        duplicates: int = 2,
        seed: int | None = None,
        concurrency: int = 1,
        timeout_s: float | None = None,
    ) -> list[Delivery]:
        """Each body `duplicates` times, in a shuffled order (seeded), by `concurrency` parallel senders."""
        _check_loopback(url)
        queue = [body for body in bodies for _ in range(duplicates)]
        if shuffle:
            random.Random(seed).shuffle(queue)
        with httpx.Client(trust_env=False, timeout=timeout_s or self.delivery_timeout_s) as client:
            if concurrency <= 1:
                return [self._post(client, url, body) for body in queue]
            with ThreadPoolExecutor(max_workers=concurrency) as pool:
                return list(pool.map(lambda b: self._post(client, url, b), queue))

    def _post(self, client: httpx.Client, url: str, body: bytes) -> Delivery:
        started = time.monotonic()
        try:
            response = client.post(url, content=body, headers={"Content-Type": "text/plain; charset=utf-8"})
            delivery = Delivery(url, response.status_code, time.monotonic() - started, response.content)
        except httpx.HTTPError as exc:
            delivery = Delivery(url, None, time.monotonic() - started, b"", f"{type(exc).__name__}: {exc}")
        with self._lock:
            self.deliveries.append(delivery)
        return delivery

    # --- WSGI -----------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]):
        request = Request(environ)
        raw = request.get_data(cache=True)
        if request.path == TOKEN_PATH:
            response, instance_id = self._faulted(request, raw, self._token_endpoint), None
        else:
            if self.latency_s > 0:
                time.sleep(self.latency_s)
            response, instance_id = self._faulted_api(request, raw)
        response.headers["x-wix-request-id"] = str(uuid.uuid4())
        with self._lock:
            self.requests.append(
                LoggedRequest(
                    request.method,
                    request.path,
                    request.args.to_dict(flat=False),
                    dict(request.headers.items()),
                    _logged_body(raw),
                    response.status_code,
                    instance_id,
                )
            )
        return response(environ, start_response)

    def _faulted_api(self, request: Request, raw: bytes) -> tuple[Response, str | None]:
        holder: dict[str, str | None] = {"instance": None}

        def handle(req: Request, body: bytes) -> Response:
            response, holder["instance"] = self._handle(req, body)
            return response

        return self._faulted(request, raw, handle), holder["instance"]

    def _faulted(self, request: Request, raw: bytes, handle: Callable[[Request, bytes], Response]) -> Response:
        with self._lock:
            fault = self._take_fault(request)
        if fault is not None and not fault.after_apply:
            if fault.hang_s:
                time.sleep(fault.hang_s)
            if fault.status is not None:
                return self._fault_response(fault)
        with self._lock:
            response = handle(request, raw)
        if fault is not None and fault.after_apply:
            if fault.hang_s:
                time.sleep(fault.hang_s)
            if fault.status is not None:
                return self._fault_response(fault)
        return response

    def _take_fault(self, request: Request) -> _Fault | None:
        scheduled = self._faults.take(lambda fault: fault.matches(request.method, request.path))
        if scheduled is not None:
            return scheduled
        if request.path != TOKEN_PATH and self.fail_rate > 0 and self._rng.random() < self.fail_rate:
            write = request.method in ("PATCH", "PUT", "DELETE") or (
                request.method == "POST" and not request.path.endswith(("/query", "/count"))
            )
            return _Fault(self._rng.choice(_RANDOM_FAULTS), 1, after_apply=write and self._rng.random() < 0.5)
        return None

    def _fault_response(self, fault: _Fault) -> Response:
        status = fault.status or 503
        if fault.body is not None:
            if isinstance(fault.body, (dict, list)):
                response = _json_response(status, fault.body)
            else:
                response = Response(fault.body, status, content_type="text/plain; charset=utf-8")
        elif status >= 500:
            response = _json_response(status, system_error(status).body())
        elif status == 429:
            response = _json_response(status, _rate_limited(self.rate_limit_per_minute or 200).body())
        else:
            code = _STANDARD_CODES.get(status, "UNKNOWN")
            response = _json_response(status, app_error(status, code, f"{code} (injected)").body())
        if fault.retry_after is not None:
            response.headers["Retry-After"] = str(fault.retry_after)
        return response

    # --- OAuth ------------------------------------------------------------------------------------

    def _token_endpoint(self, request: Request, raw: bytes) -> Response:
        try:
            if request.method != "POST":
                raise app_error(405, "METHOD_NOT_ALLOWED", "The token endpoint only accepts POST")
            body = _json_body(raw)
            if not isinstance(body, Mapping):
                raise invalid("", "the request body must be a JSON object", "FORMAT")
            for name in ("grant_type", "client_id", "client_secret", "instance_id"):
                if not isinstance(body.get(name), str) or not body[name]:
                    raise invalid(name, f"{name} is required", "REQUIRED_FIELD")
            if body["grant_type"] != "client_credentials":
                raise invalid(
                    "grant_type", f"unsupported grant_type {body['grant_type']!r}: use client_credentials", "OTHER"
                )
            if not (
                hmac.compare_digest(body["client_id"], self.app_id)
                and hmac.compare_digest(body["client_secret"], self.app_secret)
            ):
                raise app_error(401, "UNAUTHENTICATED", "Invalid client credentials (client_id / client_secret)")
            if body["instance_id"] not in self._state.instances:
                raise app_error(400, "APP_NOT_INSTALLED", f"The app is not installed on instance {body['instance_id']}")
        except WixError as error:
            return _json_response(error.status, error.body())
        token = self._issue(body["instance_id"], "APP", TOKEN_TTL_S)
        return _json_response(200, {"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_TTL_S})

    def _authenticate(self, request: Request) -> _Token:
        header = request.headers.get("Authorization", "")
        if not header:
            raise app_error(401, "UNAUTHENTICATED", "Missing Authorization header")
        if header[:7].lower() == "bearer ":
            raise app_error(
                401,
                "UNAUTHENTICATED",
                "Invalid access token: send `Authorization: <access_token>` without a 'Bearer ' prefix",
            )
        token = self._tokens.get(header)
        if token is None or token.instance_id not in self._state.instances:
            raise app_error(401, "UNAUTHENTICATED", "Invalid access token")
        if self.clock() >= token.expires_at:
            del self._tokens[header]
            raise app_error(401, "UNAUTHENTICATED", "Access token expired")
        return token

    def _admit(self, instance_id: str) -> None:
        limit = self.rate_limit_per_minute
        if not limit:
            return
        now = self.clock()
        window = self._windows.setdefault(instance_id, deque())
        while window and window[0] <= now - 60:
            window.popleft()
        if len(window) >= limit:
            error = _rate_limited(limit)
            if self.rate_limit_retry_after:
                wait = max(1, math.ceil(window[0] + 60 - now))
                error.headers = {"Retry-After": str(wait)}  # type: ignore[attr-defined]
            raise error
        window.append(now)

    # --- the API ----------------------------------------------------------------------------------

    def _handle(self, request: Request, raw: bytes) -> tuple[Response, str | None]:
        instance_id = None
        try:
            try:
                endpoint, args = _ROUTES.bind("wix.test").match(request.path, method=request.method)
            except MethodNotAllowed:
                raise app_error(
                    405, "METHOD_NOT_ALLOWED", f"{request.method} is not allowed on {request.path}"
                ) from None
            except NotFound:
                raise app_error(404, "NOT_FOUND", f"No such endpoint: {request.path}") from None
            token = self._authenticate(request)
            instance_id = token.instance_id
            self._admit(instance_id)
            body = _json_body(raw) if request.method in ("POST", "PATCH", "PUT") else None
            if body is not None and not isinstance(body, Mapping):
                raise invalid("", "the request body must be a JSON object", "FORMAT")
            result = self._dispatch(endpoint, args, request, body, instance_id, token.identity)
            return _json_response(200, result), instance_id
        except WixError as error:
            response = _json_response(error.status, error.body())
            response.headers.update(getattr(error, "headers", {}))
            return response, instance_id

    def _dispatch(
        self,
        endpoint: str,
        args: dict[str, str],
        request: Request,
        body: Any,
        instance_id: str,
        identity: dict[str, Any],
    ) -> Any:
        state = self._state
        if endpoint == "create_review":
            return state.api_create_review(instance_id, body, identity)
        if endpoint == "query_reviews":
            body = body or {}
            private = _flag(body.get("returnPrivateReviews"), "returnPrivateReviews")
            reviews, next_cursor, _ = state.run_query(instance_id, "reviews", body.get("query"), private=private)
            return {
                "reviews": reviews,
                "metadata": {"count": len(reviews), "cursors": {"next": next_cursor} if next_cursor else {}},
            }
        if endpoint == "count_reviews":
            body = body or {}
            private = _flag(body.get("includePrivateReviews"), "includePrivateReviews")
            return {"count": state.count(instance_id, "reviews", body.get("filter"), private=private)}
        if endpoint == "review":
            review_id = args["review_id"]
            if request.method == "GET":
                private = _flag(request.args.get("returnPrivateReviews"), "returnPrivateReviews")
                return state.api_get_review(instance_id, review_id, private)
            if request.method == "PATCH":
                return state.api_update_review(instance_id, review_id, body, identity)
            return state.api_delete_review(instance_id, review_id)
        if endpoint == "moderate":
            return state.api_moderate(instance_id, args["review_id"], body)
        if endpoint == "reply":
            message = (body or {}).get("message") if request.method == "PATCH" else None
            if request.method == "PATCH" and not message:
                raise invalid("message", "message is required", "REQUIRED_FIELD")
            return state.api_reply(instance_id, args["review_id"], message)
        if endpoint == "create_review_request":
            return state.api_create_review_request(instance_id, body, identity)
        if endpoint == "query_review_requests":
            items, next_cursor, has_next = state.run_query(instance_id, "review_requests", (body or {}).get("query"))
            cursors = {"next": next_cursor} if next_cursor else {}
            return {
                "reviewRequests": items,
                "pagingMetadata": {"count": len(items), "cursors": cursors, "hasNext": has_next},
            }
        if endpoint == "count_review_requests":
            return {"count": state.count(instance_id, "review_requests", (body or {}).get("filter"))}
        if endpoint == "review_request":
            if request.method == "GET":
                return state.api_get_review_request(instance_id, args["request_id"])
            return state.api_delete_review_request(instance_id, args["request_id"])
        if endpoint == "cancel_review_requests":
            return state.api_cancel_by_filter(instance_id, body)
        if endpoint == "contact":
            fields, fieldsets = request.args.getlist("fields"), request.args.getlist("fieldsets")
            return state.api_get_contact(instance_id, args["contact_id"], fields, fieldsets)
        raise app_error(404, "NOT_FOUND", f"No such endpoint: {request.path}")  # pragma: no cover


# --- helpers --------------------------------------------------------------------------------------


def _rate_limited(limit: int) -> WixError:
    return app_error(429, "RESOURCE_EXHAUSTED", f"Rate limit exceeded: {limit} requests per minute per app instance")


def _json_response(status: int, body: Any) -> Response:
    return Response(json.dumps(body), status, content_type="application/json")


def _json_body(raw: bytes) -> Any:
    if not raw.strip():
        return {}
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise invalid("", "the request body is not valid JSON", "FORMAT") from None


def _flag(value: Any, name: str) -> bool:
    if value in (None, "", False, "false", "False"):
        return False
    if value in (True, "true", "True"):
        return True
    raise invalid(name, f"{value!r} is not a boolean", "FORMAT")


def _logged_body(raw: bytes) -> Any:
    if not raw:
        return None
    text = raw.decode("utf-8", "replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _jwt_input(header: Mapping[str, Any], claims: Mapping[str, Any]) -> bytes:
    return _b64(_compact(header).encode()) + b"." + _b64(_compact(claims).encode())


def _unsigned_jwt(header: Mapping[str, Any], claims: Mapping[str, Any], signature: bytes) -> bytes:
    return _jwt_input(header, claims) + b"." + _b64(signature)


def _check_loopback(url: str) -> None:
    host = urlsplit(url).hostname
    if host not in _LOOPBACK_HOSTS:
        raise ValueError(f"the Wix emulator delivers webhooks to loopback only, not {host!r}")


# --- CLI ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.wix", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=9003)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--app-id", default="wix-app-id")
    parser.add_argument("--app-secret", default="wix-app-secret-0123456789")
    parser.add_argument("--rate-limit", type=int, default=200, help="API calls per instance per minute (0: off)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--instance",
        action="append",
        default=[],
        metavar="ID",
        help="install the app on this instance (repeatable; default: one new instance)",
    )
    args = parser.parse_args(argv)

    from tests.fakes.serving import serve_wsgi

    emulator = WixEmulator(
        app_id=args.app_id,
        app_secret=args.app_secret,
        latency_s=args.latency_ms / 1000,
        fail_rate=args.fail_rate,
        seed=args.seed,
        rate_limit_per_minute=args.rate_limit or None,
    )
    instances = [emulator.add_instance(i) for i in (args.instance or [None])]
    orders = {i: emulator.make_order(i, stores_items=3) for i in instances}
    with serve_wsgi(emulator, port=args.port, log_requests=True) as url:
        print(f"Wix emulator on {url} (app {args.app_id}); Ctrl-C to stop", flush=True)
        for instance_id in instances:
            order = orders[instance_id]
            print(f"instance {instance_id}: demo order {order['id']} (contact {order['buyerInfo']['contactId']})")
        print("webhook public key:")
        print(emulator.public_key_pem, end="")
        print(f"export WIX_APP_ID={args.app_id}")
        print(f"export WIX_APP_SECRET={args.app_secret}")
        print(f"export WIX_API_URL={url}")
        print("export WIX_PUBLIC_KEY='" + emulator.public_key_pem.strip().replace("\n", "\\n") + "'", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopped", flush=True)


if __name__ == "__main__":
    main()
