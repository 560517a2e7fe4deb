"""A faithful Trustoo (TrustWILL) Open API emulator: reviews, rating, shop webhooks, OAuth2, and the
webhook deliveries Trustoo makes to registered URLs (docs/platforms/trustoo.md).

A WSGI app: drive it in-process with `httpx.WSGITransport(app=emulator)`, over loopback with
`tests.fakes.serving.serve_wsgi(emulator)`, or alone from a shell::

    python -m tests.fakes.trustoo --port 9002 [--latency-ms 50] [--fail-rate 0.3] [--webhook-base URL]
                                  [--rate-limit 2 [--rate-limit-burst 2]]

Signing and verification are written here from the spec (§1.2, §1.7), never imported from the
connector, so a bug in our client shows up as a code 16 rather than being shared. The rules on
reviews, webhooks and OAuth grants live in `trustoo_model.py`; this module is the HTTP layer,
authentication, fault injection (`inject`, `fail_rate`, `latency_s`), the request log and the
background webhook delivery (with the 10-attempt redelivery schedule of §1.7).

`rate_limit_per_s` makes it enforce a request limit per shop across all its clients: past it, an
Open API request is answered HTTP 429 with envelope code 8 and a Retry-After in whole seconds,
and counted in `rate_limited` (public token → 429s sent).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import math
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import httpx
from werkzeug.datastructures import Headers
from werkzeug.wrappers import Request, Response

from tests.fakes.faults import FaultSchedule
from tests.fakes.trustoo_model import (
    ApiError,
    Shop,
    ShopRateLimit,
    TrustooState,
    fmt_time,
    invalid,
    parse_id,
    parse_scopes,
    render,
    validate_draft,
)

__all__ = ["Delivery", "LoggedRequest", "TrustooEmulator", "api_sign", "webhook_sign"]

PREFIX = "/api/v1/openapi/"
TIMESTAMP_WINDOW_S = 15 * 60
DEFAULT_RETRY_DELAYS_S = (0, 180, 360, 540, 720, 900, 1080, 1260, 1440, 1620)  # §1.7: 0, 3, …, 27 minutes
WEBHOOK_SUCCESS = {"code": 0, "message": "success"}
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
_MESSAGES = {
    0: "success",
    1: "canceled",
    3: "invalid argument",
    4: "deadline exceeded",
    5: "not found",
    6: "already exists",
    7: "permission denied",
    8: "operation was rejected",
    12: "unimplemented",
    13: "internal error",
    16: "unauthenticated",
}
_CODE_FOR_STATUS = {400: 3, 401: 16, 403: 7, 404: 5, 408: 4, 409: 6, 429: 8}
# verb → (HTTP method, scope a Bearer token needs; None: none, or decided by the handler)
_ROUTES: dict[str, tuple[str, str | None]] = {
    "get_review": ("GET", "read_reviews"),
    "get_reviews": ("GET", "read_reviews"),
    "get_rating": ("GET", "read_reviews"),
    "create_review": ("POST", "write_reviews"),
    "delete_review": ("POST", "write_reviews"),
    "create_shop_webhook": ("POST", None),
    "update_shop_webhook": ("POST", None),
    "delete_shop_webhook": ("POST", None),
    "get_shop_webhooks": ("GET", None),
}
_OAUTH_ROUTES = {
    "get_oauth_authorize_url": "GET",
    "oauth/authorize": "GET",
    "oauth/token": "POST",
    "oauth_revoke_token": "POST",
    "oauth/revoke": "POST",
}


def api_sign(private_token: str, query_pairs: list[tuple[str, str]], timestamp: str, raw_body: bytes) -> str:
    """§1.2: sorted `k=v` over the query params plus timestamp, then `|` + raw body when there is one."""
    pairs = sorted([*query_pairs, ("timestamp", str(timestamp))], key=lambda kv: kv[0])
    message = "&".join(f"{k}={v}" for k, v in pairs).encode("utf-8")
    if raw_body:
        message += b"|" + raw_body
    return hmac.new(private_token.encode("utf-8"), message, hashlib.sha256).hexdigest()


def webhook_sign(private_token: str, timestamp: int | str, raw_body: bytes) -> str:
    """§1.7 + §2.4: the API scheme with no query params, i.e. HMAC over `timestamp=<ts>|<raw body>`."""
    return api_sign(private_token, [], str(timestamp), raw_body)


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Headers  # case-insensitive, as received
    body: bytes  # the exact bytes received
    status: int
    code: int | None  # the envelope code, None when the answer was not an envelope (302, HTML 5xx)

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Delivery:
    url: str
    topic: str
    body: bytes
    headers: dict[str, str]
    status: int | None  # None: no HTTP answer (connection error, timeout, refused non-loopback URL)
    attempt: int  # 1-based
    request_id: str = ""
    response: bytes | None = None
    error: str | None = None
    ok: bool = False


@dataclass
class _Fault:
    status: int | None
    code: int | None
    times: int
    path_contains: str | None
    after_apply: bool
    retry_after: float | str | None
    hang_s: float | None

    @property
    def answers(self) -> bool:
        return self.status is not None or self.code is not None


@dataclass
class _Job:
    url: str
    topic: str
    shop: str
    body: bytes
    request_id: str
    attempt: int
    due: float  # time.monotonic()


@dataclass
class _Principal:
    shop: Shop
    owner: tuple[str, str]
    scopes: tuple[str, ...] | None  # None: HMAC, the shop owner, every scope


@dataclass
class _Answer:
    status: int
    code: int | None
    data: Any = None
    message: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: Response | None = None


class TrustooEmulator:
    def __init__(
        self,
        shops: Mapping[str, str] | None = None,
        *,
        clock: Callable[[], float] = time.time,
        latency_s: float = 0.0,
        fail_rate: float = 0.0,
        seed: int | None = None,
        oauth_clients: Mapping[str, str] | None = None,
        retry_delays_s: tuple[float, ...] = DEFAULT_RETRY_DELAYS_S,
        api_writes_fire_webhooks: bool = True,
        rate_limit_per_s: float | None = None,
        rate_limit_burst: float = 2.0,
    ):
        self.clock = clock
        self.rate_limit = ShopRateLimit(rate_limit_per_s, rate_limit_burst) if rate_limit_per_s else None
        self.rate_limited: Counter[str] = Counter()
        self.latency_s = latency_s
        self.fail_rate = fail_rate
        self.retry_delays_s = tuple(retry_delays_s)
        self.api_writes_fire_webhooks = api_writes_fire_webhooks
        self._rng = random.Random(seed)
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._state = TrustooState(shops or {}, oauth_clients or {}, lambda: self.clock())
        self._faults: FaultSchedule[_Fault] = FaultSchedule()
        self._creates: Counter[str] = Counter()
        self._jobs: list[_Job] = []
        self._in_flight = 0
        self._thread: threading.Thread | None = None
        self._closed = False
        self._http: httpx.Client | None = None
        self.requests: list[LoggedRequest] = []
        self.deliveries: list[Delivery] = []

    # --- the Python-side API: Trustoo admin actions ---------------------------------------------

    def add_review(self, public_token: str, **fields: Any) -> dict[str, Any]:
        """Seed a review as if written in Trustoo (lenient defaults); fires review/created."""
        with self._lock:
            shop = self._state.shop(public_token)
            review = self._state.add(shop, self._state.seed_fields(fields))
            self._emit(shop, "review/created", review)
            return render(review)

    def update_review(self, public_token: str, review_id: int | str, **fields: Any) -> dict[str, Any]:
        """An edit in the Trustoo admin: review/updated (or review/deleted when it unpublishes)."""
        with self._lock:
            shop, review = self._admin_review(public_token, review_id)
            was_published = review["is_published"]
            review.update(self._state.normalize(fields, fmt_time(self.clock())))
            review["updated_at"] = fmt_time(self.clock())
            hidden = was_published == 1 and review["is_published"] != 1
            self._emit(shop, "review/deleted" if hidden else "review/updated", review)
            return render(review)

    def hide_review(self, public_token: str, review_id: int | str) -> dict[str, Any]:
        """Unpublish: Trustoo reports it as review/deleted (§1.7 "deleted or hidden"). No-op if hidden."""
        return self._set_published(public_token, review_id, 0, "review/deleted")

    def publish_review(self, public_token: str, review_id: int | str) -> dict[str, Any]:
        """Publish a hidden review: review/updated. No-op if already published."""
        return self._set_published(public_token, review_id, 1, "review/updated")

    def delete_review_in_admin(self, public_token: str, review_id: int | str) -> dict[str, Any]:
        with self._lock:
            shop, review = self._admin_review(public_token, review_id)
            del shop.reviews[review["id"]]
            self._emit(shop, "review/deleted", review)
            return render(review)

    def reviews(self, public_token: str) -> list[dict[str, Any]]:
        """Stored reviews, hidden ones included, by id."""
        with self._lock:
            shop = self._state.shop(public_token)
            return [render(shop.reviews[rid]) for rid in sorted(shop.reviews)]

    def create_calls(self, public_token: str) -> int:
        """Successful (applied) create_review calls for this shop."""
        with self._lock:
            return self._creates[public_token]

    def add_webhook(self, public_token: str, topic: str, url: str) -> dict[str, str]:
        """Register a shop webhook without an HTTP round trip (as create_shop_webhook with HMAC would)."""
        with self._lock:
            owner = ("shop", self._state.shop(public_token).public_token)
            topic, url = self._state.webhook_fields({"topic": topic, "url": url}, owner, None)
            return self._state.create_webhook(owner, topic, url).json()

    def webhooks(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{**w.json(), "owner": w.owner} for w in self._state.webhooks.values()]

    def shop_info(self, public_token: str) -> dict[str, Any]:
        """The shop identifiers webhook items carry (`my_shopify_domain`, `shopify_shop_id`)."""
        with self._lock:
            shop = self._state.shop(public_token)
            return {"my_shopify_domain": shop.domain, "shopify_shop_id": shop.shopify_shop_id}

    def reset_private_token(self, public_token: str, new_private_token: str) -> None:
        """The merchant resets the private token: the old one stops working at once (§1.1)."""
        with self._lock:
            self._state.shop(public_token).private_token = new_private_token

    def revoke_authorization(self, public_token: str, client_id: str) -> None:
        """The merchant disconnects a platform: its tokens for this shop stop working, its webhooks stop firing."""
        with self._lock:
            self._state.authorized.discard((public_token, client_id))

    def inject(
        self,
        status: int | None = 503,
        *,
        code: int | None = None,
        times: int = 1,
        path_contains: str | None = None,
        after_apply: bool = False,
        retry_after: float | str | None = None,
        hang_s: float | None = None,
    ) -> None:
        """The next `times` Open API requests whose path contains `path_contains` fail.

        HTTP `status` (JSON envelope for 4xx, an nginx HTML page for 5xx), or HTTP 200 with envelope
        `code` when code is given. after_apply: the request is handled first, then the failure is
        answered (the reply is lost). hang_s: sleep that long before answering. status=None and
        code=None with hang_s: a slow but normal answer."""
        with self._lock:
            self._faults.add(_Fault(status, code, times, path_contains, after_apply, retry_after, hang_s))

    def pending_deliveries(self) -> int:
        with self._lock:
            return len(self._jobs) + self._in_flight

    def flush_deliveries(self, timeout_s: float = 5) -> None:
        """Wait until every (re)delivery due so far has been attempted; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout_s
        with self._wake:
            while True:
                now = time.monotonic()
                if not self._in_flight and not any(job.due <= now for job in self._jobs):
                    return
                if now >= deadline:
                    raise TimeoutError(f"webhook deliveries still due after {timeout_s} s")
                self._wake.wait(min(deadline - now, 0.02))

    def close(self) -> None:
        """Stop the delivery thread; deliveries not yet attempted are dropped."""
        with self._wake:
            self._closed = True
            self._jobs.clear()
            self._wake.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)
        if self._http is not None:
            self._http.close()

    # --- admin helpers --------------------------------------------------------------------------

    def _admin_review(self, public_token: str, review_id: int | str) -> tuple[Shop, dict[str, Any]]:
        shop = self._state.shop(public_token)
        rid = parse_id(review_id)
        if rid is None or rid not in shop.reviews:
            raise KeyError(f"no review {review_id!r} in shop {public_token!r}")
        return shop, shop.reviews[rid]

    def _set_published(self, public_token: str, review_id: int | str, value: int, topic: str) -> dict[str, Any]:
        with self._lock:
            shop, review = self._admin_review(public_token, review_id)
            if review["is_published"] != value:
                review["is_published"] = value
                review["updated_at"] = fmt_time(self.clock())
                self._emit(shop, topic, review)
            return render(review)

    # --- WSGI -----------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]):
        request = Request(environ)
        raw = request.get_data(cache=True)
        if request.path.startswith("/_emulator/"):
            return self._control(request, raw)(environ, start_response)
        answer = self._serve(request, raw)
        response = self._respond(answer)
        query = parse_qs(request.query_string.decode("utf-8", "replace"), keep_blank_values=True)
        with self._lock:
            self.requests.append(
                LoggedRequest(
                    request.method, request.path, query, Headers(request.headers), raw, answer.status, answer.code
                )
            )
        return response(environ, start_response)

    def _serve(self, request: Request, raw: bytes) -> _Answer:
        if not request.path.startswith(PREFIX):
            return _Answer(404, 5, message=f"not found: no route {request.path}")
        throttled = self._throttle(request)  # counted as the request arrives, answered after the latency
        if self.latency_s > 0:
            time.sleep(self.latency_s)
        if throttled is not None:
            return throttled
        with self._lock:
            fault = self._take_fault(request.path)
            if fault is None or fault.after_apply or not fault.answers:
                answer = self._handle(request, raw)
        if fault is not None and fault.hang_s:
            time.sleep(fault.hang_s)
        if fault is None or not fault.answers:
            return answer
        return _fault_answer(fault)

    def _respond(self, answer: _Answer) -> Response:
        if answer.raw is not None:
            response = answer.raw
        else:
            body = {
                "code": answer.code,
                "message": answer.message or _MESSAGES.get(answer.code, "error"),
                "time": int(self.clock()),
                "request_id": uuid.uuid4().hex,
                "data": {} if answer.data is None else answer.data,
            }
            response = Response(
                json.dumps(body, ensure_ascii=False), answer.status, content_type="application/json; charset=utf-8"
            )
        response.headers.update(answer.headers)
        return response

    def _throttle(self, request: Request) -> _Answer | None:
        """The 429 for a shop past its rate limit; None when it may go on (or no limit is set)."""
        verb = request.path[len(PREFIX) :]
        if self.rate_limit is None or verb not in _ROUTES:
            return None
        with self._lock:
            shop = self._shop_of(request)
            wait = None if shop is None else self.rate_limit.take(shop, self.clock())
            if shop is None or wait is None:
                return None
            self.rate_limited[shop] += 1
        return _Answer(
            429,
            8,
            message=f"operation was rejected: more than {self.rate_limit.per_s:g} requests a second for this shop",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )

    def _shop_of(self, request: Request) -> str | None:
        """The shop a request is made for, as its credentials name it (not yet checked)."""
        authorization = request.headers.get("Authorization", "").strip()
        if authorization:
            grant = self._state.access.get(authorization.partition(" ")[2].strip())
            return grant.shop if grant is not None else None
        public = request.headers.get("Public-Token")
        return public if public in self._state.shops else None

    def _take_fault(self, path: str) -> _Fault | None:
        scheduled = self._faults.take(lambda fault: fault.path_contains is None or fault.path_contains in path)
        if scheduled is not None:
            return scheduled
        if self.fail_rate > 0 and self._rng.random() < self.fail_rate:
            kind = self._rng.choice(("503", "429", "13"))
            if kind == "13":
                return _Fault(None, 13, 1, None, False, None, None)
            return _Fault(int(kind), None, 1, None, False, 1 if kind == "429" else None, None)
        return None

    # --- routing and authentication -------------------------------------------------------------

    def _handle(self, request: Request, raw: bytes) -> _Answer:
        verb = request.path[len(PREFIX) :]
        try:
            if verb in _OAUTH_ROUTES:
                _check_method(request, _OAUTH_ROUTES[verb])
                return self._oauth(verb, request, raw)
            if verb not in _ROUTES:
                return _Answer(404, 5, message=f"not found: no Open API route {request.path}")
            method, scope = _ROUTES[verb]
            _check_method(request, method)
            principal = self._authenticate(request, raw)
            if scope and principal.scopes is not None and scope not in principal.scopes:
                raise ApiError(7, f"permission denied: {verb} needs scope {scope}")
            return _Answer(200, 0, getattr(self, f"_api_{verb}")(principal, request, raw))
        except ApiError as error:
            return _Answer(error.status, error.code, message=error.message)

    def _authenticate(self, request: Request, raw: bytes) -> _Principal:
        authorization = request.headers.get("Authorization", "").strip()
        if authorization:  # §1.1: a non-empty Authorization header means OAuth, whatever else is sent
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise ApiError(16, "unauthenticated: Authorization must be 'Bearer <access_token>'")
            grant = self._state.bearer(token.strip())
            return _Principal(self._state.shops[grant.shop], ("platform", grant.client_id), grant.scopes)
        public, sign, timestamp = (request.headers.get(h) for h in ("Public-Token", "Sign", "Timestamp"))
        if not public or not sign or not timestamp:
            raise ApiError(16, "unauthenticated: Public-Token, Sign and Timestamp headers are required")
        shop = self._state.shops.get(public)
        if shop is None:
            raise ApiError(16, "unauthenticated: unknown public token")
        if not timestamp.isdigit():
            raise ApiError(16, "unauthenticated: Timestamp must be Unix seconds")
        if abs(self.clock() - int(timestamp)) > TIMESTAMP_WINDOW_S:
            raise ApiError(16, "unauthenticated: timestamp expired (valid for 15 minutes)")
        pairs = parse_qsl(request.query_string.decode("utf-8", "replace"), keep_blank_values=True)
        expected = api_sign(shop.private_token, pairs, timestamp, raw)
        if not hmac.compare_digest(sign.encode(), expected.encode()):
            raise ApiError(16, "unauthenticated: sign mismatch")
        return _Principal(shop, ("shop", shop.public_token), None)

    # --- Open API verbs -------------------------------------------------------------------------

    def _api_get_review(self, who: _Principal, request: Request, raw: bytes) -> Any:
        review_id = request.args.get("id")
        if not review_id:
            raise invalid("id is required")
        if parse_id(review_id) is None:
            raise invalid("id must be an integer")
        return render(self._state.review(who.shop, review_id))

    def _api_get_reviews(self, who: _Principal, request: Request, raw: bytes) -> Any:
        return self._state.list_reviews(who.shop, request.args.to_dict(flat=False))

    def _api_get_rating(self, who: _Principal, request: Request, raw: bytes) -> Any:
        return self._state.rating(who.shop, request.args.to_dict(flat=False))

    def _api_create_review(self, who: _Principal, request: Request, raw: bytes) -> Any:
        fields = validate_draft(_json_body(raw), self.clock())
        review = self._state.add(who.shop, fields)
        self._creates[who.shop.public_token] += 1
        if self.api_writes_fire_webhooks:
            self._emit(who.shop, "review/created", review)
        return {"id": str(review["id"])}

    def _api_delete_review(self, who: _Principal, request: Request, raw: bytes) -> Any:
        body = _json_body(raw)
        review_id = body.get("id") if isinstance(body, dict) else None
        if review_id is None or review_id == "":
            raise invalid("id is required")
        if parse_id(review_id) is None:
            raise invalid("id must be an integer")
        review = self._state.review(who.shop, review_id)
        del who.shop.reviews[review["id"]]
        if self.api_writes_fire_webhooks:
            self._emit(who.shop, "review/deleted", review)
        return {}

    def _api_create_shop_webhook(self, who: _Principal, request: Request, raw: bytes) -> Any:
        topic, url = self._state.webhook_fields(_json_body(raw), who.owner, who.scopes)
        return self._state.create_webhook(who.owner, topic, url).json()

    def _api_update_shop_webhook(self, who: _Principal, request: Request, raw: bytes) -> Any:
        body = _json_body(raw)
        hook = self._state.owned_webhook(who.owner, body)
        hook.topic, hook.url = self._state.webhook_fields(body, who.owner, who.scopes, exclude=hook.id)
        hook.updated_at = fmt_time(self.clock())
        return hook.json()

    def _api_delete_shop_webhook(self, who: _Principal, request: Request, raw: bytes) -> Any:
        hook = self._state.owned_webhook(who.owner, _json_body(raw))
        del self._state.webhooks[hook.id]
        return {}

    def _api_get_shop_webhooks(self, who: _Principal, request: Request, raw: bytes) -> Any:
        return [w.json() for w in self._state.webhooks.values() if w.owner == who.owner]

    # --- OAuth2 (§1.8) --------------------------------------------------------------------------

    def _oauth(self, verb: str, request: Request, raw: bytes) -> _Answer:
        state = self._state
        if verb in ("get_oauth_authorize_url", "oauth/authorize"):
            args = request.args
            state.check_client(args.get("client_id"), secret=False)
            redirect_uri = args.get("redirect_uri", "")
            if not redirect_uri.startswith(("http://", "https://")):
                raise invalid("redirect_uri must be an absolute http(s) URL")
            scopes = parse_scopes(args.get("scope", ""))
            if args.get("response_type", "code") != "code":
                raise invalid("response_type must be 'code'")
            query = {
                "client_id": args["client_id"],
                "redirect_uri": redirect_uri,
                "state": args.get("state", ""),
                "scope": " ".join(scopes),
                "response_type": "code",
            }
            if verb == "get_oauth_authorize_url":
                url = f"{request.host_url.rstrip('/')}{PREFIX}oauth/authorize?{urlencode(query)}"
                return _Answer(200, 0, {"authorize_url": url})
            return self._consent(request, redirect_uri, scopes)
        body = _json_body(raw)
        if not isinstance(body, dict):
            raise invalid("the request body must be a JSON object")
        state.check_client(body.get("client_id"), body.get("client_secret"))
        if verb in ("oauth_revoke_token", "oauth/revoke"):
            token = body.get("token")
            for table in (state.access, state.refresh):
                if token in table and table[token].client_id == body["client_id"]:
                    del table[token]
            return _Answer(200, 0, {})
        grant_type = body.get("grant_type")
        if grant_type == "authorization_code":
            grant = state.codes.pop(body.get("code") or "", None)
            if grant is None or grant.client_id != body["client_id"] or self.clock() >= grant.expires_at:
                raise invalid("invalid_grant: the authorization code is unknown, used or expired")
            if body.get("redirect_uri") != grant.redirect_uri:
                raise invalid("invalid_grant: redirect_uri does not match the authorization request")
        elif grant_type == "refresh_token":
            grant = state.refresh.get(body.get("refresh_token") or "")
            if (
                grant is None
                or grant.client_id != body["client_id"]
                or (grant.shop, grant.client_id) not in state.authorized
            ):
                raise invalid("invalid_grant: the refresh token is unknown, rotated or revoked")
            del state.refresh[body["refresh_token"]]  # rotated: the new pair replaces it
        elif grant_type == "client_credentials":
            raise invalid("unsupported grant_type client_credentials: only for platforms with skip_shop_oauth=1")
        else:
            raise invalid("grant_type must be authorization_code or refresh_token")
        return _Answer(200, 0, state.issue_tokens(grant))

    def _consent(self, request: Request, redirect_uri: str, scopes: tuple[str, ...]) -> _Answer:
        """The merchant approves in the Trustoo admin; `shop` (public token) stands for their session."""
        shop = request.args.get("shop") or (next(iter(self._state.shops)) if len(self._state.shops) == 1 else None)
        if shop not in self._state.shops:
            raise ApiError(16, "unauthenticated: no merchant session (pass shop=<public token>)")
        client_state = request.args.get("state", "")
        if request.args.get("deny") == "1":
            params = {"error": "access_denied", "state": client_state}
        else:
            code = self._state.issue_code(request.args["client_id"], shop, scopes, redirect_uri)
            params = {"code": code, "state": client_state}
            if "application/json" in request.headers.get("Accept", ""):
                location = _with_query(redirect_uri, params)
                return _Answer(200, 0, {"code": code, "redirect_url": location, "state": client_state})
        location = _with_query(redirect_uri, params)
        return _Answer(302, None, raw=Response(b"", 302, headers={"Location": location}))

    # --- webhook delivery (§1.7) ----------------------------------------------------------------

    def _emit(self, shop: Shop, topic: str, review: dict[str, Any]) -> None:
        hooks = self._state.subscribers(shop, topic)
        if not hooks:
            return
        item = {
            "id": review["id"],
            "my_shopify_domain": shop.domain,
            "shopify_shop_id": shop.shopify_shop_id,
            **render(review),
        }
        body = json.dumps({"list": [item]}, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        first_delay = self.retry_delays_s[0] if self.retry_delays_s else 0
        for hook in hooks:
            self._jobs.append(
                _Job(hook.url, topic, shop.public_token, body, uuid.uuid4().hex, 1, time.monotonic() + first_delay)
            )
        if self._thread is None and not self._closed:
            self._http = httpx.Client(timeout=5.0, trust_env=False, follow_redirects=False)
            self._thread = threading.Thread(target=self._deliver_loop, name="trustoo-webhooks", daemon=True)
            self._thread.start()
        self._wake.notify_all()

    def _deliver_loop(self) -> None:
        with self._wake:
            while not self._closed:
                now = time.monotonic()
                due = [job for job in self._jobs if job.due <= now]
                if not due:
                    wait = min((job.due for job in self._jobs), default=now + 1.0) - now
                    self._wake.wait(max(min(wait, 1.0), 0.001))
                    continue
                job = min(due, key=lambda j: j.due)
                self._jobs.remove(job)
                self._in_flight += 1
                shop = self._state.shops[job.shop]
                private, public = shop.private_token, shop.public_token
                self._wake.release()
                try:
                    delivery = self._attempt(job, public, private)
                finally:
                    self._wake.acquire()
                    self._in_flight -= 1
                self.deliveries.append(delivery)
                if not delivery.ok and job.attempt < len(self.retry_delays_s) and not self._closed:
                    self._jobs.append(
                        _Job(
                            job.url,
                            job.topic,
                            job.shop,
                            job.body,
                            job.request_id,
                            job.attempt + 1,
                            time.monotonic() + self.retry_delays_s[job.attempt],
                        )
                    )
                self._wake.notify_all()

    def _attempt(self, job: _Job, public: str, private: str) -> Delivery:
        timestamp = int(self.clock())  # fresh on every attempt
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Trustoo-Webhook/1.0 (emulator)",
            "Open-Trustoo-Webhook-Public-token": public,
            "Open-Trustoo-Webhook-Timestamp": str(timestamp),
            "Open-Trustoo-Webhook-Sign": webhook_sign(private, timestamp, job.body),
            "Open-Trustoo-Webhook-RequestId": job.request_id,
        }
        delivery = Delivery(job.url, job.topic, job.body, headers, None, job.attempt, job.request_id)
        if urlsplit(job.url).hostname not in _LOOPBACK_HOSTS:
            delivery.error = "refused: the emulator delivers to loopback URLs only"
            return delivery
        try:
            response = self._http.post(job.url, content=job.body, headers=headers)
        except httpx.HTTPError as error:
            delivery.error = f"{type(error).__name__}: {error}"
            return delivery
        delivery.status, delivery.response = response.status_code, response.content
        try:
            delivery.ok = response.status_code == 200 and json.loads(response.content) == WEBHOOK_SUCCESS
        except ValueError:
            delivery.ok = False
        return delivery

    # --- control surface for standalone runs (not Open API: no auth, no faults, not logged) -----

    def _control(self, request: Request, raw: bytes) -> Response:
        parts = request.path.strip("/").split("/")[1:]  # after "_emulator"
        try:
            body = json.loads(raw) if raw.strip() else {}
            public = body.pop("public_token", None) or request.args.get("public_token") or next(iter(self._state.shops))
            if parts == ["state"] and request.method == "GET":
                result: Any = {
                    "reviews": self.reviews(public),
                    "webhooks": self.webhooks(),
                    "rate_limited": dict(self.rate_limited),
                    "deliveries": [
                        {
                            "url": d.url,
                            "topic": d.topic,
                            "attempt": d.attempt,
                            "status": d.status,
                            "ok": d.ok,
                            "error": d.error,
                        }
                        for d in list(self.deliveries)
                    ],
                }
            elif parts == ["reviews"] and request.method == "POST":
                result = self.add_review(public, **body)
            elif len(parts) == 3 and parts[0] == "reviews" and request.method == "POST":
                actions = {
                    "update": lambda: self.update_review(public, parts[1], **body),
                    "hide": lambda: self.hide_review(public, parts[1]),
                    "publish": lambda: self.publish_review(public, parts[1]),
                    "delete": lambda: self.delete_review_in_admin(public, parts[1]),
                }
                if parts[2] not in actions:
                    return Response(b'{"error":"unknown action"}', 404, content_type="application/json")
                result = actions[parts[2]]()
            else:
                return Response(b'{"error":"unknown control route"}', 404, content_type="application/json")
        except (AttributeError, KeyError, TypeError, ValueError, ApiError, StopIteration) as error:
            return Response(json.dumps({"error": str(error)}), 400, content_type="application/json")
        return Response(json.dumps(result), 200, content_type="application/json")


