"""TrustooWebhookVerifier on raw bytes (docs/platforms/trustoo.md §1.2, §1.7, §2 item 4).

Standard Webhooks style: `_signed()` builds a good delivery and each test changes one thing.
The clock is injected; nothing here reads the real time.
"""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.base import SignatureError, StaleRequest, UnknownKey, WebhookRejected
from connectors.trustoo import TrustooWebhookVerifier
from tests.builders import (
    TRUSTOO_OLD_PRIVATE_TOKEN,
    TRUSTOO_PRIVATE_TOKEN,
    TRUSTOO_PUBLIC_TOKEN,
    trustoo_body,
    trustoo_headers,
    trustoo_review,
)

NOW = 1_700_000_000
TOLERANCE_S = 900
PUBLIC_HEADER = "Open-Trustoo-Webhook-Public-token"
TIMESTAMP_HEADER = "Open-Trustoo-Webhook-Timestamp"
SIGN_HEADER = "Open-Trustoo-Webhook-Sign"


def _verifier(*private_tokens: str, now: float = NOW) -> TrustooWebhookVerifier:
    tokens = private_tokens or (TRUSTOO_PRIVATE_TOKEN, TRUSTOO_OLD_PRIVATE_TOKEN)
    return TrustooWebhookVerifier({TRUSTOO_PUBLIC_TOKEN: tokens}, tolerance_s=TOLERANCE_S, now=lambda: now)


def _signed(body: bytes | None = None, **header_overrides) -> tuple[dict[str, str], bytes]:
    body = trustoo_body(trustoo_review()) if body is None else body
    headers = trustoo_headers(body, timestamp=NOW, **header_overrides)
    return headers, body


# --- sign ------------------------------------------------------------------------------------


def test_trustoo_sign_matches_known_hmac_sha256_hex():
    body = b'{"list":[{"id":1,"rating":5}]}'
    expected = hmac.new(
        TRUSTOO_PRIVATE_TOKEN.encode("utf-8"), b"timestamp=1700000000|" + body, hashlib.sha256
    ).hexdigest()

    assert TrustooWebhookVerifier.sign(TRUSTOO_PRIVATE_TOKEN, 1700000000, body) == expected


def test_trustoo_sign_is_lowercase_hex_of_64_characters():
    signature = TrustooWebhookVerifier.sign(TRUSTOO_PRIVATE_TOKEN, NOW, b"{}")

    assert len(signature) == 64 and set(signature) <= set("0123456789abcdef")


def test_trustoo_sign_keys_with_the_private_token_string_as_utf8():
    token = "clé-privée-ü-0123456789"
    expected = hmac.new(token.encode("utf-8"), b"timestamp=1700000000|{}", hashlib.sha256).hexdigest()

    assert TrustooWebhookVerifier.sign(token, "1700000000", b"{}") == expected


def test_trustoo_empty_body_signs_timestamp_without_pipe():
    expected = hmac.new(TRUSTOO_PRIVATE_TOKEN.encode(), b"timestamp=1700000000", hashlib.sha256).hexdigest()

    assert TrustooWebhookVerifier.sign(TRUSTOO_PRIVATE_TOKEN, 1700000000, b"") == expected


def test_trustoo_empty_body_with_its_signature_verifies():
    headers, body = _signed(b"")

    assert _verifier().verify(headers, body) == TRUSTOO_PUBLIC_TOKEN


# --- the happy path and key rotation -----------------------------------------------------------


def test_trustoo_signed_delivery_returns_public_token():
    headers, body = _signed()

    assert _verifier().verify(headers, body) == TRUSTOO_PUBLIC_TOKEN


def test_trustoo_delivery_signed_with_old_private_token_is_accepted():
    headers, body = _signed(private_token=TRUSTOO_OLD_PRIVATE_TOKEN)

    assert _verifier().verify(headers, body) == TRUSTOO_PUBLIC_TOKEN


def test_trustoo_delivery_signed_with_first_private_token_is_accepted():
    headers, body = _signed(private_token=TRUSTOO_PRIVATE_TOKEN)

    assert _verifier(TRUSTOO_PRIVATE_TOKEN, TRUSTOO_OLD_PRIVATE_TOKEN).verify(headers, body) == TRUSTOO_PUBLIC_TOKEN


def test_trustoo_delivery_signed_with_retired_private_token_is_rejected():
    headers, body = _signed(private_token=TRUSTOO_OLD_PRIVATE_TOKEN)

    with pytest.raises(SignatureError):
        _verifier(TRUSTOO_PRIVATE_TOKEN).verify(headers, body)


def test_trustoo_delivery_signed_with_another_shops_token_is_rejected():
    headers, body = _signed(private_token="someone-elses-private-token")

    with pytest.raises(SignatureError):
        _verifier().verify(headers, body)


# --- raw bytes -------------------------------------------------------------------------------


def test_trustoo_reserialised_body_with_other_spacing_is_rejected():
    headers, body = _signed()
    respaced = json.dumps(json.loads(body)).encode()
    assert respaced != body

    with pytest.raises(SignatureError):
        _verifier().verify(headers, respaced)


def test_trustoo_reserialised_body_with_other_key_order_is_rejected():
    headers, body = _signed()
    reordered = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    assert reordered != body

    with pytest.raises(SignatureError):
        _verifier().verify(headers, reordered)


def test_trustoo_body_with_a_changed_rating_is_rejected():
    headers, body = _signed()

    with pytest.raises(SignatureError):
        _verifier().verify(headers, body.replace(b'"rating":5', b'"rating":1'))


# --- headers -------------------------------------------------------------------------------


