"""Wix webhooks: the RS256 JWT each delivery is, checked on its raw bytes (docs/platforms/wix.md §1.1, §1.2).

The whole request body is a JWT signed with the app's private key; we hold its public key (one PEM,
or several while a rotation overlaps). Inside are three layers, two of them JSON strings::

    claims {data: "<envelope>", iat, exp}
      └─ envelope {eventType, instanceId, data: "<domain event>", identity: "<…>"}
           └─ domain event {id, entityFqdn, slug, entityId, eventTime, entityEventSequence,
                            createdEvent.entity | updatedEvent.currentEntity |
                            deletedEvent.deletedEntity | actionEvent.body}   (or their …AsJson strings)

This module reads the claims; connectors/wix.py reads the envelope and the domain event.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeGuard

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from connectors.base import PayloadError, SignatureError, StaleRequest, read_json
from connectors.wix_mapping import SOURCE, json_layer

__all__ = ["WixWebhookVerifier", "claims_time", "unverified_claims"]


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
        self._last = threading.local()

    def verify(self, headers: Mapping[str, str], body: bytes) -> str:
        """Return the delivery's instanceId (the account) or raise a WebhookRejected.

        A correctly signed token whose envelope is unreadable or names no instance returns "":
        it is Wix's, so it is kept, and `parse` quarantines it with the reason."""
        claims = self._claims(body)
        self._last.verified = (body, claims)
        return _instance_id(claims)

    def verified_claims(self, body: bytes) -> Mapping[str, Any] | None:
        """The claims `verify` last read in this thread, if it read them from this very `body`: the
        intake parses what it has just verified, and decoding the token again cost as much as its
        signature check."""
        last = getattr(self._last, "verified", None)
        return last[1] if last is not None and last[0] is body and last[1] else None

    def _claims(self, body: bytes) -> dict[str, Any]:
        token = _token_text(body)
        try:
            header = jwt.get_unverified_header(token)
        except (jwt.PyJWTError, ValueError, TypeError, RecursionError):
            raise SignatureError(SOURCE, "body is not a JWT") from None
        if header.get("alg") != "RS256":
            raise SignatureError(SOURCE, f"token algorithm {str(header.get('alg'))[:20]!r} is not RS256")
        signed = None
        for key in self._keys:
            try:
                signed = _JWS.decode_complete(token, key, algorithms=["RS256"])["payload"]
                break
            except jwt.InvalidSignatureError:
                continue  # perhaps the other key of a rotation
            except (jwt.PyJWTError, ValueError, TypeError, RecursionError) as exc:
                raise SignatureError(SOURCE, f"token is malformed ({type(exc).__name__})") from None
        if signed is None:
            raise SignatureError(SOURCE, "signature matches none of the public keys")
        try:
            claims = read_json(signed.decode("utf-8"), "the token's claims")
        except (UnicodeDecodeError, PayloadError):
            # Wix signed it, so it is kept (under no instance) and `parse` quarantines it; without
            # readable claims there is no exp to check, and a replay is a duplicate of the first.
            return {}
        if not isinstance(claims, dict):
            return {}
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


# Only the signature is PyJWT's to check: the times are checked against our injected clock, and
# the claims are read by us, so that a signed token whose claims cannot be read is kept, not refused.
_JWS = jwt.PyJWS()


def unverified_claims(body: bytes) -> dict[str, Any]:
    """The token's claims, unchecked: for `parse`, after `verify` passed the delivery."""
    try:
        claims = jwt.decode(_token_text(body), options={"verify_signature": False})
    except (SignatureError, jwt.PyJWTError, ValueError, TypeError, RecursionError):  # verify() let it through?
        raise PayloadError("body is not a readable JWT") from None
    if not isinstance(claims, dict):
        raise PayloadError("the token's claims are not an object")
    return claims


def claims_time(claims: Mapping[str, Any]) -> datetime:
    """When the token was issued; else its expiry, which `verify` made sure is a number."""
    for name in ("iat", "exp"):
        value = claims.get(name)
        if _is_number(value):
            try:
                return datetime.fromtimestamp(value, tz=UTC)
            except (OverflowError, OSError, ValueError):
                continue
    raise PayloadError("the token has no usable iat or exp")


def _instance_id(claims: Mapping[str, Any]) -> str:
    try:
        envelope = json_layer(claims.get("data"), "data")
    except PayloadError:
        return ""
    instance_id = envelope.get("instanceId")
    return instance_id if isinstance(instance_id, str) else ""


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value  # NaN is not


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
