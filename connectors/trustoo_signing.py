"""How a Trustoo Open API request is signed (docs/platforms/trustoo.md §1.2, §2 items 1-3).

The current scheme (since Nov 2025), ``hmac_sorted_pipe_body``::

    base = "&".join(f"{k}={v}" for k, v in sorted(query params + {"timestamp": ts}))
    if body: base += "|" + body                     # the exact bytes sent
    Sign = hmac_sha256(key=private_token, msg=base).hexdigest()

The spec rests it on agreeing public client code, not on readable doc text, so the scheme is a
flag and the pre-Nov-2025 ``legacy_sha256_salt`` is kept beside it. Query values are signed raw
(httpx URL-encodes them when sending); what is signed and what is sent come from the same dict,
built once by `query_params`, and the same bytes, built once by `json_body`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["SCHEMES", "json_body", "query_params", "sign"]

SCHEMES = ("hmac_sorted_pipe_body", "legacy_sha256_salt")


def sign(
    private_token: str,
    params: Mapping[str, str],
    timestamp: int,
    body: bytes = b"",
    *,
    scheme: str = "hmac_sorted_pipe_body",
) -> str:
    """The `Sign` header for a request with these query params and body, lowercase hex."""
    if not private_token:
        raise ValueError("a Trustoo private token is required to sign")
    if "timestamp" in params:
        raise ValueError("'timestamp' is added by sign(); it cannot be a query param as well")
    if scheme == "hmac_sorted_pipe_body":
        fields = {**params, "timestamp": str(timestamp)}
        message = "&".join(f"{k}={fields[k]}" for k in sorted(fields)).encode("utf-8")
        if body:
            message += b"|" + body
        return hmac.new(private_token.encode("utf-8"), message, hashlib.sha256).hexdigest()
    if scheme == "legacy_sha256_salt":
        return _legacy_sign(private_token, params, timestamp, body)
    raise ValueError(f"unknown Trustoo signing scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")


def _legacy_sign(private_token: str, params: Mapping[str, str], timestamp: int, body: bytes) -> str:
    """Before Nov 2025, "SHA-256 with salt": sha256 over the sorted ``k=v&...`` of the query and
    top-level body fields plus the timestamp, with the private token appended (no separator).

    Nulls, empty arrays and objects whose values are all empty were skipped; nested values were
    JSON-stringified, which is why key order inside the JSON used to matter.
    """
    fields: dict[str, str] = {}
    document = json.loads(body) if body else {}
    if not isinstance(document, dict):
        raise ValueError("the legacy Trustoo scheme signs the fields of a JSON object body")
    for key, value in {**document, **params}.items():
        text = _legacy_text(value)
        if text is not None:
            fields[key] = text
    fields["timestamp"] = str(timestamp)
    base = "&".join(f"{k}={fields[k]}" for k in sorted(fields))
    return hashlib.sha256((base + private_token).encode("utf-8")).hexdigest()


def _legacy_text(value: Any) -> str | None:
    """A field value as the legacy JavaScript clients stringified it; None when it was skipped."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # JavaScript's String(5.0) is "5"
    if isinstance(value, list):
        return _compact(value) if value else None
    if isinstance(value, dict):
        if all(v in (None, "", []) for v in value.values()):
            return None
        return _compact(value)
    return str(value)


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def json_body(fields: Mapping[str, Any]) -> bytes:
    """The request body, serialised once: these bytes are signed and sent unchanged (§2 item 3)."""
    return _compact(dict(fields)).encode("utf-8")


def query_params(params: Mapping[str, Any]) -> dict[str, str]:
    """Query params as signed and sent: None and '' dropped, one scalar string per key (§2 item 2).

    Booleans become "1"/"0" (Trustoo's flags are 0/1); lists are refused because the spec does
    not know how Trustoo names array params, and the name is part of what is signed.
    """
    cleaned: dict[str, str] = {}
    for key, value in params.items():
        if value is None or value == "":
            continue
        if isinstance(value, bool):
            cleaned[key] = "1" if value else "0"
        elif isinstance(value, (str, int, float)):
            cleaned[key] = str(value)
        else:
            raise TypeError(
                f"Trustoo query param {key!r} must be a single str, int or bool, not {type(value).__name__}"
            )
    return cleaned
