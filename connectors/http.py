"""The one way out to a platform: an httpx client with timeouts, bounded retries and our errors.

    PlatformClient.request()
      ├─ transport error / timeout ─┐
      ├─ 429, 5xx ──────────────────┼─ retry here (backoff, full jitter, Retry-After), a few times
      │                             └─ then RetryableTargetError (the queue retries later)
      ├─ 401 on an API call ──────── refresh the token once, try again; still 401 → ConfigError
      ├─ 403 ─────────────────────── ConfigError naming the variables to check
      └─ anything else ───────────── returned: the connector reads 2xx, 404, 409 and 400 bodies itself

Retries here are short (seconds): a longer Retry-After is handed to the queue, which waits
without holding a worker. `sleep` and `rng` are injectable so tests never wait.

With a `RateLimiter`, every attempt of a call made for an account first waits for that account's
turn, and a 429 pauses the account in the limiter rather than only in this thread: the limiter
the app gives (app/core/rate_limits.py) is shared by every process, so they all hold back.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import httpx

from connectors.base import ConfigError, FixAndReplayError, RetryableTargetError, TargetError

__all__ = [
    "USER_AGENT",
    "PlatformClient",
    "RateLimiter",
    "RetryPolicy",
    "Token",
    "TokenCache",
    "backoff_delay",
    "error_for",
    "json_object",
    "retry_after_seconds",
]


def _version() -> str:
    try:
        return importlib.metadata.version("reviewbridge")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "0+unknown"


#: Platforms see which ReviewBridge calls them: the installed version, as `reviewbridge --version` says.
USER_AGENT = f"ReviewBridge/{_version()}"

DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=20.0, write=20.0, pool=10.0)
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3  # tries in all, the first included
    base_s: float = 0.25
    max_inline_wait_s: float = 10.0  # longest wait here; a longer Retry-After goes back to the queue


@dataclass(frozen=True)
class Token:
    value: str
    expires_at: float  # time.time() seconds


class TokenCache:
    """One access token shared by all threads, fetched on first use and before it expires."""

    def __init__(
        self, fetch: Callable[[], Token], *, clock: Callable[[], float] = time.time, refresh_margin_s: float = 300.0
    ):
        self._fetch = fetch
        self._clock = clock
        self._margin = refresh_margin_s
        self._token: Token | None = None
        self._lock = threading.Lock()

    def get(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._token.expires_at - self._margin:
                self._token = self._fetch()
            return self._token.value

    def invalidate(self, value: str) -> None:
        """Forget the token if it is still the one that was refused (another thread may have renewed it)."""
        with self._lock:
            if self._token is not None and self._token.value == value:
                self._token = None


def backoff_delay(
    attempt: int, *, base_s: float, cap_s: float, retry_after_s: float | None = None, rng: random.Random | None = None
) -> float:
    """Exponential backoff with full jitter, never sooner than the platform's Retry-After.

    Attempt 1 waits up to base_s, attempt 2 up to 2xbase_s, … each ceiling capped at cap_s.
    Used for quick retries here and for the queue's slow ones.
    """
    ceiling = min(cap_s, base_s * 2 ** max(attempt - 1, 0))
    delay = (rng or random).uniform(0, ceiling)
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, cap_s))
    return delay


def error_for(response: httpx.Response, platform: str, detail: str) -> TargetError:
    """The error a connector raises for an answer it did not expect; `detail` is the platform's own words."""
    status = response.status_code
    message = f"{platform} answered HTTP {status}: {detail}"
    if status in _RETRY_STATUSES or status == 409:
        return RetryableTargetError(message, status=status, retry_after=retry_after_seconds(response))
    if status in (401, 403):
        return ConfigError(message, status=status)
    return FixAndReplayError(message, status=status)


class RateLimiter(Protocol):
    """How many requests an account (a shop, a site, a project) may send: one bucket per account."""

    def acquire(self, account: str) -> None:
        """Return when the account may send one request, having slept until then; raise
        RateLimited when that turn is further off than a caller should wait."""

    def pause(self, account: str, seconds: float) -> None:
        """The platform asked this account to slow down: nothing is sent for it for `seconds`."""


def json_object(value: Any) -> dict:
    """`value` when a platform's JSON put an object there, else an empty one: fields are read with
    `.get`, whatever shape the platform answered."""
    return value if isinstance(value, dict) else {}


