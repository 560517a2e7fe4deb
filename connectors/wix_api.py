"""The Wix REST client: app-instance tokens, Reviews v1, Review Requests v2 and Contacts v4 (docs/platforms/wix.md
§1.4, §1.5, §1.7, §1.8).

Every call goes out through `PlatformClient` (timeouts, retries on transport errors, 429 and 5xx),
authenticated per app instance (site) with a client-credentials token from ``POST /oauth2/token``,
sent as ``Authorization: <token>`` with no "Bearer" (as the Wix SDK sends it). Wix's error body,
``{message, details: {applicationError: {code, description}} | {validationError: {fieldViolations}}}``,
becomes our errors here::

    401 ──────────────── a fresh token, once; still 401 → ConfigError (WIX_APP_ID / WIX_APP_SECRET)
    403 ──────────────── ConfigError: the app lacks a permission the call needs
    404 ──────────────── None from get_review and get_contact (only with a Wix error body); else FixAndReplayError
    428, and the Review Request codes ORDER_NOT_FOUND, ORDER_IS_EMPTY,
      EITHER_ORDER_OR_ITEMS_REQUIRED, INITIATOR_IDENTITY_NOT_SUPPORTED ── FixAndReplayError
    other 4xx ────────── FixAndReplayError (409: RetryableTargetError, as connectors.http decides)
    429, 5xx, timeouts ─ RetryableTargetError (retried a few times here first, never for a create)

Every error carries ``code`` (the applicationError code, or None). Messages hold Wix's own words
and the ``x-wix-request-id``, never the app secret or a token.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from connectors.base import ConfigError, FixAndReplayError, RetryableTargetError, TargetError
from connectors.http import PlatformClient, RateLimiter, RetryPolicy, Token, TokenCache, error_for, json_object

__all__ = ["CREDENTIALS_HINT", "FIX_AND_REPLAY_CODES", "WixApi"]

PLATFORM = "Wix"
CREDENTIALS_HINT = "WIX_APP_ID and WIX_APP_SECRET"
TOKEN_PATH = "/oauth2/token"
TOKEN_TTL_S = 14400.0  # "Tokens always last 4 h"; used when the answer gives no expires_in
TOKEN_REFRESH_MARGIN_S = 600.0  # so a token is used for 3 h 50 min at most
REVIEWS = "/reviews/v1/reviews"
REVIEW_REQUESTS = "/reviews/v2/review-requests"
CONTACTS = "/contacts/v4/contacts"
#: Only what an author's e-mail needs: the contact's primary e-mail and its list of e-mails (§1.8).
CONTACT_FIELDS = ("primaryInfo", "info.emails")
#: Application errors of Create Review Request (§1.5): none of them goes away by retrying.
FIX_AND_REPLAY_CODES = frozenset(
    {
        "ORDER_NOT_FOUND",
        "ORDER_IS_EMPTY",
        "EITHER_ORDER_OR_ITEMS_REQUIRED",
        "INITIATOR_IDENTITY_NOT_SUPPORTED",
    }
)
_PERMISSIONS = "Manage Reviews, Manage Review Requests and Read Orders"
_CONTACT_PERMISSIONS = "Read Contacts"


class WixApi:
    def __init__(
        self,
        base_url: str,
        app_id: str,
        app_secret: str,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        limiter: RateLimiter | None = None,
        retry: RetryPolicy = RetryPolicy(),
    ):
        if not app_id or not app_secret:
            raise ConfigError(f"the Wix API needs {CREDENTIALS_HINT}")
        self._app_id = app_id
        self._app_secret = app_secret
        self._clock = clock
        self._http = PlatformClient(
            PLATFORM,
            base_url.rstrip("/"),
            transport=transport,
            retry=retry,
            sleep=sleep,
            credentials_hint=CREDENTIALS_HINT,
            limiter=limiter,  # per instance (§1.7); token requests are not counted
        )
        self._tokens: dict[str, TokenCache] = {}
        self._tokens_lock = threading.Lock()

    def close(self) -> None:
        self._http.close()

    # --- reviews --------------------------------------------------------------------------------

    def get_review(self, instance: str, review_id: str) -> dict | None:
        """The review, published or not; None when Wix says it is not found."""
        response, document = self._call(
            instance, "GET", f"{REVIEWS}/{_segment(review_id)}", params={"returnPrivateReviews": "true"}, allow=(404,)
        )
        if response.status_code == 404:
            if not _is_wix_error(document):  # a proxy's or a wrong host's 404 says nothing about the review
                raise _error(response, document, "get review")
            return None
        return _entity(response, document, "review", "get review")

    def query_reviews(
        self, instance: str, *, since: datetime | None = None, cursor: str | None = None, limit: int = 100
    ) -> tuple[list[dict], str | None]:
        """One page of the instance's reviews, private ones included, newest first, created at or after
        `since`: (reviews, the cursor of the next page or None). A cursor carries the filter and sort of
        the first page, so a request with one passes neither (Wix's cursor rule)."""
        paging: dict[str, Any] = {"limit": limit}
        query: dict[str, Any] = {"cursorPaging": paging}
        if cursor:
            paging["cursor"] = cursor
        else:
            query["sort"] = [{"fieldName": "createdDate", "order": "DESC"}]
            if since is not None:
                query["filter"] = {"createdDate": {"$gte": _iso(since)}}
        _, document = self._call(
            instance, "POST", f"{REVIEWS}/query", json={"query": query, "returnPrivateReviews": True}
        )
        document = json_object(document)
        items = [item for item in document.get("reviews") or [] if isinstance(item, dict)]
        return items, _next_cursor(document.get("metadata"))

    # --- review requests --------------------------------------------------------------------------

    def create_review_request(self, instance: str, body: Mapping[str, Any]) -> dict:
        """Create a review request (`body` as `review_request_body` builds it); return it as Wix answers.

        Never resent blindly: Wix documents no idempotency, so a second create makes a second email.
        A timeout or 5xx raises RetryableTargetError with `outcome_unknown=True`; look with
        `query_review_requests(order_id=…)` before creating again."""
        response, document = self._call(instance, "POST", REVIEW_REQUESTS, json=dict(body), retry=False)
        request = document.get("reviewRequest") if isinstance(document, dict) else None
        if not isinstance(request, dict):
            raise RetryableTargetError(
                f"Wix answered create review request without the request ({_detail(response, document)})",
                status=response.status_code,
                outcome_unknown=True,
            )
        return request

    def query_review_requests(self, instance: str, *, order_id: str) -> list[dict]:
        """Every review request for the order, whatever its status, oldest first."""
        requests: list[dict] = []
        query: dict[str, Any] = {"filter": {"order.id": {"$eq": order_id}}, "cursorPaging": {"limit": 100}}
        while True:
            _, document = self._call(instance, "POST", f"{REVIEW_REQUESTS}/query", json={"query": query})
            document = json_object(document)
            requests += [item for item in document.get("reviewRequests") or [] if isinstance(item, dict)]
            cursor = _next_cursor(document.get("pagingMetadata") or document.get("metadata"))
            if not cursor:
                return requests
            query = {"cursorPaging": {"limit": 100, "cursor": cursor}}

    # --- contacts ---------------------------------------------------------------------------------

    def get_contact(self, instance: str, contact_id: str) -> dict | None:
        """The contact (its e-mails only), or None when Wix says it is not found: deleted, or never
        on this site. A merged-away contact id still answers, with the contact it became (§1.8)."""
        response, document = self._call(
            instance,
            "GET",
            f"{CONTACTS}/{_segment(contact_id)}",
            params={"fields": list(CONTACT_FIELDS)},
            allow=(404,),
            permissions=_CONTACT_PERMISSIONS,
        )
        if response.status_code == 404:
            if not _is_wix_error(document):  # a proxy's or a wrong host's 404 says nothing about the contact
                raise _error(response, document, "get contact")
            return None
        return _entity(response, document, "contact", "get contact")

    # --- tokens -----------------------------------------------------------------------------------

    def _token_cache(self, instance: str) -> TokenCache:
        with self._tokens_lock:
            cache = self._tokens.get(instance)
            if cache is None:
                cache = self._tokens[instance] = TokenCache(
                    lambda: self._fetch_token(instance), clock=self._clock, refresh_margin_s=TOKEN_REFRESH_MARGIN_S
                )
            return cache

    def _fetch_token(self, instance: str) -> Token:
        body = {
            "grant_type": "client_credentials",
            "client_id": self._app_id,
            "client_secret": self._app_secret,
            "instance_id": instance,
        }
        try:
            response = self._http.request("POST", TOKEN_PATH, json=body)
        except ConfigError as exc:  # 401/403, read by PlatformClient before us
            raise ConfigError(
                f"Wix refused the app credentials for instance {instance} (HTTP {exc.status}); "
                f"check {CREDENTIALS_HINT}",
                status=exc.status,
            ) from None
        document = _json(response)
        if not response.is_success:
            code = _app_code(document)
            detail = _detail(response, document, secrets=(self._app_secret,))
            if code == "APP_NOT_INSTALLED":  # removed from the site: reinstalling it is the fix
                raise _coded(
                    FixAndReplayError(
                        f"the Wix app is not installed on instance {instance} ({detail})", status=response.status_code
                    ),
                    code,
                )
            raise _coded(
                ConfigError(
                    f"Wix gave no token for instance {instance} ({detail}); check {CREDENTIALS_HINT} and WIX_API_URL",
                    status=response.status_code,
                ),
                code,
            )
        access = document.get("access_token") if isinstance(document, dict) else None
        if not isinstance(access, str) or not access:
            raise ConfigError(
                f"Wix answered {TOKEN_PATH} without an access_token (HTTP {response.status_code}); check WIX_API_URL"
            )
        try:
            lifetime = float(document["expires_in"])
        except (KeyError, TypeError, ValueError):
            lifetime = TOKEN_TTL_S
        return Token(access, self._clock() + lifetime)

    # --- one call ---------------------------------------------------------------------------------

    def _call(
        self,
        instance: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        allow: Collection[int] = (),
        retry: bool = True,
        permissions: str = _PERMISSIONS,
    ) -> tuple[httpx.Response, Any]:
        """Send with the instance's token: (response, parsed JSON). After a 401, one fresh token and
        one more try (safe for creates too: a refused call was not applied). A 403 names `permissions`,
        the app permissions the call needs."""
        if not instance:
            raise FixAndReplayError("no Wix instance id to call the API for")
        cache = self._token_cache(instance)
        refreshed = False
        while True:
            token = cache.get()
            try:
                response = self._http.request(
                    method,
                    path,
                    json=json,
                    params=params,
                    headers={"Authorization": token},
                    retry=retry,
                    account=instance,
                )
            except ConfigError as exc:
                if exc.status == 401 and not refreshed:
                    cache.invalidate(token)
                    refreshed = True
                    continue
                if exc.status == 403:
                    raise ConfigError(
                        f"Wix refused {method} {path} for instance {instance} (HTTP 403); the app "
                        f"needs the permissions {permissions}",
                        status=403,
                    ) from None
                raise ConfigError(
                    f"Wix refused a fresh token for instance {instance} on {method} {path} "
                    f"(HTTP {exc.status}); check {CREDENTIALS_HINT}",
                    status=exc.status,
                ) from None
            document = _json(response)
            if response.is_success or response.status_code in allow:
                return response, document
            raise _error(response, document, f"{method} {path}")


def _error(response: httpx.Response, document: Any, what: str) -> TargetError:
    code = _app_code(document)
    detail = _detail(response, document)
    if code in FIX_AND_REPLAY_CODES or response.status_code == 428:  # failed precondition: not retried
        error: TargetError = FixAndReplayError(f"Wix {what} failed: {detail}", status=response.status_code)
    else:
        error = error_for(response, PLATFORM, f"{what}: {detail}")
    return _coded(error, code)


def _coded(error: TargetError, code: str | None) -> TargetError:
    error.code = code  # the applicationError code, for whoever needs to tell the cases apart
    return error


def _app_code(document: Any) -> str | None:
    details = document.get("details") if isinstance(document, dict) else None
    application = details.get("applicationError") if isinstance(details, dict) else None
    code = application.get("code") if isinstance(application, dict) else None
    return code if isinstance(code, str) and code else None


def _is_wix_error(document: Any) -> bool:
    return isinstance(document, dict) and ("details" in document or "message" in document)


def _detail(response: httpx.Response, document: Any, secrets: tuple[str, ...] = ()) -> str:
    """Wix's own words: the application error, the field violations or the message; then the status
    and the request id."""
    parts: list[str] = []
    if isinstance(document, dict):
        details = json_object(document.get("details"))
        application = json_object(details.get("applicationError"))
        if application.get("code"):
            parts.append(f"{application['code']}: {application.get('description') or document.get('message') or '-'}")
        validation = json_object(details.get("validationError"))
        for violation in (validation.get("fieldViolations") or [])[:5]:
            if isinstance(violation, dict):
                parts.append(
                    f"{violation.get('field') or '-'}: {violation.get('description') or '-'} "
                    f"({violation.get('violatedRule') or violation.get('ruleName') or '-'})"
                )
        if not parts and document.get("message"):
            parts.append(str(document["message"]))
    text = "; ".join(parts) or "no error details"
    text += f" (HTTP {response.status_code}, x-wix-request-id {response.headers.get('x-wix-request-id') or '-'})"
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _entity(response: httpx.Response, document: Any, key: str, what: str) -> dict:
    entity = document.get(key) if isinstance(document, dict) else None
    if not isinstance(entity, dict):
        raise ConfigError(
            f"Wix answered {what} without a {key} ({_detail(response, document)}); check WIX_API_URL",
            status=response.status_code,
        )
    return entity


def _next_cursor(metadata: Any) -> str | None:
    cursors = metadata.get("cursors") if isinstance(metadata, dict) else None
    cursor = cursors.get("next") if isinstance(cursors, dict) else None
    return cursor if isinstance(cursor, str) and cursor else None


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:  # HTML error pages, empty bodies, bad UTF-8
        return None


def _segment(value: str) -> str:
    return quote(str(value), safe="")


def _iso(moment: datetime) -> str:
    """Wix's form: UTC with milliseconds and `Z`; a naive datetime is taken as UTC."""
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
