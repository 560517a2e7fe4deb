"""commercetools' HTTP API for one project: its configuration, the client-credentials token every
call carries, and the platform's error bodies read as our errors' text (docs/platforms/commercetools.md §1).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx

from connectors.base import ConfigError
from connectors.http import PlatformClient, RateLimiter, RetryPolicy, Token, TokenCache, error_for

__all__ = [
    "CommercetoolsApi",
    "CommercetoolsConfig",
    "duplicate_fields",
    "error_codes",
    "error_text",
    "references_product",
]


@dataclass(frozen=True)
class CommercetoolsConfig:
    project_key: str
    client_id: str
    client_secret: str = field(repr=False)
    api_url: str = "https://api.europe-west1.gcp.commercetools.com"
    auth_url: str = "https://auth.europe-west1.gcp.commercetools.com"
    scopes: tuple[str, ...] = ()
    rating_scale: int = 5
    on_source_delete: str = "delete"  # delete | hide
    product_key_template: str = "{source_product_id}"
    store_review_channel: str | None = None  # channel key that reviews of the whole store attach to

    @property
    def token_url(self) -> str:
        # Like the SDKs: an auth URL without a path means the standard token path.
        return (
            self.auth_url
            if urlsplit(self.auth_url).path not in ("", "/")
            else self.auth_url.rstrip("/") + "/oauth/token"
        )


class CommercetoolsApi:
    """The project's API client; the token is fetched on first use and renewed before it expires."""

    def __init__(
        self,
        config: CommercetoolsConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        retry: RetryPolicy = RetryPolicy(),
        pool_size: int = 20,
        limiter: RateLimiter | None = None,
    ):
        self._config = config
        self._clock = clock
        hint = "CTP_CLIENT_ID, CTP_CLIENT_SECRET and CTP_SCOPES"
        token_url = urlsplit(config.token_url)
        self._token_path = token_url.path
        self._auth = PlatformClient(
            "commercetools auth",
            f"{token_url.scheme}://{token_url.netloc}",
            credentials_hint=hint,
            transport=transport,
            sleep=sleep,
            retry=retry,
            pool_size=2,
        )
        self._http = PlatformClient(
            "commercetools",
            f"{config.api_url.rstrip('/')}/{config.project_key}",
            token=TokenCache(self._fetch_token, clock=clock),
            credentials_hint=hint + " (and CTP_PROJECT_KEY)",
            transport=transport,
            sleep=sleep,
            retry=retry,
            pool_size=pool_size,
            limiter=limiter,  # per project: no limit is published (docs/platforms/commercetools.md §1.10)
        )

    def close(self) -> None:
        self._http.close()
        self._auth.close()

    def request(self, method: str, path: str, **options: Any) -> httpx.Response:
        """A call under the project's path (PlatformClient.request: retries, the token, our errors,
        the project's rate limit)."""
        return self._http.request(method, path, account=self._config.project_key, **options)

    def get_by_key(self, kind: str, key: str) -> dict[str, Any] | None:
        """A review, type, state or product by key; None when there is none."""
        response = self.request("GET", f"/{kind}/key={quote(key, safe='')}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise error_for(response, "commercetools", error_text(response))
        return response.json()

    def _fetch_token(self) -> Token:
        credentials = base64.b64encode(f"{self._config.client_id}:{self._config.client_secret}".encode()).decode()
        form = {"grant_type": "client_credentials"}
        if self._config.scopes:
            form["scope"] = " ".join(self._config.scopes)
        response = self._auth.request(
            "POST",
            self._token_path,
            content=urlencode(form).encode(),
            headers={"Authorization": f"Basic {credentials}", "Content-Type": "application/x-www-form-urlencoded"},
        )
        if response.status_code != 200:
            raise ConfigError(
                f"commercetools refused a token (HTTP {response.status_code}, "
                f"{error_text(response)}); check CTP_CLIENT_ID, CTP_CLIENT_SECRET, CTP_SCOPES "
                f"and CTP_AUTH_URL",
                status=response.status_code,
            )
        body = response.json()
        return Token(body["access_token"], self._clock() + float(body.get("expires_in", 3600)))


def _errors(response: httpx.Response) -> list[dict[str, Any]]:
    try:
        body = response.json()
    except ValueError:
        return []
    errors = body.get("errors") if isinstance(body, dict) else None
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


def error_codes(response: httpx.Response) -> set[str]:
    return {str(error.get("code")) for error in _errors(response)}


def duplicate_fields(response: httpx.Response) -> set[str]:
    return {
        str(e.get("field"))
        for e in _errors(response)
        if e.get("code") in ("DuplicateField", "DuplicateFieldWithConflictingResource")
    }


def references_product(response: httpx.Response) -> bool:
    return any(e.get("typeId") == "product" for e in _errors(response))


def error_text(response: httpx.Response) -> str:
    """The platform's own words: error codes and messages, never our request."""
    errors = _errors(response)
    if not errors:
        return response.reason_phrase or "no error body"
    return "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors[:3])
