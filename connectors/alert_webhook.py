"""The alert webhook: one JSON message POSTed to a Slack-compatible incoming-webhook URL.

The URL is a secret (a Slack webhook URL carries its token), so it never reaches a message, an
error or a log line: errors name the webhook, not the URL, and httpx's own request log line (INFO,
with the full URL) shows a placeholder instead. One try per message; the caller keeps what was
not sent and tries again at its next check.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import httpx

from connectors.base import ConfigError, RetryableTargetError
from connectors.http import USER_AGENT

__all__ = ["AlertWebhook"]

#: A chat service answers at once or not at all; a slow one must not hold up the worker's check.
_TIMEOUT = httpx.Timeout(connect=5.0, read=10.0, write=10.0, pool=5.0)
_PLACEHOLDER = "<ALERT_WEBHOOK_URL>"
_SLACK_CODE = re.compile(r"[a-z_]{1,40}")


class _HideUrl(logging.Filter):
    """Put the placeholder in place of the URL in httpx's log records, as given and as httpx writes
    it (a lower-case host, no default port, escapes). Equal for the same URL, so building a second
    webhook with it adds no second filter."""

    def __init__(self, url: str):
        super().__init__()
        self.url = url
        try:
            self._forms = {url, str(httpx.URL(url))}
        except httpx.InvalidURL:  # then `post` says so, and nothing is ever sent to log
            self._forms = {url}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _HideUrl) and other.url == self.url

    def __hash__(self) -> int:
        return hash(self.url)

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_PLACEHOLDER if self._holds_url(arg) else arg for arg in record.args)
        if self._holds_url(record.msg):
            record.msg = _PLACEHOLDER
        return True

    def _holds_url(self, value: object) -> bool:
        return isinstance(value, (str, httpx.URL)) and any(form in str(value) for form in self._forms)


class AlertWebhook:
    """POST a message; raise RetryableTargetError (try again later) or ConfigError (fix the URL)."""

    name = "alert webhook"

    def __init__(self, url: str, *, transport: httpx.BaseTransport | None = None):
        self._url = url
        logging.getLogger("httpx").addFilter(_HideUrl(url))
        self._http = httpx.Client(
            timeout=_TIMEOUT,
            transport=transport,
            headers={"User-Agent": USER_AGENT},
            follow_redirects=False,
        )

    def post(self, message: dict[str, Any]) -> None:
        # The exception's type says what went wrong; its message might hold the URL.
        try:
            response = self._http.post(self._url, json=message)
        except httpx.InvalidURL as exc:
            raise ConfigError(f"{self.name} cannot be called ({type(exc).__name__}); check ALERT_WEBHOOK_URL") from None
        except httpx.TransportError as exc:
            raise RetryableTargetError(f"{self.name} unreachable ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:  # e.g. an answer that cannot be read
            raise RetryableTargetError(f"{self.name} failed ({type(exc).__name__})") from None
        if response.is_success:
            return
        status = response.status_code
        # Slack names a refusal with a code in a plain-text body ("invalid_payload", "no_service", …);
        # anything else a receiver answers is left out, as it might echo the URL.
        code = response.text.strip()
        said = f"{self.name} answered HTTP {status}" + (f" ({code})" if _SLACK_CODE.fullmatch(code) else "")
        if status == 429 or status >= 500:
            raise RetryableTargetError(said, status=status)
        raise ConfigError(f"{said}; check ALERT_WEBHOOK_URL", status=status)

    def close(self) -> None:
        self._http.close()