def retry_after_seconds(response: httpx.Response, *, now: Callable[[], float] = time.time) -> float | None:
    """Retry-After as seconds, whether the platform sent seconds or an HTTP date."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now())
    except (TypeError, ValueError):
        return None


class PlatformClient:
    """An httpx.Client for one platform: base URL, four-part timeout, pooling, retries, auth."""

    def __init__(
        self,
        platform: str,
        base_url: str,
        *,
        token: TokenCache | None = None,
        credentials_hint: str = "",
        transport: httpx.BaseTransport | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        pool_size: int = 20,
        limiter: RateLimiter | None = None,
    ):
        self.platform = platform
        self._limiter = limiter
        self._token = token
        self._hint = credentials_hint
        self._retry = retry
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.http = httpx.Client(
            base_url=base_url,
            timeout=timeout,
            transport=transport,
            limits=httpx.Limits(max_connections=pool_size, max_keepalive_connections=pool_size),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        )

    def close(self) -> None:
        self.http.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        retry: bool = True,
        account: str | None = None,
    ) -> httpx.Response:
        """Send with retries; `retry=False` for calls that must not be repeated blindly. A call made
        for an `account` counts against that account's rate limit, each attempt once."""
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            if self._limiter is not None and account is not None:
                self._limiter.acquire(account)
            token = self._token.get() if self._token else None
            request_headers = dict(headers or {})
            if token:
                request_headers["Authorization"] = f"Bearer {token}"
            response = None
            with self._translate_errors(method, url, last=not retry or attempt >= self._retry.attempts):
                response = self.http.request(
                    method, url, json=json, content=content, params=params, headers=request_headers
                )
            if response is None:  # a transport error worth another try
                self._sleep(self._delay(attempt, None))
                continue
            if response.status_code not in _RETRY_STATUSES and response.status_code not in (401, 403):
                return response
            if response.status_code == 401 and self._token is not None and token and not refreshed:
                self._token.invalidate(token)
                refreshed = True
                attempt -= 1  # a token refresh is not a failed attempt
                continue
            if response.status_code in (401, 403):
                raise ConfigError(
                    f"{self.platform} refused our credentials (HTTP {response.status_code}); check {self._hint}",
                    status=response.status_code,
                )
            wait = retry_after_seconds(response)
            throttled = response.status_code == 429
            if not retry or attempt >= self._retry.attempts or (wait or 0) > self._retry.max_inline_wait_s:
                if throttled and wait:
                    self._pause(account, wait)
                raise RetryableTargetError(
                    f"{self.platform} answered HTTP {response.status_code} to {method} {_path(url)}",
                    status=response.status_code,
                    retry_after=wait,
                    outcome_unknown=response.status_code != 429,
                )
            delay = self._delay(attempt, wait)
            if throttled and self._pause(account, delay):
                continue  # the next attempt's acquire sleeps the pause out, as every other caller's does
            self._sleep(delay)

    def _pause(self, account: str | None, seconds: float) -> bool:
        """Pause the account for every caller of the limiter; False when this call has none."""
        if self._limiter is None or account is None:
            return False
        self._limiter.pause(account, seconds)
        return True

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        return backoff_delay(
            attempt,
            base_s=self._retry.base_s,
            cap_s=self._retry.max_inline_wait_s,
            retry_after_s=retry_after,
            rng=self._rng,
        )

    @contextlib.contextmanager
    def _translate_errors(self, method: str, url: str, *, last: bool) -> Iterator[None]:
        """httpx's exceptions become ours: retried here unless `last`, then RetryableTargetError."""
        try:
            yield
        except httpx.TimeoutException as exc:
            if last:
                raise RetryableTargetError(
                    f"{self.platform} timed out on {method} {_path(url)} ({type(exc).__name__})",
                    outcome_unknown=_maybe_sent(exc),
                ) from None
        except httpx.TransportError as exc:
            if last:
                raise RetryableTargetError(
                    f"{self.platform} unreachable on {method} {_path(url)} ({type(exc).__name__})",
                    outcome_unknown=_maybe_sent(exc),
                ) from None


def _maybe_sent(exc: httpx.TransportError) -> bool:
    """False only when the request surely never left: no connection was ever made."""
    return not isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))


def _path(url: str) -> str:
    """The path only: query strings may carry tokens, and never reach a message."""
    return url.split("?", 1)[0]