def test_trustoo_unknown_public_token_is_unknown_key():
    headers, body = _signed(public_token="bm90LWEta25vd24tc2hvcA==")

    with pytest.raises(UnknownKey):
        _verifier().verify(headers, body)


@pytest.mark.parametrize("header", [PUBLIC_HEADER, TIMESTAMP_HEADER, SIGN_HEADER])
def test_trustoo_missing_header_is_a_signature_error(header):
    headers, body = _signed()
    del headers[header]

    with pytest.raises(SignatureError):
        _verifier().verify(headers, body)


@pytest.mark.parametrize("header", [PUBLIC_HEADER, TIMESTAMP_HEADER, SIGN_HEADER])
def test_trustoo_blank_header_is_a_signature_error(header):
    headers, body = _signed()
    headers[header] = "  "

    with pytest.raises(SignatureError):
        _verifier().verify(headers, body)


@pytest.mark.parametrize("case", [str.lower, str.upper], ids=["lowercase", "uppercase"])
def test_trustoo_header_names_in_any_case_verify(case):
    headers, body = _signed()
    recased = {case(name): value for name, value in headers.items()}

    assert _verifier().verify(recased, body) == TRUSTOO_PUBLIC_TOKEN


# --- timestamp window ------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [-TOLERANCE_S - 1, TOLERANCE_S + 1], ids=["too-old", "too-far-ahead"])
def test_trustoo_timestamp_outside_window_is_stale(offset):
    headers, body = _signed()

    with pytest.raises(StaleRequest):
        _verifier(now=NOW - offset).verify(headers, body)


@pytest.mark.parametrize("offset", [-TOLERANCE_S, TOLERANCE_S], ids=["oldest", "furthest-ahead"])
def test_trustoo_timestamp_exactly_at_tolerance_edge_verifies(offset):
    headers, body = _signed()

    assert _verifier(now=NOW - offset).verify(headers, body) == TRUSTOO_PUBLIC_TOKEN


def test_trustoo_stale_timestamp_is_rejected_before_the_signature_is_checked():
    headers, body = _signed()
    headers[SIGN_HEADER] = "0" * 64

    with pytest.raises(StaleRequest):
        _verifier(now=NOW + 10 * TOLERANCE_S).verify(headers, body)


@pytest.mark.parametrize(
    "timestamp",
    [
        "soon",
        "1700000000.5",
        "-1700000000",
        "1e9",
        "²",
        "\uff11\uff17\uff10\uff10\uff10\uff10\uff10\uff10\uff10\uff10",
        "9" * 40,
    ],
    ids=repr,
)
def test_trustoo_non_numeric_timestamp_is_a_signature_error(timestamp):
    headers, body = _signed()
    headers[TIMESTAMP_HEADER] = timestamp

    with pytest.raises(SignatureError):
        _verifier().verify(headers, body)


# --- the signature value ----------------------------------------------------------------------


def test_trustoo_uppercase_hex_signature_is_accepted():
    headers, body = _signed()
    headers[SIGN_HEADER] = headers[SIGN_HEADER].upper()

    assert _verifier().verify(headers, body) == TRUSTOO_PUBLIC_TOKEN


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s: s[:-1],
        lambda s: s + "0",
        lambda s: s[:32],
        lambda s: "é" * 64,
        lambda s: s[:-1] + "ß",
        lambda s: "\u0000" * 64,
        lambda s: "sha256=" + s,
    ],
    ids=["short", "long", "half", "non-ascii", "one-non-ascii", "nul", "prefixed"],
)
def test_trustoo_malformed_signature_is_a_signature_error(mangle):
    headers, body = _signed()
    headers[SIGN_HEADER] = mangle(headers[SIGN_HEADER])

    with pytest.raises(SignatureError):
        _verifier().verify(headers, body)


def test_trustoo_rejections_share_the_webhook_rejected_base():
    headers, body = _signed()
    headers[SIGN_HEADER] = "☃"

    with pytest.raises(WebhookRejected) as caught:
        _verifier().verify(headers, body)

    assert caught.value.source == "trustoo"
    assert TRUSTOO_PRIVATE_TOKEN not in str(caught.value)


# --- construction ----------------------------------------------------------------------------


@pytest.mark.parametrize("tokens", [("",), (), (TRUSTOO_PRIVATE_TOKEN, "")], ids=["empty", "none", "one-empty"])
def test_trustoo_verifier_with_empty_private_token_fails_at_construction(tokens):
    with pytest.raises(ValueError):
        TrustooWebhookVerifier({TRUSTOO_PUBLIC_TOKEN: tokens}, now=lambda: NOW)


def test_trustoo_verifier_with_empty_public_token_fails_at_construction():
    with pytest.raises(ValueError):
        TrustooWebhookVerifier({"": (TRUSTOO_PRIVATE_TOKEN,)}, now=lambda: NOW)


# --- property --------------------------------------------------------------------------------


@settings(database=None, max_examples=200)
@given(body=st.binary(max_size=2048))
def test_trustoo_any_signed_body_verifies(body):
    headers = trustoo_headers(body, timestamp=NOW)

    assert _verifier().verify(headers, body) == TRUSTOO_PUBLIC_TOKEN


@settings(database=None, max_examples=200)
@given(data=st.data(), body=st.binary(min_size=1, max_size=2048))
def test_trustoo_any_one_byte_change_is_rejected(data, body):
    headers = trustoo_headers(body, timestamp=NOW)
    index = data.draw(st.integers(0, len(body) - 1), label="index")
    byte = data.draw(st.integers(0, 255).filter(lambda b: b != body[index]), label="byte")
    changed = body[:index] + bytes([byte]) + body[index + 1 :]

    with pytest.raises(SignatureError):
        _verifier().verify(headers, changed)
