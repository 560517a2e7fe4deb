"""The Trustoo Open API client: signed calls, paging, the shop's webhooks, OAuth2 (docs/platforms/trustoo.md
§1.2-§1.8).

Every call goes out through `PlatformClient` (timeouts, retries on transport errors, 429 and 5xx);
what Trustoo's envelope answers mean is read in connectors/trustoo_envelope.py. After a code 16
(unauthenticated) with OAuth, the access token is refreshed once and the call resent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import httpx

from connectors.base import ConfigError, FixAndReplayError, RetryableTargetError, TargetError
from connectors.http import PlatformClient, RateLimiter, RetryPolicy, json_object
from connectors.trustoo_envelope import PLATFORM, describe, interpret, maybe_applied, read_json
from connectors.trustoo_signing import SCHEMES, json_body, query_params, sign

__all__ = ["Credentials", "OAuthTokens", "Page", "ShopCredentials", "TrustooApi"]

PREFIX = "/api/v1/openapi/"
HMAC_HINT = "TRUSTOO_PUBLIC_TOKEN and TRUSTOO_PRIVATE_TOKEN (and TRUSTOO_SIGN_SCHEME)"
OAUTH_HINT = "TRUSTOO_CLIENT_ID and TRUSTOO_CLIENT_SECRET (or authorize the shop again)"


@dataclass(frozen=True)
class ShopCredentials:
    """How to authenticate for one shop: HMAC (private token) or OAuth (access token, wins)."""

    public_token: str
    private_token: str | None = field(default=None, repr=False)
    access_token: str | None = field(default=None, repr=False)


class Credentials(Protocol):
    def for_shop(self, shop: str) -> ShopCredentials:
        """The credentials for the shop named by its public token."""

    def refresh(self, shop: str) -> ShopCredentials | None:
        """OAuth: credentials with a fresh access token after a code 16; None when not OAuth."""


@dataclass(frozen=True)
class OAuthTokens:
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_at: float | None  # clock seconds; None when Trustoo gave no expires_in (refresh on code 16)


@dataclass(frozen=True)
class Page:
    items: list[dict]
    page: int
    page_size: int
    total_page: int
    count: int


class TrustooApi:
    def __init__(
        self,
        base_url: str,
        credentials: Credentials,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        limiter: RateLimiter | None = None,
        scheme: str = "hmac_sorted_pipe_body",
        retry: RetryPolicy = RetryPolicy(),
        source_name: str = "ReviewBridge",
    ):
        if scheme not in SCHEMES:
            raise ValueError(f"unknown Trustoo signing scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")
        self._credentials = credentials
        self._clock = clock
        self._scheme = scheme
        self._source_name = source_name
        self._http = PlatformClient(
            PLATFORM,
            base_url.rstrip("/"),
            transport=transport,
            retry=retry,
            sleep=sleep,
            credentials_hint=f"{HMAC_HINT}, or {OAUTH_HINT}",
            limiter=limiter,  # per shop (§2 item 7)
        )

    def close(self) -> None:
        self._http.close()

    # --- reviews --------------------------------------------------------------------------------

    def get_review(self, shop: str, review_id: str | int) -> dict | None:
        """The review as Trustoo holds it; None when Trustoo says it is not found (code 5)."""
        code, data, _ = self._call(shop, "GET", "get_review", params={"id": review_id}, allow=(5,))
        return None if code == 5 else data

    def get_reviews(
        self, shop: str, *, page: int = 1, page_size: int = 100, sort_by: str = "created-descending", **filters: Any
    ) -> Page:
        """One page of the shop's reviews; filters as in §1.5 (product_ids, is_store_review, keyword, ...)."""
        params = {**filters, "page": page, "page_size": page_size, "sort_by": sort_by}
        data = self._call(shop, "GET", "get_reviews", params=params)[1]
        data = json_object(data)
        paging = json_object(data.get("page"))
        items = [item for item in data.get("list") or [] if isinstance(item, dict)]
        return Page(
            items=items,
            page=_int(paging.get("page"), page),
            page_size=_int(paging.get("page_size"), page_size),
            total_page=_int(paging.get("total_page"), 0),
            count=_int(paging.get("count"), len(items)),
        )

    def iter_reviews(
        self, shop: str, *, since: datetime | None = None, overlap_s: float = 3600, page_size: int = 100, **filters: Any
    ) -> Iterator[dict]:
        """The shop's reviews newest first, one page in memory, back to `since` minus `overlap_s`."""
        for _, items in self.iter_pages(shop, since=since, overlap_s=overlap_s, page_size=page_size, **filters):
            yield from items

    def iter_pages(
        self,
        shop: str,
        *,
        since: datetime | None = None,
        overlap_s: float = 3600,
        page_size: int = 100,
        start_page: int = 1,
        **filters: Any,
    ) -> Iterator[tuple[Page, list[dict]]]:
        """Page by page, newest first, from `start_page` (a resumed resync) back to `since` minus `overlap_s`.

        Trustoo has no updated-since filter and pages by number (§1.5, §2 item 6), so this is the
        backstop sweep: it stops after the first page whose oldest review is older than the cutoff.
        A review written meanwhile shifts the pages and shows up twice; the caller dedupes. Items
        whose `commented_at` cannot be read are kept: we cannot tell they are too old.
        """
        cutoff = None if since is None else _utc(since) - timedelta(seconds=overlap_s)
        page_number = start_page
        while True:
            page = self.get_reviews(
                shop, page=page_number, page_size=page_size, sort_by="created-descending", **filters
            )
            times = [_commented_at(item) for item in page.items]
            yield (
                page,
                [
                    item
                    for item, at in zip(page.items, times, strict=True)
                    if cutoff is None or at is None or at >= cutoff
                ],
            )
            known = [at for at in times if at is not None]
            if cutoff is not None and known and min(known) < cutoff:
                return
            if not page.items or page_number >= page.total_page:
                return
            page_number += 1

    def create_review(self, shop: str, fields: Mapping[str, Any]) -> str:
        """Create the review; return Trustoo's id as a string.

        Never resent blindly: a create that may have reached Trustoo (timeout, connection lost
        after sending, 5xx, code 4 or 13) raises RetryableTargetError with `outcome_unknown=True`,
        so the caller looks before writing again. Code 6 raises FixAndReplayError("already exists").
        """
        draft = {"source": self._source_name, **{k: v for k, v in fields.items() if v is not None}}
        try:
            _, data, envelope = self._call(shop, "POST", "create_review", fields=draft, retry=False)
        except RetryableTargetError as exc:
            exc.outcome_unknown = maybe_applied(exc)
            raise
        except TargetError as exc:
            exc.outcome_unknown = False
            raise
        review_id = _first_id(data) or _first_id(envelope)
        if review_id is None:
            error = RetryableTargetError(
                f"Trustoo created a review but answered no id (request_id {envelope.get('request_id') or '-'})"
            )
            error.outcome_unknown = True  # created, but we cannot tell which one it is
            raise error
        return review_id

    def delete_review(self, shop: str, review_id: str | int) -> None:
        """Delete the review; one already gone (code 5) is not an error."""
        self._call(shop, "POST", "delete_review", fields={"id": _id_value(review_id)}, allow=(5,))

    def get_rating(self, shop: str, **selector: Any) -> dict:
        """Rating summary for one selector: product_id, product_handle, is_store_rating, ... (§1.4)."""
        data = self._call(shop, "GET", "get_rating", params=selector)[1]
        return json_object(data)

    # --- shop webhooks --------------------------------------------------------------------------

    def create_shop_webhook(self, shop: str, topic: str, url: str) -> dict:
        data = self._call(shop, "POST", "create_shop_webhook", fields={"topic": topic, "url": url})[1]
        return json_object(data)

    def update_shop_webhook(self, shop: str, webhook_id: str | int, topic: str, url: str) -> dict:
        fields = {"id": str(webhook_id), "topic": topic, "url": url}
        return json_object(self._call(shop, "POST", "update_shop_webhook", fields=fields)[1])

    def get_shop_webhooks(self, shop: str) -> list[dict]:
        data = self._call(shop, "GET", "get_shop_webhooks")[1]
        if isinstance(data, dict):
            data = data.get("list")
        return [hook for hook in data or [] if isinstance(hook, dict)]

    def delete_shop_webhook(self, shop: str, webhook_id: str | int) -> None:
        """Delete the webhook; one already gone (code 5) is not an error."""
        self._call(shop, "POST", "delete_shop_webhook", fields={"id": str(webhook_id)}, allow=(5,))

    # --- OAuth2 platform mode (§1.8): unsigned, JSON bodies, the usual envelope -------------------

    def authorize_url(
        self, client_id: str, redirect_uri: str, state: str, scope: str = "read_reviews write_reviews"
    ) -> str:
        """Where to send the merchant to approve ReviewBridge."""
        params = query_params({"client_id": client_id, "redirect_uri": redirect_uri, "state": state, "scope": scope})
        response = self._http.request("GET", PREFIX + "get_oauth_authorize_url", params=params)
        document = read_json(response)
        data = interpret(response, document, "get_oauth_authorize_url", hint=OAUTH_HINT)[1]
        url = data.get("authorize_url") if isinstance(data, dict) else None
        if not url:
            raise FixAndReplayError(f"Trustoo answered no authorize_url ({describe(response, document)})")
        return str(url)

    def exchange_code(self, client_id: str, client_secret: str, code: str, redirect_uri: str) -> OAuthTokens:
        """The merchant's authorization code for an access and refresh token (single use: not retried)."""
        return self._token(
            client_secret,
            {
                "grant_type": "authorization_code",
                "client_id": client_id,
                "client_secret": client_secret,
                "code": code,
                "redirect_uri": redirect_uri,
            },
        )

    def refresh_tokens(self, client_id: str, client_secret: str, refresh_token: str) -> OAuthTokens:
        """A fresh token pair. Trustoo rotates refresh tokens, so a lost answer is not resent."""
        try:
            return self._token(
                client_secret,
                {
                    "grant_type": "refresh_token",
                    "client_id": client_id,
                    "client_secret": client_secret,
                    "refresh_token": refresh_token,
                },
                secrets=(refresh_token,),
            )
        except FixAndReplayError as exc:  # invalid_grant: revoked, rotated or unknown
            raise ConfigError(
                f"Trustoo refused the refresh token ({exc}); check {OAUTH_HINT}", status=exc.status
            ) from None

    def _token(self, client_secret: str, body: dict[str, str], secrets: tuple[str, ...] = ()) -> OAuthTokens:
        response = self._http.request(
            "POST",
            PREFIX + "oauth/token",
            content=json_body(body),
            headers={"Content-Type": "application/json"},
            retry=False,
        )
        secrets = (client_secret, body.get("code", ""), *secrets)
        document = read_json(response)
        if response.is_success and isinstance(document, dict) and "code" not in document:
            data: Any = document  # a plain OAuth answer, without the envelope (§2 item 11)
        else:
            data = interpret(response, document, "oauth/token", hint=OAUTH_HINT, secrets=secrets)[1]
        access = data.get("access_token") if isinstance(data, dict) else None
        if not access:
            raise FixAndReplayError(f"Trustoo answered no access_token ({describe(response, document, secrets)})")
        try:
            expires_at: float | None = self._clock() + float(data["expires_in"])
        except (KeyError, TypeError, ValueError):
            expires_at = None  # no lifetime given: refresh when Trustoo answers code 16
        return OAuthTokens(
            access_token=str(access), refresh_token=data.get("refresh_token") or None, expires_at=expires_at
        )

    # --- one signed call --------------------------------------------------------------------------

    def _call(
        self,
        shop: str,
        method: str,
        verb: str,
        *,
        params: Mapping[str, Any] | None = None,
        fields: Mapping[str, Any] | None = None,
        allow: Collection[int] = (),
        retry: bool = True,
    ) -> tuple[int, Any, dict]:
        """Sign, send, read the envelope: (code, data, envelope). After a code 16 (or HTTP 401) with
        OAuth, ask the credentials for a fresh access token once and resend."""
        query = query_params(params or {})  # signed and sent: the same dict
        content = json_body(fields) if fields is not None else b""  # signed and sent: the same bytes
        credentials = self._credentials.for_shop(shop)
        refreshed = False
        while True:
            headers, secrets = self._auth_headers(credentials, query, content)
            oauth = bool(credentials.access_token)
            hint = OAUTH_HINT if oauth else HMAC_HINT
            try:
                response = self._http.request(
                    method,
                    PREFIX + verb,
                    params=query or None,
                    content=content or None,
                    headers=headers,
                    retry=retry,
                    account=shop,
                )
            except ConfigError as exc:  # HTTP 401/403, read by PlatformClient before us
                if exc.status == 401 and oauth and not refreshed:
                    credentials, refreshed = self._refreshed(shop, hint, f"HTTP {exc.status}"), True
                    continue
                raise ConfigError(
                    f"Trustoo refused our credentials for shop {shop} on {verb} (HTTP {exc.status}); check {hint}",
                    status=exc.status,
                ) from None
            document = read_json(response)
            if oauth and not refreshed and isinstance(document, dict) and document.get("code") == 16:
                credentials = self._refreshed(shop, hint, describe(response, document, secrets))
                refreshed = True
                continue
            code, data = interpret(response, document, verb, hint=hint, allow=allow, secrets=secrets, shop=shop)
            return code, data, json_object(document)

    def _auth_headers(
        self, credentials: ShopCredentials, query: dict[str, str], content: bytes
    ) -> tuple[dict[str, str], tuple[str, ...]]:
        headers = {"Content-Type": "application/json"} if content else {}
        if credentials.access_token:  # §1.1: a non-empty Authorization header means OAuth
            return {**headers, "Authorization": f"Bearer {credentials.access_token}"}, (credentials.access_token,)
        if not credentials.public_token or not credentials.private_token:
            raise ConfigError(
                f"no Trustoo credentials for shop {credentials.public_token or '?'}; set {HMAC_HINT}, or {OAUTH_HINT}"
            )
        timestamp = int(self._clock())
        signature = sign(credentials.private_token, query, timestamp, content, scheme=self._scheme)
        return (
            {**headers, "Public-Token": credentials.public_token, "Sign": signature, "Timestamp": str(timestamp)},
            (credentials.private_token, signature),
        )

    def _refreshed(self, shop: str, hint: str, context: str) -> ShopCredentials:
        credentials = self._credentials.refresh(shop)
        if credentials is None or not credentials.access_token:
            raise ConfigError(
                f"Trustoo refused the access token for shop {shop} ({context}) and no fresh one "
                f"could be had; check {hint}"
            )
        return credentials


def _first_id(data: Any) -> str | None:
    value = data.get("id") if isinstance(data, dict) else None
    if isinstance(value, bool) or value in (None, ""):
        return None
    return str(value) if isinstance(value, (str, int)) else None


def _id_value(review_id: str | int) -> str | int:
    """Review ids go as JSON numbers when they are digits, as the public clients send them."""
    text = str(review_id).strip()
    return int(text) if text.isascii() and text.isdigit() else text


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _commented_at(item: Mapping[str, Any]) -> datetime | None:
    """`YYYY-MM-DD HH:MM:SS`, taken as UTC like connectors.trustoo does; ISO 8601 also read."""
    value = item.get("commented_at") or item.get("created_at")
    if not isinstance(value, str):
        return None
    try:
        return _utc(datetime.fromisoformat(value.strip().replace("Z", "+00:00")))
    except ValueError:
        return None