# --- helpers --------------------------------------------------------------------------------------


def _check_method(request: Request, method: str) -> None:
    if request.method != method:
        raise ApiError(12, f"unimplemented: {request.path} takes {method}, not {request.method}", status=405)


def _json_body(raw: bytes) -> Any:
    if not raw.strip():
        raise invalid("the request body is empty; a JSON object is required")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise invalid(f"the request body is not valid JSON ({error})") from None


def _with_query(url: str, params: dict[str, str]) -> str:
    return f"{url}{'&' if urlsplit(url).query else '?'}{urlencode(params)}"


def _fault_answer(fault: _Fault) -> _Answer:
    headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
    if fault.code is not None:
        return _Answer(200, fault.code, headers=headers)
    status = fault.status or 503
    if status >= 500:
        reason = {
            500: "Internal Server Error",
            502: "Bad Gateway",
            503: "Service Temporarily Unavailable",
            504: "Gateway Time-out",
        }.get(status, "Server Error")
        page = (
            f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n<center><h1>{status} "
            f"{reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
        )
        return _Answer(
            status, None, headers=headers, raw=Response(page, status, content_type="text/html; charset=utf-8")
        )
    code = _CODE_FOR_STATUS.get(status, 3)
    return _Answer(status, code, headers=headers)


