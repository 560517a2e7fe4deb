"""connectors/trustoo_api.py and trustoo_envelope.py against the Trustoo emulator, in process through
`httpx.WSGITransport`.

The emulator checks every signature itself (tests/fakes/trustoo.py, written from
docs/platforms/trustoo.md), so a call it answers with code 0 was signed right. One fake clock
serves the client and the emulator; its `sleep` moves the clock on, so no test really waits. The
rate limit the client asks for its turns is a recording fake here; the shared one is tested in
tests/integration/test_rate_limits.py.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from connectors.base import ConfigError, FixAndReplayError, RetryableTargetError
from connectors.http import RetryPolicy
from connectors.trustoo_api import OAuthTokens, ShopCredentials, TrustooApi
from connectors.trustoo_signing import sign
from tests.fakes.clock import Clock
from tests.fakes.credentials import Tokens
from tests.fakes.limiter import RecordingLimiter
from tests.fakes.trustoo import TrustooEmulator

PUBLIC = "GfKu22TCaj4gULtrA3/OgA=="
PRIVATE = "trustoo-private-current-0123456789"
OTHER_PUBLIC, OTHER_PRIVATE = "OtherShop00000000000000==", "trustoo-private-other-shop-000000"
CLIENT_ID, CLIENT_SECRET = "reviewbridge-platform", "reviewbridge-platform-secret-0123456789"
REDIRECT = "https://reviewbridge.example/oauth/callback"
NOW = 1_800_000_000
BASE = "http://trustoo.test"
REQUEST_ID = re.compile(r"request_id [0-9a-f]{32}")


class OAuthGrant:
    """OAuth credentials that renew their token pair through the client under test."""

    def __init__(self, tokens: OAuthTokens):
        self.tokens = tokens
        self.api: TrustooApi | None = None
        self.refreshes = 0

    def for_shop(self, shop: str) -> ShopCredentials:
        return ShopCredentials(shop, access_token=self.tokens.access_token)

    def refresh(self, shop: str) -> ShopCredentials | None:
        self.refreshes += 1
        self.tokens = self.api.refresh_tokens(CLIENT_ID, CLIENT_SECRET, self.tokens.refresh_token)
        return self.for_shop(shop)


class RefusedGrant(OAuthGrant):
    """Hands out a fresh access token that Trustoo does not accept either."""

    def refresh(self, shop: str) -> ShopCredentials | None:
        self.refreshes += 1
        return ShopCredentials(shop, access_token="still-not-accepted")


class LosesReplies(httpx.BaseTransport):
    """The emulator behind a network that times out a slow answer (after Trustoo applied it) or
    refuses the connection before anything is sent."""

    def __init__(self, emulator: TrustooEmulator, *, read_timeout_s: float = 0.02, refuse: int = 0):
        self.inner = httpx.WSGITransport(app=emulator)
        self.read_timeout_s = read_timeout_s
        self.refuse = refuse

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.refuse:
            self.refuse -= 1
            raise httpx.ConnectError("connection refused", request=request)
        started = time.monotonic()
        response = self.inner.handle_request(request)
        if time.monotonic() - started >= self.read_timeout_s:
            raise httpx.ReadTimeout("timed out", request=request)
        return response


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def emu(clock) -> Iterator[TrustooEmulator]:
    emulator = TrustooEmulator(
        {PUBLIC: PRIVATE, OTHER_PUBLIC: OTHER_PRIVATE}, clock=clock, oauth_clients={CLIENT_ID: CLIENT_SECRET}
    )
    yield emulator
    emulator.close()


def make_api(emu, clock, credentials=None, *, transport=None, **kwargs) -> TrustooApi:
    return TrustooApi(
        BASE,
        credentials or Tokens({PUBLIC: PRIVATE, OTHER_PUBLIC: OTHER_PRIVATE}),
        transport=transport or httpx.WSGITransport(app=emu),
        clock=clock,
        sleep=clock.sleep,
        **kwargs,
    )


@pytest.fixture
def api(emu, clock) -> Iterator[TrustooApi]:
    client = make_api(emu, clock)
    yield client
    client.close()


def draft(**overrides):
    return {
        "product_id": "9200305176832",
        "rating": 5,
        "author": "Trustoo",
        "author_country": "US",
        "content": "This is a test review via OpenAPI",
        "source": "ChatWILL",
        **overrides,
    }


def at(hours_ago: float) -> str:
    return (datetime.fromtimestamp(NOW, tz=UTC) - timedelta(hours=hours_ago)).strftime("%Y-%m-%d %H:%M:%S")


def api_requests(emu, verb: str):
    return [r for r in emu.requests if r.path.endswith("/" + verb)]


# --- signing (§1.2) -------------------------------------------------------------------------------


def test_trustoo_sign_get_matches_known_answer():
    params = {"product_ids": "123", "page_size": "20", "page": "1"}
    # HMAC-SHA256(private token, "page=1&page_size=20&product_ids=123&timestamp=1700000000")
    assert sign(PRIVATE, params, 1700000000) == "ceed5458df9c8fe4a1e5655c01695967ff1109bec8b3e65c84581e8a778c1659"


def test_trustoo_sign_post_matches_known_answer():
    body = b'{"product_id":"1","rating":5,"author":"Trustoo","content":"Great"}'
    # HMAC-SHA256(private token, "timestamp=1700000000|" + body)
    assert sign(PRIVATE, {}, 1700000000, body) == "52fcbb2dc5e72ce2521ebe27a8e9f6a88557bf522253a0ed77b6db68d74f0ca9"


def test_trustoo_sign_legacy_scheme_hashes_sorted_fields_with_token_appended():
    body = b'{"product_id":"1","rating":5,"author":"Trustoo","content":"Great","reply":null}'
    expected = hashlib.sha256(
        ("author=Trustoo&content=Great&product_id=1&rating=5&timestamp=1700000000" + PRIVATE).encode()
    ).hexdigest()
    assert sign(PRIVATE, {}, 1700000000, body, scheme="legacy_sha256_salt") == expected


def test_trustoo_sign_unknown_scheme_is_refused():
    with pytest.raises(ValueError, match="unknown Trustoo signing scheme"):
        sign(PRIVATE, {}, 1700000000, scheme="md5")


def test_trustoo_every_call_kind_is_accepted_by_the_emulator(emu, api):
    review = emu.add_review(PUBLIC)
    api.get_review(PUBLIC, review["id"])
    api.get_reviews(PUBLIC, page_size=20, product_ids="7982301249581", is_store_review=False)
    api.get_rating(PUBLIC, is_all_rating=True)
    created = api.create_review(PUBLIC, draft())
    api.delete_review(PUBLIC, created)
    hook = api.create_shop_webhook(PUBLIC, "review/created", "https://reviewbridge.example/webhooks/trustoo")
    assert [h["id"] for h in api.get_shop_webhooks(PUBLIC)] == [hook["id"]]
    api.delete_shop_webhook(PUBLIC, hook["id"])
    assert [(r.path.rsplit("/", 1)[1], r.code) for r in emu.requests] == [
        ("get_review", 0),
        ("get_reviews", 0),
        ("get_rating", 0),
        ("create_review", 0),
        ("delete_review", 0),
        ("create_shop_webhook", 0),
        ("get_shop_webhooks", 0),
        ("delete_shop_webhook", 0),
    ]


def test_trustoo_body_sent_is_the_bytes_signed(emu, api):
    api.create_review(PUBLIC, draft(content='Très bien ☕ — "quoted"'))
    sent = api_requests(emu, "create_review")[0]
    fields = {"source": "ReviewBridge", **draft(content='Très bien ☕ — "quoted"')}
    assert sent.body == json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode()
    assert sent.headers["Sign"] == sign(PRIVATE, {}, NOW, sent.body)
    assert (sent.headers["Public-Token"], sent.headers["Timestamp"]) == (PUBLIC, str(NOW))
    assert sent.headers["Content-Type"] == "application/json"


def test_trustoo_empty_params_are_dropped_before_signing_and_sending(emu, api):
    api.get_reviews(PUBLIC, keyword="", product_ids=None, ratings="5")
    sent = api_requests(emu, "get_reviews")[0]
    assert sent.query == {"ratings": ["5"], "page": ["1"], "page_size": ["100"], "sort_by": ["created-descending"]}
    assert sent.code == 0


def test_trustoo_query_values_are_signed_raw_and_sent_encoded(emu, api):
    emu.add_review(PUBLIC, content="A mug & tea ☕ set")
    page = api.get_reviews(PUBLIC, keyword="mug & tea ☕")
    assert page.count == 1
    assert api_requests(emu, "get_reviews")[0].query["keyword"] == ["mug & tea ☕"]


def test_trustoo_wrong_private_token_raises_config_error_without_the_token(emu, clock):
    wrong = "trustoo-private-WRONG-000000000000"
    api = make_api(emu, clock, Tokens({PUBLIC: wrong}))
    with pytest.raises(ConfigError) as caught:
        api.get_reviews(PUBLIC)
    message = str(caught.value)
    assert "TRUSTOO_PRIVATE_TOKEN" in message and REQUEST_ID.search(message)
    assert wrong not in message and api_requests(emu, "get_reviews")[0].headers["Sign"] not in message
    assert len(emu.requests) == 1  # code 16 is not retried


def test_trustoo_legacy_scheme_refused_by_trustoo_names_the_scheme_setting(emu, clock):
    api = make_api(emu, clock, scheme="legacy_sha256_salt")
    with pytest.raises(ConfigError, match="TRUSTOO_SIGN_SCHEME"):
        api.get_reviews(PUBLIC)


def test_trustoo_credentials_repr_hides_secrets():
    credentials = ShopCredentials(PUBLIC, private_token=PRIVATE, access_token="access-secret")
    tokens = OAuthTokens(access_token="access-secret", refresh_token="refresh-secret", expires_at=1.0)
    assert PRIVATE not in repr(credentials) and "secret" not in repr(credentials) + repr(tokens)


# --- reading reviews (§1.4, §1.5) -----------------------------------------------------------------


def test_trustoo_get_review_returns_the_item(emu, api):
    review = emu.add_review(PUBLIC, author="Grace Hopper")
    assert api.get_review(PUBLIC, str(review["id"]))["author"] == "Grace Hopper"


def test_trustoo_get_review_of_missing_id_returns_none(api):
    assert api.get_review(PUBLIC, "1999999999") is None


def test_trustoo_get_reviews_pages_by_number(emu, api):
    for hours in range(5):
        emu.add_review(PUBLIC, commented_at=at(hours))
    first = api.get_reviews(PUBLIC, page_size=2)
    last = api.get_reviews(PUBLIC, page=3, page_size=2)
    assert (len(first.items), first.page, first.page_size, first.total_page, first.count) == (2, 1, 2, 3, 5)
    assert (len(last.items), last.page) == (1, 3)
    assert [r["commented_at"] for r in first.items] == [at(0), at(1)]


def test_trustoo_iter_reviews_streams_every_page_newest_first(emu, api):
    for hours in range(7):
        emu.add_review(PUBLIC, commented_at=at(hours))
    reviews = api.iter_reviews(PUBLIC, page_size=2)
    assert next(reviews)["commented_at"] == at(0)
    assert len(api_requests(emu, "get_reviews")) == 1  # lazy: one page at a time
    assert [r["commented_at"] for r in reviews] == [at(h) for h in range(1, 7)]
    assert len(api_requests(emu, "get_reviews")) == 4


def test_trustoo_iter_reviews_stops_past_since_minus_overlap(emu, api):
    for hours in range(10):
        emu.add_review(PUBLIC, commented_at=at(hours))
    since = datetime.fromtimestamp(NOW, tz=UTC) - timedelta(hours=2)
    got = [r["commented_at"] for r in api.iter_reviews(PUBLIC, since=since, overlap_s=3600, page_size=2)]
    assert got == [at(0), at(1), at(2), at(3)]  # back to since - 1 h, inclusive
    assert [r.query["page"] for r in api_requests(emu, "get_reviews")] == [["1"], ["2"], ["3"]]


def test_trustoo_get_rating_returns_the_summary(emu, api):
    emu.add_review(PUBLIC, rating=4, product_id="42")
    rating = api.get_rating(PUBLIC, product_id="42")
    assert (rating["rating_value"], rating["review_count"], rating["star4_count"]) == ("4.0", 1, 1)


# --- writing reviews (§1.6) -----------------------------------------------------------------------


def test_trustoo_create_review_returns_id_and_review_exists(emu, api):
    review_id = api.create_review(PUBLIC, draft(author="Ada"))
    assert isinstance(review_id, str)
    assert [(str(r["id"]), r["author"], r["source"]) for r in emu.reviews(PUBLIC)] == [(review_id, "Ada", "ChatWILL")]


def test_trustoo_create_review_reads_top_level_integer_id(clock):
    answer = {"code": 0, "message": "success", "request_id": "0" * 32, "id": 123, "data": {}}
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=answer))
    api = TrustooApi(BASE, Tokens({PUBLIC: PRIVATE}), transport=transport, clock=clock, sleep=clock.sleep)
    assert api.create_review(PUBLIC, draft()) == "123"


def test_trustoo_create_review_after_applied_503_is_an_unknown_outcome(emu, api):
    emu.inject(503, path_contains="create_review", after_apply=True)
    with pytest.raises(RetryableTargetError) as caught:
        api.create_review(PUBLIC, draft())
    assert caught.value.outcome_unknown is True
    assert len(emu.reviews(PUBLIC)) == 1 and len(api_requests(emu, "create_review")) == 1  # not resent


def test_trustoo_create_review_timing_out_after_apply_is_an_unknown_outcome(emu, clock):
    emu.inject(None, path_contains="create_review", hang_s=0.05)
    api = make_api(emu, clock, transport=LosesReplies(emu))
    with pytest.raises(RetryableTargetError, match="timed out") as caught:
        api.create_review(PUBLIC, draft())
    assert caught.value.outcome_unknown is True
    assert len(emu.reviews(PUBLIC)) == 1 and len(api_requests(emu, "create_review")) == 1


def test_trustoo_create_review_refused_connection_is_a_known_outcome(emu, clock):
    api = make_api(emu, clock, transport=LosesReplies(emu, refuse=1))
    with pytest.raises(RetryableTargetError) as caught:
        api.create_review(PUBLIC, draft())
    assert caught.value.outcome_unknown is False and emu.reviews(PUBLIC) == []


@pytest.mark.parametrize("code, unknown", [(4, True), (13, True), (8, False)])
def test_trustoo_create_review_failing_code_says_whether_it_may_have_applied(emu, api, code, unknown):
    emu.inject(code=code, path_contains="create_review")
    with pytest.raises(RetryableTargetError) as caught:
        api.create_review(PUBLIC, draft())
    assert caught.value.outcome_unknown is unknown


def test_trustoo_create_review_already_exists_needs_a_person(emu, api):
    emu.inject(code=6, path_contains="create_review")
    with pytest.raises(FixAndReplayError, match="already exists") as caught:
        api.create_review(PUBLIC, draft())
    assert REQUEST_ID.search(str(caught.value))


def test_trustoo_create_review_invalid_field_needs_a_person(api):
    with pytest.raises(FixAndReplayError, match="rating") as caught:
        api.create_review(PUBLIC, draft(rating=9))
    assert caught.value.outcome_unknown is False


def test_trustoo_delete_review_removes_it(emu, api):
    review = emu.add_review(PUBLIC)
    api.delete_review(PUBLIC, str(review["id"]))
    assert emu.reviews(PUBLIC) == []


def test_trustoo_delete_of_missing_review_is_fine(emu, api):
    api.delete_review(PUBLIC, "1999999999")
    assert api_requests(emu, "delete_review")[0].code == 5


# --- codes and HTTP failures (§1.3, §2 items 7, 8) ------------------------------------------------


@pytest.mark.parametrize(
    "code, error",
    [
        (3, FixAndReplayError),
        (5, FixAndReplayError),
        (4, RetryableTargetError),
        (8, RetryableTargetError),
        (13, RetryableTargetError),
        (16, ConfigError),
    ],
)
def test_trustoo_envelope_code_maps_to_its_error(emu, api, code, error):
    emu.inject(code=code, path_contains="get_reviews")
    with pytest.raises(error) as caught:
        api.get_reviews(PUBLIC)
    assert type(caught.value) is error
    assert f"code {code}" in str(caught.value) and REQUEST_ID.search(str(caught.value))
    assert len(emu.requests) == 1  # codes are not retried inline; the queue decides


def test_trustoo_http_503_is_retried_transparently(emu, api):
    emu.inject(503, path_contains="get_rating")
    assert api.get_rating(PUBLIC, is_all_rating=1)["review_count"] == 0
    assert [r.status for r in emu.requests] == [503, 200]


def test_trustoo_http_503_every_time_becomes_retryable(emu, clock):
    emu.inject(503, times=2, path_contains="get_rating")
    api = make_api(emu, clock, retry=RetryPolicy(attempts=2))
    with pytest.raises(RetryableTargetError, match="HTTP 503"):
        api.get_rating(PUBLIC, is_all_rating=1)
    assert len(emu.requests) == 2


def test_trustoo_calls_take_a_turn_of_their_shops_rate_limit(emu, clock):
    limiter = RecordingLimiter()
    api = make_api(emu, clock, limiter=limiter)
    api.get_rating(PUBLIC, is_all_rating=1)
    api.get_reviews(OTHER_PUBLIC)
    assert limiter.acquired == [PUBLIC, OTHER_PUBLIC]


def test_trustoo_429_of_a_shops_limit_pauses_that_shop_only(clock):
    emulator = TrustooEmulator({PUBLIC: PRIVATE, OTHER_PUBLIC: OTHER_PRIVATE}, clock=clock, rate_limit_per_s=1)
    limiter = RecordingLimiter()
    api = make_api(emulator, clock, limiter=limiter)
    for _ in range(2):
        api.get_rating(PUBLIC, is_all_rating=1)
    with pytest.raises(RetryableTargetError, match="HTTP 429"):  # the fake grants every turn at once
        api.get_rating(PUBLIC, is_all_rating=1)
    api.get_rating(OTHER_PUBLIC, is_all_rating=1)
    assert {account for account, _ in limiter.paused} == {PUBLIC}
    assert all(seconds >= 1 for _, seconds in limiter.paused)  # Retry-After: 1
    assert emulator.rate_limited == {PUBLIC: 3}


def test_trustoo_http_401_raises_config_error_naming_the_tokens(emu, api):
    emu.inject(401, path_contains="get_reviews")
    with pytest.raises(ConfigError, match="TRUSTOO_PRIVATE_TOKEN") as caught:
        api.get_reviews(PUBLIC)
    assert caught.value.status == 401 and PRIVATE not in str(caught.value)


def test_trustoo_http_404_needs_a_person_and_is_not_a_missing_review(emu, api):
    emu.inject(404, path_contains="get_review")
    with pytest.raises(FixAndReplayError, match="HTTP 404"):
        api.get_review(PUBLIC, "1999999999")


def test_trustoo_code_8_keeps_retry_after(emu, api):
    emu.inject(code=8, retry_after=30, path_contains="get_reviews")
    with pytest.raises(RetryableTargetError) as caught:
        api.get_reviews(PUBLIC)
    assert caught.value.retry_after == 30


# --- OAuth2 (§1.8) --------------------------------------------------------------------------------


def consent(emu, authorize_url: str, shop: str = PUBLIC) -> str:
    """The merchant approves in the Trustoo admin; the emulator redirects back with a code."""
    with httpx.Client(transport=httpx.WSGITransport(app=emu)) as browser:
        answer = browser.get(authorize_url + "&" + urlencode({"shop": shop}))
    assert answer.status_code == 302
    return parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]


def oauth_api(emu, clock, api) -> tuple[TrustooApi, OAuthGrant]:
    url = api.authorize_url(CLIENT_ID, REDIRECT, "state-1")
    grant = OAuthGrant(api.exchange_code(CLIENT_ID, CLIENT_SECRET, consent(emu, url), REDIRECT))
    grant.api = make_api(emu, clock, grant)
    return grant.api, grant


def test_trustoo_authorize_url_names_client_redirect_state_and_scopes(api):
    url = api.authorize_url(CLIENT_ID, REDIRECT, "state-1")
    query = parse_qs(urlsplit(url).query)
    assert url.startswith(f"{BASE}/api/v1/openapi/oauth/authorize?")
    assert (query["client_id"], query["redirect_uri"], query["state"], query["scope"]) == (
        [CLIENT_ID],
        [REDIRECT],
        ["state-1"],
        ["read_reviews write_reviews"],
    )


def test_trustoo_exchange_code_gives_tokens_for_bearer_calls(emu, clock, api):
    mine = emu.add_review(PUBLIC)
    emu.add_review(OTHER_PUBLIC)
    bearer, grant = oauth_api(emu, clock, api)
    assert grant.tokens.expires_at == NOW + 7200 and grant.tokens.refresh_token
    assert [r["id"] for r in bearer.iter_reviews(PUBLIC)] == [mine["id"]]
    assert bearer.create_review(PUBLIC, draft())
    sent = api_requests(emu, "create_review")[0]
    assert sent.headers["Authorization"] == f"Bearer {grant.tokens.access_token}"
    assert "Sign" not in sent.headers and sent.code == 0


def test_trustoo_expired_access_token_is_refreshed_once(emu, clock, api):
    bearer, grant = oauth_api(emu, clock, api)
    clock.t += 7200
    assert bearer.get_rating(PUBLIC, is_all_rating=1)["review_count"] == 0
    assert grant.refreshes == 1
    assert [r.code for r in api_requests(emu, "get_rating")] == [16, 0]


def test_trustoo_revoked_authorization_raises_config_error_after_one_refresh(emu, clock, api):
    bearer, grant = oauth_api(emu, clock, api)
    emu.revoke_authorization(PUBLIC, CLIENT_ID)
    with pytest.raises(ConfigError, match="TRUSTOO_CLIENT_ID") as caught:
        bearer.get_rating(PUBLIC, is_all_rating=1)
    assert grant.refreshes == 1
    assert grant.tokens.access_token not in str(caught.value) and CLIENT_SECRET not in str(caught.value)


def test_trustoo_access_token_refused_after_refresh_raises_config_error(emu, clock, api):
    _, grant = oauth_api(emu, clock, api)
    grant = RefusedGrant(grant.tokens)
    bearer = make_api(emu, clock, grant)
    clock.t += 7200
    with pytest.raises(ConfigError, match="TRUSTOO_CLIENT_ID") as caught:
        bearer.get_rating(PUBLIC, is_all_rating=1)
    assert grant.refreshes == 1 and [r.code for r in api_requests(emu, "get_rating")] == [16, 16]
    assert "still-not-accepted" not in str(caught.value) and REQUEST_ID.search(str(caught.value))


def test_trustoo_exchange_code_with_wrong_secret_raises_config_error_without_it(emu, api):
    code = consent(emu, api.authorize_url(CLIENT_ID, REDIRECT, "state-1"))
    with pytest.raises(ConfigError, match="TRUSTOO_CLIENT_SECRET") as caught:
        api.exchange_code(CLIENT_ID, "not-the-client-secret", code, REDIRECT)
    assert "not-the-client-secret" not in str(caught.value) and code not in str(caught.value)
