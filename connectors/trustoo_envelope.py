"""What Trustoo's answers mean (docs/platforms/trustoo.md §1.3).

Trustoo answers HTTP 200 with an envelope ``{code, message, request_id, data}``; a call succeeds
only when the status is 2xx *and* the code is 0 (2000 from the old docs). Other codes (gRPC
numbering) become our errors in `interpret`::

    16 unauthenticated ── ConfigError (connectors/trustoo_api.py first refreshes an OAuth token once)
    7  permission denied ─ ConfigError (the OAuth grant lacks a scope)
    1, 4, 8, 13, 14 ───── RetryableTargetError
    5 not found ───────── None from get_review, success for deletes, else FixAndReplayError
    3, 6 and the rest ─── FixAndReplayError

Messages carry Trustoo's `message` and `request_id`, never a token or a signature.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import httpx

from connectors.base import ConfigError, FixAndReplayError, RetryableTargetError, TargetError
from connectors.http import error_for, retry_after_seconds

__all__ = ["PLATFORM", "describe", "interpret", "maybe_applied", "read_json"]

PLATFORM = "Trustoo"
_OK_CODES = frozenset({0, 2000})
_RETRYABLE_CODES = frozenset({1, 4, 8, 13, 14})  # canceled, deadline, rejected, internal, unavailable
_MAYBE_APPLIED_CODES = frozenset({4, 13})  # gRPC: a deadline or internal error may follow the write


def interpret(
    response: httpx.Response,
    document: Any,
    verb: str,
    *,
    hint: str,
    allow: Collection[int] = (),
    secrets: tuple[str, ...] = (),
    shop: str | None = None,
) -> tuple[int, Any]:
    """The envelope's (code, data) on success or an allowed code; our error otherwise."""
    code = document.get("code") if isinstance(document, dict) else None
    context = describe(response, document, secrets)
    if not isinstance(code, int) or isinstance(code, bool):
        if response.is_success:
            raise ConfigError(
                f"Trustoo answered {verb} without its envelope ({context}); check TRUSTOO_API_URL",
                status=response.status_code,
            )
        raise error_for(response, PLATFORM, f"{verb}: {context}")
    if response.is_success and (code in _OK_CODES or code in allow):
        return code, document.get("data")
    if code == 16:
        where = f" for shop {shop}" if shop else ""
        raise ConfigError(
            f"Trustoo refused our credentials{where} on {verb} ({context}); check {hint}",
            status=response.status_code,
        )
    if not response.is_success:
        raise error_for(response, PLATFORM, f"{verb}: {context}")
    raise _error_for_code(response, verb, code, context)


def _error_for_code(response: httpx.Response, verb: str, code: int, context: str) -> TargetError:
    """The error for an envelope code other than 0 and 16 on a 2xx answer."""
    message = f"Trustoo {verb} failed: {context}"
    if code == 7:
        return ConfigError(f"{message}; the OAuth grant lacks a scope this call needs", status=response.status_code)
    if code in _RETRYABLE_CODES:
        error = RetryableTargetError(message, status=response.status_code, retry_after=retry_after_seconds(response))
        error.code = str(code)  # read by maybe_applied
        return error
    if code == 6:
        return FixAndReplayError(f"Trustoo {verb}: already exists ({context})", status=response.status_code)
    return FixAndReplayError(message, status=response.status_code)


def maybe_applied(error: RetryableTargetError) -> bool:
    """Whether a failed create may still have been applied by Trustoo."""
    if error.code is not None:
        return int(error.code) in _MAYBE_APPLIED_CODES
    return error.outcome_unknown


def read_json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:  # HTML error pages, empty bodies, bad UTF-8
        return None


def describe(response: httpx.Response, document: Any, secrets: tuple[str, ...] = ()) -> str:
    """Trustoo's own words for the log: HTTP status, code, message and request_id, secrets blanked."""
    if isinstance(document, dict):
        message = str(document.get("message") or document.get("error_description") or document.get("error") or "")
        text = (
            f"HTTP {response.status_code}, code {document.get('code', '-')}: {message or '-'}, "
            f"request_id {document.get('request_id') or '-'}"
        )
    else:
        text = f"HTTP {response.status_code}, no JSON envelope"
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
