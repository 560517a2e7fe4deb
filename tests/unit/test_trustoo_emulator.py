"""The Trustoo emulator pins the rules of docs/platforms/trustoo.md, each in one test.

Open API calls go in-process through `httpx.WSGITransport`; webhook deliveries go over loopback to
a tiny receiver served by `serve_wsgi`. The signing here is written a third time, straight from
the spec's literal strings (§1.2), so neither the emulator nor the connector grades itself.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from tests.fakes.clock import Clock
from tests.fakes.serving import serve_wsgi
from tests.fakes.trustoo import TrustooEmulator, api_sign, webhook_sign

PUBLIC = "GfKu22TCaj4gULtrA3/OgA=="
PRIVATE = "trustoo-private-current-0123456789"
OTHER_PUBLIC, OTHER_PRIVATE = "OtherShop00000000000000==", "trustoo-private-other-shop-000000"
CLIENT_ID, CLIENT_SECRET = "client-id", "client-secret"
REDIRECT = "https://platform.example/oauth/callback"
NOW = 1_800_000_000
BASE = "http://trustoo.test"


def _hmac(key: str, message: bytes) -> str:
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def _emulator(clock: Clock | None = None, **kwargs) -> TrustooEmulator:
    kwargs.setdefault("retry_delays_s", (0,) * 10)
    return TrustooEmulator(
        shops={PUBLIC: PRIVATE, OTHER_PUBLIC: OTHER_PRIVATE},
        clock=clock or Clock(NOW),
        oauth_clients={CLIENT_ID: CLIENT_SECRET},
        **kwargs,
    )


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def emu(clock) -> Iterator[TrustooEmulator]:
    emulator = _emulator(clock)
    yield emulator
    emulator.close()


@pytest.fixture
def client(emu) -> Iterator[httpx.Client]:
    with httpx.Client(transport=httpx.WSGITransport(app=emu), base_url=BASE) as c:
        yield c


def call(
    client: httpx.Client,
    method: str,
    verb: str,
    params: dict | None = None,
    body=None,
    *,
    public: str = PUBLIC,
    private: str = PRIVATE,
    ts: int = NOW,
    headers: dict | None = None,
    raw: bytes | None = None,
) -> httpx.Response:
    """A signed Open API call, built by hand from §1.2: sorted k=v (raw values) + timestamp, `|` + raw body."""
    params = params or {}
    content = (
        raw
        if raw is not None
        else (b"" if body is None else json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode())
    )
    base = "&".join(
        f"{k}={v}" for k, v in sorted({**{k: str(v) for k, v in params.items()}, "timestamp": str(ts)}.items())
    )
    message = base.encode() + (b"|" + content if content else b"")
    sent = {
        "Public-Token": public,
        "Sign": _hmac(private, message),
        "Timestamp": str(ts),
        "Content-Type": "application/json",
        **(headers or {}),
    }
    url = f"/api/v1/openapi/{verb}" + (f"?{urlencode(params)}" if params else "")
    return client.request(method, url, content=content or None, headers=sent)


def ok(response: httpx.Response):
    assert response.status_code == 200, response.text
    envelope = response.json()
    assert envelope["code"] == 0, envelope
    return envelope["data"]


def code(response: httpx.Response) -> int:
    assert response.status_code == 200, response.text
    return response.json()["code"]


def draft(**overrides):
    body = {
        "product_id": "9200305176832",
        "rating": 5,
        "author": "Trustoo",
        "author_country": "US",
        "content": "This is a test review via OpenAPI",
        "source": "ChatWILL",
        "media": [
            {
                "url": "https://img.trustoo.io/a.jpeg?x-oss-process=style/trustoo_big",
                "thumbnail_url": "https://img.trustoo.io/a.jpeg?x-oss-process=style/trustoo_small",
                "type": 1,
                "is_published": 1,
            }
        ],
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}


# --- signing and the envelope (§1.2, §1.3) --------------------------------------------------------


def test_trustoo_sign_strings_match_spec_examples():
    body = b'{"product_id":"1","rating":5}'
    assert api_sign(PRIVATE, [], "1700000000", body) == _hmac(PRIVATE, b"timestamp=1700000000|" + body)
    pairs = [("product_ids", "123"), ("page_size", "20"), ("page", "1")]
    assert api_sign(PRIVATE, pairs, "1700000000", b"") == _hmac(
        PRIVATE, b"page=1&page_size=20&product_ids=123&timestamp=1700000000"
    )
    assert webhook_sign(PRIVATE, 1700000000, body) == _hmac(PRIVATE, b"timestamp=1700000000|" + body)


def test_trustoo_signed_call_returns_success_envelope(client):
    response = call(client, "GET", "get_rating", {"is_all_rating": 1})
    envelope = response.json()
    assert response.status_code == 200
    assert (envelope["code"], envelope["message"], envelope["time"]) == (0, "success", NOW)
    assert re.fullmatch(r"[0-9a-f]{32}", envelope["request_id"])
    assert envelope["data"]["review_count"] == 0


def test_trustoo_wrong_sign_returns_code_16(client):
    response = call(client, "GET", "get_reviews", {"page": 1}, private="not-the-private-token")
    assert response.status_code == 200
    envelope = response.json()
    assert (envelope["code"], envelope["message"].split(":")[0]) == (16, "unauthenticated")
    assert re.fullmatch(r"[0-9a-f]{32}", envelope["request_id"])


def test_trustoo_unknown_public_token_returns_code_16(client):
    assert code(call(client, "GET", "get_reviews", public="Unknown000000000000000==")) == 16


@pytest.mark.parametrize("missing", ["Public-Token", "Sign", "Timestamp"])
def test_trustoo_missing_auth_header_returns_code_16(client, missing):
    response = call(client, "GET", "get_reviews", headers={missing: ""})
    assert code(response) == 16


@pytest.mark.parametrize("skew_s, expected", [(-14 * 60, 0), (14 * 60, 0), (-16 * 60, 16), (16 * 60, 16)])
def test_trustoo_timestamp_outside_15_minutes_returns_code_16(client, skew_s, expected):
    assert code(call(client, "GET", "get_reviews", ts=NOW + skew_s)) == expected


def test_trustoo_body_reencoded_after_signing_returns_code_16(client):
    signed_bytes = json.dumps(draft(), separators=(",", ":")).encode()
    sent = json.dumps(draft()).encode()  # same JSON, different bytes (spaces)
    base = b"timestamp=%d|" % NOW + signed_bytes
    headers = {"Public-Token": PUBLIC, "Sign": _hmac(PRIVATE, base), "Timestamp": str(NOW)}
    response = client.post("/api/v1/openapi/create_review", content=sent, headers=headers)
    assert code(response) == 16
    assert code(call(client, "POST", "create_review", raw=sent)) == 0  # signing the bytes sent works


def test_trustoo_query_values_signed_decoded_succeed_and_encoded_fail(client):
    params = {"keyword": "hot tea/mug & more", "page": 1}
    assert code(call(client, "GET", "get_reviews", params)) == 0
    encoded = urlencode(params)  # the client signing percent-encoded values: wrong
    base = "&".join([*sorted(encoded.split("&")), f"timestamp={NOW}"]).encode()
    headers = {"Public-Token": PUBLIC, "Sign": _hmac(PRIVATE, base), "Timestamp": str(NOW)}
    assert code(client.get(f"/api/v1/openapi/get_reviews?{encoded}", headers=headers)) == 16


def test_trustoo_header_names_are_case_insensitive(client):
    message = b"is_all_rating=1&timestamp=%d" % NOW
    headers = {"public-token": PUBLIC, "SIGN": _hmac(PRIVATE, message), "timestamp": str(NOW)}
    assert code(client.get("/api/v1/openapi/get_rating?is_all_rating=1", headers=headers)) == 0


def test_trustoo_uppercase_hex_sign_returns_code_16(client):
    message = b"is_all_rating=1&timestamp=%d" % NOW
    headers = {"Public-Token": PUBLIC, "Sign": _hmac(PRIVATE, message).upper(), "Timestamp": str(NOW)}
    assert code(client.get("/api/v1/openapi/get_rating?is_all_rating=1", headers=headers)) == 16


def test_trustoo_legacy_sha256_salt_sign_returns_code_16(client):
    legacy = hashlib.sha256(f"is_all_rating=1&timestamp={NOW}{PRIVATE}".encode()).hexdigest()
    headers = {"Public-Token": PUBLIC, "Sign": legacy, "Timestamp": str(NOW)}
    assert code(client.get("/api/v1/openapi/get_rating?is_all_rating=1", headers=headers)) == 16


def test_trustoo_reset_private_token_rejects_old_token_at_once(emu, client):
    emu.reset_private_token(PUBLIC, "trustoo-private-new-111111111111")
    assert code(call(client, "GET", "get_reviews")) == 16
    assert code(call(client, "GET", "get_reviews", private="trustoo-private-new-111111111111")) == 0


def test_trustoo_unknown_route_returns_http_404(client):
    assert call(client, "GET", "get_products").status_code == 404
    legacy = client.get("/api/v1/open_api/get_reviews")  # the stale pre-2025 prefix
    assert legacy.status_code == 404


def test_trustoo_wrong_method_returns_http_405(client):
    assert call(client, "GET", "create_review").status_code == 405


# --- reviews (§1.5, §1.6) -------------------------------------------------------------------------


def test_trustoo_create_review_returns_string_id_and_stores_item(emu, client):
    data = ok(call(client, "POST", "create_review", body=draft(title="Great", author_email="a@example.com")))
    assert isinstance(data["id"], str) and data["id"].isdigit()
    item = ok(call(client, "GET", "get_review", {"id": data["id"]}))
    assert item["id"] == int(data["id"])
    assert set(item) == {
        "id",
        "product_id",
        "rating",
        "author",
        "author_email",
        "author_country",
        "title",
        "content",
        "commented_at",
        "updated_at",
        "is_verified",
        "is_published",
        "media",
        "reply",
        "source",
    }
    assert (item["product_id"], item["rating"], item["author"], item["source"]) == (
        "9200305176832",
        5,
        "Trustoo",
        "ChatWILL",
    )
    assert item["commented_at"] == time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(NOW))
    assert item["media"] == [
        {"url": draft()["media"][0]["url"], "thumbnail_url": draft()["media"][0]["thumbnail_url"], "type": 1}
    ]
    assert (item["is_published"], item["is_verified"], item["reply"]) == (1, 0, None)
    assert emu.reviews(PUBLIC) == [item]
    assert emu.create_calls(PUBLIC) == 1


def test_trustoo_create_review_keeps_reply_and_flags(client):
    body = draft(
        reply={"content": "Thanks!", "reply_at": "2026-01-02 03:04:05"},
        is_verified=1,
        is_published=0,
        commented_at="2026-01-01 10:00:00",
    )
    item = ok(call(client, "GET", "get_review", {"id": ok(call(client, "POST", "create_review", body=body))["id"]}))
    assert item["reply"] == {"content": "Thanks!", "reply_at": "2026-01-02 03:04:05"}
    assert (item["is_verified"], item["is_published"], item["commented_at"]) == (1, 0, "2026-01-01 10:00:00")


@pytest.mark.parametrize(
    "overrides",
    [
        {"rating": 0},
        {"rating": 6},
        {"rating": "5"},
        {"rating": 4.5},
        {"rating": ...},
        {"author": ...},
        {"author": ""},
        {"author": "x" * 121},
        {"product_id": 9200305176832},
        {"product_id": "abc"},
        {"author_country": "USA"},
        {"author_country": "us"},
        {"author_email": "not-an-email"},
        {"title": "t" * 301},
        {"content": "c" * 10001},
        {"commented_at": "2026-01-01T10:00:00Z"},
        {"is_verified": 2},
        {"is_published": True},
        {"media": {"url": "https://img.trustoo.io/a.jpeg"}},
        {"media": [{"thumbnail_url": "https://x.test/a"}]},
        {"media": [{"url": "ftp://x.test/a", "type": 1}]},
        {"media": [{"url": "https://x.test/a", "type": 3}]},
        {"reply": "Thanks"},
        {"reply": {"reply_at": "2026-01-01 00:00:00"}},
    ],
)
def test_trustoo_create_review_invalid_field_returns_code_3(emu, client, overrides):
    response = call(client, "POST", "create_review", body=draft(**overrides))
    assert code(response) == 3
    assert response.json()["message"].startswith("invalid argument")
    assert emu.reviews(PUBLIC) == [] and emu.create_calls(PUBLIC) == 0


@pytest.mark.parametrize("raw", [b"", b"{not json", b"[1,2]"])
def test_trustoo_create_review_body_not_a_json_object_returns_code_3(client, raw):
    assert code(call(client, "POST", "create_review", raw=raw)) == 3


def test_trustoo_create_review_without_product_id_is_a_store_review(client):
    review_id = ok(call(client, "POST", "create_review", body=draft(product_id=...)))["id"]
    assert ok(call(client, "GET", "get_review", {"id": review_id}))["product_id"] == "0"


def test_trustoo_create_review_twice_creates_two_reviews(emu, client):
    first = ok(call(client, "POST", "create_review", body=draft()))["id"]
    second = ok(call(client, "POST", "create_review", body=draft()))["id"]
    assert first != second  # no idempotency key in the API: a retried create duplicates
    assert len(emu.reviews(PUBLIC)) == 2 and emu.create_calls(PUBLIC) == 2


def test_trustoo_get_review_unknown_id_returns_code_5(emu, client):
    assert code(call(client, "GET", "get_review", {"id": 42})) == 5
    assert code(call(client, "GET", "get_review")) == 3
    other = emu.add_review(OTHER_PUBLIC)
    assert code(call(client, "GET", "get_review", {"id": other["id"]})) == 5  # another shop's review


def test_trustoo_delete_review_removes_it_and_unknown_returns_code_5(emu, client):
    review = emu.add_review(PUBLIC)
    assert ok(call(client, "POST", "delete_review", body={"id": review["id"]})) == {}
    assert emu.reviews(PUBLIC) == []
    assert code(call(client, "POST", "delete_review", body={"id": review["id"]})) == 5
    assert code(call(client, "POST", "delete_review", body={})) == 3


def test_trustoo_delete_review_accepts_string_id(emu, client):
    review = emu.add_review(PUBLIC)
    assert ok(call(client, "POST", "delete_review", body={"id": str(review["id"])})) == {}


def test_trustoo_get_reviews_pages_by_number(emu, client):
    for n in range(45):
        emu.add_review(PUBLIC, commented_at=f"2026-01-01 00:00:{n:02d}")
    first = ok(call(client, "GET", "get_reviews", {"page": 1}))
    assert first["page"] == {"page": 1, "page_size": 20, "total_page": 3, "count": 45}
    assert len(first["list"]) == 20
    last = ok(call(client, "GET", "get_reviews", {"page": 3, "page_size": 20}))
    assert len(last["list"]) == 5
    assert ok(call(client, "GET", "get_reviews", {"page": 4}))["list"] == []
    seen = [item["id"] for page in (1, 2, 3) for item in ok(call(client, "GET", "get_reviews", {"page": page}))["list"]]
    assert sorted(seen) == sorted(r["id"] for r in emu.reviews(PUBLIC))


def test_trustoo_get_reviews_empty_shop_has_zero_pages(client):
    assert ok(call(client, "GET", "get_reviews"))["page"] == {"page": 1, "page_size": 20, "total_page": 0, "count": 0}


def test_trustoo_get_reviews_sorts_by_created(emu, client):
    old = emu.add_review(PUBLIC, commented_at="2025-01-01 00:00:00")
    new = emu.add_review(PUBLIC, commented_at="2026-01-01 00:00:00")
    default = ok(call(client, "GET", "get_reviews"))["list"]
    ascending = ok(call(client, "GET", "get_reviews", {"sort_by": "created-ascending"}))["list"]
    descending = ok(call(client, "GET", "get_reviews", {"sort_by": "created-descending"}))["list"]
    assert [r["id"] for r in ascending] == [old["id"], new["id"]]
    assert [r["id"] for r in descending] == [r["id"] for r in default] == [new["id"], old["id"]]


@pytest.mark.parametrize(
    "params",
    [
        {"page_size": 101},
        {"page_size": 0},
        {"page": 0},
        {"page": "x"},
        {"sort_by": "newest"},
        {"is_store_review": 2},
        {"ratings": 6},
    ],
)
def test_trustoo_get_reviews_bad_param_returns_code_3(client, params):
    assert code(call(client, "GET", "get_reviews", params)) == 3


def test_trustoo_get_reviews_page_size_100_is_allowed(client):
    assert ok(call(client, "GET", "get_reviews", {"page_size": 100}))["page"]["page_size"] == 100


def test_trustoo_get_reviews_filters(emu, client):
    mug = emu.add_review(PUBLIC, product_id="111", rating=5, content="Keeps tea hot")
    cup = emu.add_review(PUBLIC, product_id="222", rating=2, title="Leaks", content="Cracked")
    store = emu.add_review(PUBLIC, product_id="0", rating=4, content="Fast shipping", source="Email request")

    def ids(params):
        return sorted(r["id"] for r in ok(call(client, "GET", "get_reviews", params))["list"])

    assert ids({"product_ids": "111"}) == [mug["id"]]
    assert ids({"product_ids": "111,222"}) == sorted([mug["id"], cup["id"]])
    assert ids({"product_ids[0]": "222"}) == [cup["id"]]
    assert ids({"is_store_review": 1}) == [store["id"]]
    assert ids({"is_store_review": 0}) == sorted([mug["id"], cup["id"]])
    assert ids({"ratings": "4,5"}) == sorted([mug["id"], store["id"]])
    assert ids({"keyword": "TEA"}) == [mug["id"]]
    assert ids({"keyword": "leaks"}) == [cup["id"]]
    assert ids({"sources": "Email request"}) == [store["id"]]


def test_trustoo_get_reviews_includes_hidden_reviews_unpublished(emu, client):
    review = emu.add_review(PUBLIC)
    emu.hide_review(PUBLIC, review["id"])
    [item] = ok(call(client, "GET", "get_reviews"))["list"]
    assert (item["id"], item["is_published"]) == (review["id"], 0)


def test_trustoo_get_reviews_sees_only_the_calling_shop(emu, client):
    emu.add_review(OTHER_PUBLIC)
    assert ok(call(client, "GET", "get_reviews"))["page"]["count"] == 0


def test_trustoo_get_rating_counts_published_reviews(emu, client):
    for rating in (5, 4, 4):
        emu.add_review(PUBLIC, product_id="111", rating=rating)
    hidden = emu.add_review(PUBLIC, product_id="111", rating=1)
    emu.hide_review(PUBLIC, hidden["id"])
    emu.add_review(PUBLIC, product_id="0", rating=3)
    product = ok(call(client, "GET", "get_rating", {"product_id": "111"}))
    assert product == {
        "rating_value": "4.3",
        "review_count": 3,
        "star1_count": 0,
        "star2_count": 0,
        "star3_count": 0,
        "star4_count": 2,
        "star5_count": 1,
    }
    assert ok(call(client, "GET", "get_rating", {"is_store_rating": 1}))["review_count"] == 1
    assert ok(call(client, "GET", "get_rating", {"is_all_rating": 1}))["review_count"] == 4
    assert code(call(client, "GET", "get_rating")) == 3


# --- shop webhooks (§1.4, §1.7) -------------------------------------------------------------------


def test_trustoo_shop_webhooks_create_list_delete(client):
    hook = ok(
        call(
            client,
            "POST",
            "create_shop_webhook",
            body={"topic": "review/created", "url": "https://rb.example/webhooks/trustoo"},
        )
    )
    assert isinstance(hook["id"], str)
    assert set(hook) == {"id", "topic", "url", "created_at", "updated_at"}
    assert ok(call(client, "GET", "get_shop_webhooks")) == [hook]
    assert ok(call(client, "POST", "delete_shop_webhook", body={"id": hook["id"]})) == {}
    assert ok(call(client, "GET", "get_shop_webhooks")) == []
    assert code(call(client, "POST", "delete_shop_webhook", body={"id": hook["id"]})) == 5


def test_trustoo_shop_webhook_duplicate_topic_and_url_returns_code_6(client):
    body = {"topic": "review/deleted", "url": "https://rb.example/webhooks/trustoo/review-deleted"}
    ok(call(client, "POST", "create_shop_webhook", body=body))
    assert code(call(client, "POST", "create_shop_webhook", body=body)) == 6
    ok(call(client, "POST", "create_shop_webhook", body={**body, "topic": "review/updated"}))


@pytest.mark.parametrize(
    "body",
    [
        {"topic": "review/published", "url": "https://rb.example/x"},
        {"topic": "review/created", "url": "not a url"},
        {"topic": "review/created"},
    ],
)
def test_trustoo_shop_webhook_bad_topic_or_url_returns_code_3(client, body):
    assert code(call(client, "POST", "create_shop_webhook", body=body)) == 3


def test_trustoo_shop_webhooks_are_per_shop(emu, client):
    emu.add_webhook(OTHER_PUBLIC, "review/created", "https://other.example/hook")
    assert ok(call(client, "GET", "get_shop_webhooks")) == []


def test_trustoo_update_shop_webhook_changes_url(client):
    body = {"topic": "review/created", "url": "https://a.example/"}
    hook = ok(call(client, "POST", "create_shop_webhook", body=body))
    updated = ok(
        call(
            client,
            "POST",
            "update_shop_webhook",
            body={"id": hook["id"], "topic": "review/created", "url": "https://b.example/"},
        )
    )
    assert (updated["id"], updated["url"]) == (hook["id"], "https://b.example/")


# --- OAuth2 (§1.8) --------------------------------------------------------------------------------


def _authorize(client, scope="read_reviews write_reviews", shop=PUBLIC, state="xyz") -> str:
    url = ok(
        client.get(
            "/api/v1/openapi/get_oauth_authorize_url",
            params={"client_id": CLIENT_ID, "redirect_uri": REDIRECT, "state": state, "scope": scope},
        )
    )
    authorize_url = url["authorize_url"]
    assert authorize_url.startswith(f"{BASE}/api/v1/openapi/oauth/authorize?")
    consent = client.get(authorize_url + "&" + urlencode({"shop": shop}))
    assert consent.status_code == 302
    location = consent.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == [state]
    return query["code"][0]


def _token(client, **body) -> httpx.Response:
    return client.post(
        "/api/v1/openapi/oauth/token",
        json={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uri": REDIRECT, **body},
    )


def _bearer(client, token, method, verb, params=None, body=None) -> httpx.Response:
    return client.request(
        method, f"/api/v1/openapi/{verb}", params=params, json=body, headers={"Authorization": f"Bearer {token}"}
    )


def test_trustoo_oauth_flow_gives_bearer_access_to_the_authorizing_shop(emu, client):
    mine = emu.add_review(PUBLIC)
    emu.add_review(OTHER_PUBLIC)
    tokens = ok(_token(client, grant_type="authorization_code", code=_authorize(client)))
    assert tokens["expires_in"] == 7200 and tokens["access_token"] and tokens["refresh_token"]
    listed = ok(_bearer(client, tokens["access_token"], "GET", "get_reviews"))
    assert [r["id"] for r in listed["list"]] == [mine["id"]]
    created = ok(_bearer(client, tokens["access_token"], "POST", "create_review", body=draft()))
    assert int(created["id"]) in [r["id"] for r in emu.reviews(PUBLIC)]


def test_trustoo_oauth_wrong_client_secret_returns_code_16(client):
    code_ = _authorize(client)
    assert code(_token(client, grant_type="authorization_code", code=code_, client_secret="wrong")) == 16


def test_trustoo_oauth_code_is_single_use(client):
    code_ = _authorize(client)
    ok(_token(client, grant_type="authorization_code", code=code_))
    assert code(_token(client, grant_type="authorization_code", code=code_)) == 3


def test_trustoo_oauth_code_with_other_redirect_uri_returns_code_3(client):
    code_ = _authorize(client)
    assert (
        code(_token(client, grant_type="authorization_code", code=code_, redirect_uri="https://evil.example/cb")) == 3
    )


def test_trustoo_oauth_access_token_expires_by_clock(clock, client):
    tokens = ok(_token(client, grant_type="authorization_code", code=_authorize(client)))
    clock.t += 7199
    assert code(_bearer(client, tokens["access_token"], "GET", "get_reviews")) == 0
    clock.t += 1
    assert code(_bearer(client, tokens["access_token"], "GET", "get_reviews")) == 16


def test_trustoo_oauth_refresh_rotates_the_refresh_token(clock, client):
    tokens = ok(_token(client, grant_type="authorization_code", code=_authorize(client)))
    clock.t += 7200
    fresh = ok(_token(client, grant_type="refresh_token", refresh_token=tokens["refresh_token"]))
    assert code(_bearer(client, fresh["access_token"], "GET", "get_reviews")) == 0
    assert code(_token(client, grant_type="refresh_token", refresh_token=tokens["refresh_token"])) == 3


def test_trustoo_oauth_token_missing_scope_returns_code_7(client):
    tokens = ok(_token(client, grant_type="authorization_code", code=_authorize(client, scope="read_reviews")))
    assert code(_bearer(client, tokens["access_token"], "GET", "get_reviews")) == 0
    assert code(_bearer(client, tokens["access_token"], "POST", "create_review", body=draft())) == 7


def test_trustoo_oauth_revoked_authorization_returns_code_16(emu, client):
    tokens = ok(_token(client, grant_type="authorization_code", code=_authorize(client)))
    emu.revoke_authorization(PUBLIC, CLIENT_ID)
    assert code(_bearer(client, tokens["access_token"], "GET", "get_reviews")) == 16


def test_trustoo_oauth_unknown_client_or_scope_is_rejected(client):
    params = {"client_id": "nobody", "redirect_uri": REDIRECT, "state": "s", "scope": "read_reviews"}
    assert code(client.get("/api/v1/openapi/get_oauth_authorize_url", params=params)) == 16
    params.update(client_id=CLIENT_ID, scope="read_everything")
    assert code(client.get("/api/v1/openapi/get_oauth_authorize_url", params=params)) == 3


def test_trustoo_bearer_header_takes_precedence_over_hmac(client):
    response = call(client, "GET", "get_reviews", headers={"Authorization": "Bearer not-a-token"})
    assert code(response) == 16  # valid HMAC headers are ignored once Authorization is non-empty
    assert code(call(client, "GET", "get_reviews", headers={"Authorization": ""})) == 0


# --- faults and the request log -------------------------------------------------------------------


def test_trustoo_injected_503_is_html_and_not_applied(emu, client):
    emu.inject(503, path_contains="create_review")
    response = call(client, "POST", "create_review", body=draft())
    assert response.status_code == 503 and "text/html" in response.headers["Content-Type"]
    assert emu.reviews(PUBLIC) == [] and emu.create_calls(PUBLIC) == 0
    assert code(call(client, "POST", "create_review", body=draft())) == 0  # times=1: the next one passes


def test_trustoo_injected_after_apply_loses_the_reply(emu, client):
    emu.inject(503, after_apply=True)
    assert call(client, "POST", "create_review", body=draft()).status_code == 503
    assert len(emu.reviews(PUBLIC)) == 1 and emu.create_calls(PUBLIC) == 1


def test_trustoo_injected_code_answers_http_200_envelope(emu, client):
    emu.inject(code=13, times=2)
    for _ in range(2):
        response = call(client, "GET", "get_reviews")
        assert response.status_code == 200 and response.json()["code"] == 13
        assert re.fullmatch(r"[0-9a-f]{32}", response.json()["request_id"])
    assert code(call(client, "GET", "get_reviews")) == 0


def test_trustoo_injected_429_carries_retry_after(emu, client):
    emu.inject(429, retry_after=7)
    response = call(client, "GET", "get_reviews")
    assert response.status_code == 429 and response.headers["Retry-After"] == "7"
    assert response.json()["code"] == 8


def test_trustoo_injected_fault_matches_path_only(emu, client):
    emu.inject(503, path_contains="delete_review")
    assert code(call(client, "GET", "get_reviews")) == 0
    assert call(client, "POST", "delete_review", body={"id": 1}).status_code == 503


def test_trustoo_injected_hang_delays_the_answer(emu, client):
    emu.inject(None, hang_s=0.2)
    started = time.monotonic()
    assert code(call(client, "GET", "get_reviews")) == 0
    assert time.monotonic() - started >= 0.2


def test_trustoo_fail_rate_one_fails_every_call_with_known_faults(clock):
    emu = _emulator(clock, fail_rate=1.0, seed=7)
    with httpx.Client(transport=httpx.WSGITransport(app=emu), base_url=BASE) as c:
        outcomes = set()
        for _ in range(30):
            response = call(c, "POST", "create_review", body=draft())
            outcomes.add(
                (
                    response.status_code,
                    response.headers.get("Retry-After"),
                    response.json()["code"] if response.status_code != 503 else None,
                )
            )
    assert outcomes == {(503, None, None), (429, "1", 8), (200, None, 13)}
    assert emu.reviews(PUBLIC) == []
    emu.fail_rate = 0.0
    with httpx.Client(transport=httpx.WSGITransport(app=emu), base_url=BASE) as c:
        assert code(call(c, "GET", "get_reviews")) == 0


# --- a per-shop rate limit, when a test asks for one ------------------------------------------------


@pytest.fixture
def limited_emu(clock) -> Iterator[TrustooEmulator]:
    emulator = _emulator(clock, rate_limit_per_s=2, rate_limit_burst=2)
    yield emulator
    emulator.close()


@pytest.fixture
def limited(limited_emu) -> Iterator[httpx.Client]:
    with httpx.Client(transport=httpx.WSGITransport(app=limited_emu), base_url=BASE) as c:
        yield c


def test_trustoo_rate_limit_answers_429_code_8_and_retry_after_past_the_burst(limited_emu, limited):
    assert [code(call(limited, "GET", "get_reviews")) for _ in range(2)] == [0, 0]
    refused = call(limited, "GET", "get_reviews")
    assert refused.status_code == 429 and refused.json()["code"] == 8
    assert refused.headers["Retry-After"] == "1"  # half a second to the next token, in whole seconds
    assert limited_emu.rate_limited == {PUBLIC: 1}


def test_trustoo_rate_limit_refills_with_time_and_refused_calls_spend_nothing(clock, limited_emu, limited):
    for _ in range(4):
        call(limited, "GET", "get_reviews")
    clock.t += 0.5
    assert code(call(limited, "GET", "get_reviews")) == 0
    assert limited_emu.rate_limited == {PUBLIC: 2}


def test_trustoo_rate_limit_is_per_shop(limited_emu, limited):
    for _ in range(3):
        call(limited, "GET", "get_reviews")
    assert code(call(limited, "GET", "get_reviews", public=OTHER_PUBLIC, private=OTHER_PRIVATE)) == 0
    assert limited_emu.rate_limited == {PUBLIC: 1}


def test_trustoo_rate_limit_counts_bearer_calls_against_the_authorizing_shop(limited_emu, limited):
    tokens = ok(_token(limited, grant_type="authorization_code", code=_authorize(limited)))
    statuses = [_bearer(limited, tokens["access_token"], "GET", "get_reviews").status_code for _ in range(3)]
    assert statuses == [200, 200, 429] and limited_emu.rate_limited == {PUBLIC: 1}


def test_trustoo_without_a_rate_limit_never_answers_429(emu, client):
    assert {call(client, "GET", "get_reviews").status_code for _ in range(20)} == {200}
    assert emu.rate_limited == {}


def test_trustoo_requests_are_logged_with_status_and_code(emu, client):
    emu.inject(503, path_contains="get_rating")
    call(client, "POST", "create_review", body=draft())
    call(client, "GET", "get_reviews", {"page": 2}, private="wrong")
    call(client, "GET", "get_rating", {"is_all_rating": 1})
    created, rejected, faulted = emu.requests
    assert (created.method, created.path, created.status, created.code) == (
        "POST",
        "/api/v1/openapi/create_review",
        200,
        0,
    )
    assert created.json()["author"] == "Trustoo" and created.headers["public-token"] == PUBLIC
    assert (rejected.query, rejected.status, rejected.code) == ({"page": ["2"]}, 200, 16)
    assert (faulted.status, faulted.code) == (503, None)


# --- webhook deliveries over loopback (§1.7) ------------------------------------------------------


class Receiver:
    """A tiny webhook endpoint: records every delivery, answers from a script (then success)."""

    SUCCESS = (200, b'{"code":0,"message":"success"}')

    def __init__(self, *script: tuple[int, bytes]):
        self.script = list(script)
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        with self.lock:
            self.received.append((environ["PATH_INFO"], headers, body))
            status, answer = self.script.pop(0) if self.script else self.SUCCESS
        start_response(f"{status} X", [("Content-Type", "application/json")])
        return [answer]


@pytest.fixture
def receiver_url():
    receivers = {}

    def start(receiver: Receiver) -> str:
        context = serve_wsgi(receiver)
        receivers[id(receiver)] = context
        return context.__enter__()

    yield start
    for context in receivers.values():
        context.__exit__(None, None, None)


def test_trustoo_webhook_delivery_is_signed_batched_and_verified(emu, clock, receiver_url):
    receiver = Receiver()
    url = receiver_url(receiver)
    emu.add_webhook(PUBLIC, "review/created", f"{url}/webhooks/trustoo/review-created")
    review = emu.add_review(PUBLIC, product_id="111", rating=4, author="Grace")
    emu.flush_deliveries()
    [(path, headers, body)] = receiver.received
    assert path == "/webhooks/trustoo/review-created"
    assert headers["open-trustoo-webhook-public-token"] == PUBLIC
    assert headers["open-trustoo-webhook-timestamp"] == str(NOW)
    assert re.fullmatch(r"[0-9a-f]{32}", headers["open-trustoo-webhook-requestid"])
    expected = _hmac(PRIVATE, f"timestamp={NOW}|".encode() + body)
    assert headers["open-trustoo-webhook-sign"] == expected
    [item] = json.loads(body)["list"]
    assert item == {**review, **emu.shop_info(PUBLIC)}
    assert list(item)[:3] == ["id", "my_shopify_domain", "shopify_shop_id"]
    [delivery] = emu.deliveries
    assert (delivery.topic, delivery.status, delivery.attempt, delivery.ok, delivery.body) == (
        "review/created",
        200,
        1,
        True,
        body,
    )


def test_trustoo_webhook_failure_is_redelivered_with_same_request_id_fresh_timestamp(clock, receiver_url):
    receiver = Receiver((500, b"oops"), (200, b'{"code":1}'))
    emu = _emulator(clock, retry_delays_s=(0, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01))
    try:
        emu.add_webhook(PUBLIC, "review/created", receiver_url(receiver) + "/hook")
        times = iter(range(NOW, NOW + 100, 10))
        clock_calls = threading.Lock()

        def ticking():  # each attempt reads a later time
            with clock_calls:
                clock.t = next(times)
            return clock.t

        emu.clock = ticking
        emu.add_review(PUBLIC)
        deadline = time.monotonic() + 5
        while len(emu.deliveries) < 3 and time.monotonic() < deadline:
            emu.flush_deliveries()
            time.sleep(0.01)
        emu.flush_deliveries()
    finally:
        emu.close()
    assert [(d.attempt, d.status, d.ok) for d in emu.deliveries] == [(1, 500, False), (2, 200, False), (3, 200, True)]
    request_ids = {h["open-trustoo-webhook-requestid"] for _, h, _ in receiver.received}
    stamps = [h["open-trustoo-webhook-timestamp"] for _, h, _ in receiver.received]
    assert len(request_ids) == 1 and len(set(stamps)) == 3
    for _, headers, body in receiver.received:
        ts = headers["open-trustoo-webhook-timestamp"]
        assert headers["open-trustoo-webhook-sign"] == _hmac(PRIVATE, f"timestamp={ts}|".encode() + body)


def test_trustoo_webhook_without_exact_success_body_stops_after_10_attempts(emu, receiver_url):
    receiver = Receiver(*[(200, b"OK")] * 20)
    emu.add_webhook(PUBLIC, "review/created", receiver_url(receiver) + "/hook")
    emu.add_review(PUBLIC)
    emu.flush_deliveries()
    assert [d.attempt for d in emu.deliveries] == list(range(1, 11))
    assert not any(d.ok for d in emu.deliveries) and emu.pending_deliveries() == 0


def test_trustoo_webhook_success_body_whitespace_is_accepted(emu, receiver_url):
    receiver = Receiver((200, b'{ "message" : "success", "code" : 0 }\n'))
    emu.add_webhook(PUBLIC, "review/created", receiver_url(receiver) + "/hook")
    emu.add_review(PUBLIC)
    emu.flush_deliveries()
    assert [(d.attempt, d.ok) for d in emu.deliveries] == [(1, True)]


def test_trustoo_admin_actions_fire_their_topics(emu, receiver_url):
    receiver = Receiver()
    url = receiver_url(receiver)
    for topic in ("review/created", "review/updated", "review/deleted"):
        emu.add_webhook(PUBLIC, topic, f"{url}/{topic.replace('/', '-')}")
    review = emu.add_review(PUBLIC)
    emu.flush_deliveries()
    emu.update_review(PUBLIC, review["id"], rating=3)
    emu.flush_deliveries()
    emu.hide_review(PUBLIC, review["id"])
    emu.flush_deliveries()
    emu.hide_review(PUBLIC, review["id"])  # already hidden: nothing to say
    emu.publish_review(PUBLIC, review["id"])
    emu.flush_deliveries()
    emu.delete_review_in_admin(PUBLIC, review["id"])
    emu.flush_deliveries()
    seen = [(path, json.loads(body)["list"][0]) for path, _, body in receiver.received]
    assert [(path, item["rating"], item["is_published"]) for path, item in seen] == [
        ("/review-created", 5, 1),
        ("/review-updated", 3, 1),
        ("/review-deleted", 3, 0),
        ("/review-updated", 3, 1),
        ("/review-deleted", 3, 1),
    ]
    assert [d.topic for d in emu.deliveries] == [
        "review/created",
        "review/updated",
        "review/deleted",
        "review/updated",
        "review/deleted",
    ]


def test_trustoo_api_writes_fire_webhooks_to_subscribed_topics_only(emu, client, receiver_url):
    receiver = Receiver()
    emu.add_webhook(PUBLIC, "review/deleted", receiver_url(receiver) + "/deleted")
    review_id = ok(call(client, "POST", "create_review", body=draft()))["id"]
    ok(call(client, "POST", "delete_review", body={"id": review_id}))
    emu.flush_deliveries()
    assert [(d.topic, json.loads(d.body)["list"][0]["id"]) for d in emu.deliveries] == [
        ("review/deleted", int(review_id))
    ]


def test_trustoo_webhook_to_unreachable_url_is_recorded_and_retried(emu):
    emu.add_webhook(PUBLIC, "review/created", "http://127.0.0.1:9/closed")
    emu.add_review(PUBLIC)
    emu.flush_deliveries(timeout_s=20)
    assert [d.attempt for d in emu.deliveries] == list(range(1, 11))
    assert all(d.status is None and d.error for d in emu.deliveries)


def test_trustoo_platform_webhook_fires_for_the_authorizing_shop(emu, client, receiver_url):
    receiver = Receiver()
    tokens = ok(_token(client, grant_type="authorization_code", code=_authorize(client)))
    ok(
        _bearer(
            client,
            tokens["access_token"],
            "POST",
            "create_shop_webhook",
            body={"topic": "review/created", "url": receiver_url(receiver) + "/platform"},
        )
    )
    assert ok(call(client, "GET", "get_shop_webhooks")) == []  # platform-scoped, not the shop's own
    emu.add_review(OTHER_PUBLIC)
    mine = emu.add_review(PUBLIC)
    emu.flush_deliveries()
    assert [json.loads(body)["list"][0]["id"] for _, _, body in receiver.received] == [mine["id"]]
