"""connectors/http.py: retries, Retry-After, token refresh and the mapping of httpx errors to ours."""

from __future__ import annotations

import importlib.metadata
import random

import httpx
import pytest

from connectors.base import ConfigError, FixAndReplayError, RetryableTargetError
from connectors.http import (
    PlatformClient,
    RetryPolicy,
    Token,
    TokenCache,
    backoff_delay,
    error_for,
    retry_after_seconds,
)
from tests.fakes.limiter import RecordingLimiter


class Script:
    """A transport that answers from a list, one response (or exception) per request."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def _client(
    script: Script,
    *,
    token: TokenCache | None = None,
    attempts: int = 3,
    sleeps: list | None = None,
    limiter: RecordingLimiter | None = None,
):
    return PlatformClient(
        "platform",
        "http://platform.test",
        token=token,
        credentials_hint="PLATFORM_SECRET",
        transport=httpx.MockTransport(script),
        retry=RetryPolicy(attempts=attempts),
        sleep=(sleeps.append if sleeps is not None else lambda s: None),
        rng=random.Random(1),
        limiter=limiter,
    )


def test_platform_calls_carry_the_installed_version_as_user_agent():
    script = Script(httpx.Response(200, json={}))
    _client(script).request("GET", "/thing")
    assert script.requests[0].headers["User-Agent"] == f"ReviewBridge/{importlib.metadata.version('reviewbridge')}"


def test_platform_503_then_200_is_retried_transparently():
    script = Script(httpx.Response(503), httpx.Response(200, json={"ok": True}))
    assert _client(script).request("GET", "/thing").json() == {"ok": True}
    assert len(script.requests) == 2


def test_platform_429_waits_at_least_its_retry_after():
    sleeps: list[float] = []
    script = Script(httpx.Response(429, headers={"Retry-After": "3"}), httpx.Response(200))
    _client(script, sleeps=sleeps).request("GET", "/thing")
    assert sleeps and sleeps[0] >= 3


def test_platform_retry_after_beyond_the_inline_limit_goes_back_to_the_queue():
    script = Script(httpx.Response(429, headers={"Retry-After": "120"}))
    with pytest.raises(RetryableTargetError) as caught:
        _client(script).request("GET", "/thing")
    assert (caught.value.status, caught.value.retry_after, len(script.requests)) == (429, 120.0, 1)


def test_platform_call_for_an_account_takes_a_turn_of_its_rate_limit_per_attempt():
    limiter = RecordingLimiter()
    script = Script(httpx.Response(503), httpx.Response(200))
    _client(script, limiter=limiter).request("GET", "/thing", account="shop-a")
    assert limiter.acquired == ["shop-a", "shop-a"]


def test_platform_call_for_no_account_is_not_rate_limited():
    limiter = RecordingLimiter()
    _client(Script(httpx.Response(200)), limiter=limiter).request("POST", "/oauth/token")
    assert limiter.acquired == []


def test_platform_429_pauses_the_account_for_every_caller_instead_of_sleeping_alone():
    limiter, sleeps = RecordingLimiter(), []
    script = Script(httpx.Response(429, headers={"Retry-After": "3"}), httpx.Response(200))
    _client(script, sleeps=sleeps, limiter=limiter).request("GET", "/thing", account="shop-a")
    assert sleeps == []  # the next turn's acquire sleeps the pause out
    assert [account for account, _ in limiter.paused] == ["shop-a"] and limiter.paused[0][1] >= 3
    assert limiter.acquired == ["shop-a", "shop-a"]


def test_platform_429_beyond_the_inline_limit_pauses_the_account_and_goes_back_to_the_queue():
    limiter = RecordingLimiter()
    script = Script(httpx.Response(429, headers={"Retry-After": "120"}))
    with pytest.raises(RetryableTargetError) as caught:
        _client(script, limiter=limiter).request("GET", "/thing", account="shop-a")
    assert caught.value.retry_after == 120.0
    assert limiter.paused == [("shop-a", 120.0)]


def test_platform_5xx_every_time_becomes_retryable_after_the_last_attempt():
    script = Script(*(httpx.Response(502) for _ in range(3)))
    with pytest.raises(RetryableTargetError, match="HTTP 502"):
        _client(script).request("POST", "/thing?token=secret-in-query", json={})
    assert len(script.requests) == 3


def test_platform_timeouts_are_retried_then_reported_without_the_query_string():
    script = Script(*(httpx.ReadTimeout("slow") for _ in range(3)))
    with pytest.raises(RetryableTargetError, match="timed out") as caught:
        _client(script).request("GET", "/thing?token=secret-in-query")
    assert "secret-in-query" not in str(caught.value)


def test_platform_connection_refused_is_retryable():
    script = Script(httpx.ConnectError("refused"), httpx.Response(200))
    assert _client(script).request("GET", "/thing").status_code == 200


def test_platform_call_that_must_not_repeat_is_tried_once():
    script = Script(httpx.Response(503))
    with pytest.raises(RetryableTargetError):
        _client(script).request("POST", "/once", retry=False)
    assert len(script.requests) == 1


def test_platform_401_refreshes_the_token_once_and_retries():
    issued = iter(["first", "second"])
    tokens = TokenCache(lambda: Token(next(issued), expires_at=1e12))
    script = Script(httpx.Response(401), httpx.Response(200))
    _client(script, token=tokens).request("GET", "/thing")
    assert [r.headers["Authorization"] for r in script.requests] == ["Bearer first", "Bearer second"]


def test_platform_401_after_a_fresh_token_is_a_configuration_error_naming_the_variable():
    tokens = TokenCache(lambda: Token("t", expires_at=1e12))
    script = Script(httpx.Response(401), httpx.Response(401))
    with pytest.raises(ConfigError, match="PLATFORM_SECRET"):
        _client(script, token=tokens).request("GET", "/thing")


def test_platform_403_is_a_configuration_error_at_once():
    script = Script(httpx.Response(403))
    with pytest.raises(ConfigError):
        _client(script).request("GET", "/thing")
    assert len(script.requests) == 1


def test_platform_404_and_409_are_returned_for_the_connector_to_read():
    script = Script(httpx.Response(404), httpx.Response(409))
    client = _client(script)
    assert client.request("GET", "/a").status_code == 404
    assert client.request("GET", "/b").status_code == 409


def test_token_cache_renews_before_expiry():
    now = [1000.0]
    fetched = []

    def fetch():
        fetched.append(now[0])
        return Token(f"t{len(fetched)}", expires_at=now[0] + 3600)

    cache = TokenCache(fetch, clock=lambda: now[0], refresh_margin_s=300)
    assert cache.get() == "t1"
    now[0] += 3000
    assert cache.get() == "t1"
    now[0] += 301
    assert cache.get() == "t2"


def test_token_cache_keeps_a_token_another_thread_already_renewed():
    tokens = iter(["old", "new"])
    cache = TokenCache(lambda: Token(next(tokens), expires_at=1e12))
    assert cache.get() == "old"
    cache.invalidate("old")
    assert cache.get() == "new"
    cache.invalidate("old")  # a late report about the old token changes nothing
    assert cache.get() == "new"


@pytest.mark.parametrize(
    "status, error",
    [
        (400, FixAndReplayError),
        (404, FixAndReplayError),
        (409, RetryableTargetError),
        (429, RetryableTargetError),
        (500, RetryableTargetError),
        (503, RetryableTargetError),
        (401, ConfigError),
        (403, ConfigError),
    ],
)
def test_unexpected_answers_are_classified(status, error):
    assert type(error_for(httpx.Response(status), "platform", "detail")) is error


def test_retry_after_reads_seconds_and_http_dates():
    assert retry_after_seconds(httpx.Response(429, headers={"Retry-After": "7"})) == 7.0
    dated = httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert retry_after_seconds(dated, now=lambda: 1445412470.0) == 10.0
    assert retry_after_seconds(httpx.Response(429, headers={"Retry-After": "soon"})) is None


def test_backoff_is_shared_by_quick_and_queued_retries():
    rng = random.Random(3)
    assert all(0 <= backoff_delay(n, base_s=1, cap_s=8, rng=rng) <= min(8, 2 ** (n - 1)) for n in range(1, 10))