# --- CLI ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.trustoo", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=9002)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--rate-limit", type=float, default=0.0, metavar="PER_S", help="requests a second per shop (default: none)"
    )
    parser.add_argument("--rate-limit-burst", type=float, default=2.0, metavar="N")
    parser.add_argument("--public-token", default="GfKu22TCaj4gULtrA3/OgA==")
    parser.add_argument("--private-token", default="trustoo-private-current-0123456789")
    parser.add_argument("--client-id", default="reviewbridge-platform")
    parser.add_argument("--client-secret", default="reviewbridge-platform-secret-0123456789")
    parser.add_argument(
        "--webhook-base",
        default=None,
        metavar="URL",
        help="register review/created|updated|deleted at URL/review-created etc. (loopback only)",
    )
    parser.add_argument("--reviews", type=int, default=0, metavar="N", help="seed N reviews")
    parser.add_argument(
        "--retry-delays-s",
        default=None,
        metavar="S,S,...",
        help="webhook redelivery schedule in seconds (default: 0,180,...,1620 as in §1.7)",
    )
    args = parser.parse_args(argv)

    from tests.fakes.serving import serve_wsgi

    emulator = TrustooEmulator(
        {args.public_token: args.private_token},
        latency_s=args.latency_ms / 1000,
        fail_rate=args.fail_rate,
        seed=args.seed,
        rate_limit_per_s=args.rate_limit or None,
        rate_limit_burst=args.rate_limit_burst,
        oauth_clients={args.client_id: args.client_secret},
        retry_delays_s=tuple(float(s) for s in args.retry_delays_s.split(","))
        if args.retry_delays_s
        else DEFAULT_RETRY_DELAYS_S,
    )
    if args.webhook_base:
        for topic in ("review/created", "review/updated", "review/deleted"):
            emulator.add_webhook(args.public_token, topic, f"{args.webhook_base.rstrip('/')}/{topic.replace('/', '-')}")
    for n in range(args.reviews):
        emulator.add_review(
            args.public_token, rating=5 - n % 5, author=f"Seed Author {n + 1}", content=f"Seeded review number {n + 1}."
        )
    try:
        with serve_wsgi(emulator, port=args.port, log_requests=True) as url:
            print(f"Trustoo emulator on {url} (Open API under {PREFIX}); Ctrl-C to stop", flush=True)
            print(f"shop public token:  {args.public_token}")
            print(f"shop private token: {args.private_token}")
            print(f"OAuth client:       {args.client_id} / {args.client_secret}")
            print(
                f"admin actions:      POST {url}/_emulator/reviews, POST {url}/_emulator/reviews/<id>/"
                f"update|hide|publish|delete, GET {url}/_emulator/state"
            )
            print(f"export TRUSTOO_API_URL={url}")
            print(f"export TRUSTOO_PUBLIC_TOKEN='{args.public_token}'")
            print(f"export TRUSTOO_PRIVATE_TOKEN='{args.private_token}'", flush=True)
            threading.Event().wait()
    except KeyboardInterrupt:
        print("stopped", flush=True)
    finally:
        emulator.close()


if __name__ == "__main__":
    main()
