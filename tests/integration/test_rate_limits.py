"""app/core/rate_limits.py: one token bucket per platform account in the database, on both databases.

Each `SharedRateLimiter` gets an engine of its own, as a worker process would: what they agree on
they agree on through the database alone. Most tests run on a fake clock whose `sleep` moves it
on; the tests of processes running together use the real clock and real threads, and check what
the platform would see.
"""

from __future__ import annotations

import contextvars
import itertools
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from sqlalchemy import Engine

from app.bootstrap import build_services
from app.config import load_settings
from app.core.db import make_engine
from app.core.rate_limits import MAX_WAIT_S, Rate, SharedRateLimiter, bulk_work
from connectors.base import RateLimited, RetryableTargetError
from connectors.commercetools import CommercetoolsTarget
from connectors.trustoo_api import TrustooApi
from connectors.wix_api import WixApi
from tests.builders import TRUSTOO_PUBLIC_TOKEN
from tests.fakes.clock import Clock
from tests.fakes.credentials import Tokens
from tests.fakes.serving import serve_wsgi
from tests.fakes.trustoo import TrustooEmulator
from tests.fakes.wix import WixEmulator

NOW = 1_800_000_000.0
SHOP_A, SHOP_B = "shop-a-public-token", "shop-b-public-token"
PRIVATE = "trustoo-private-token-0123456789"


@pytest.fixture
def process(database_url) -> Iterator[Callable[[], Engine]]:
    """A new engine on the test's database for each call: one worker process's view of it."""
    engines: list[Engine] = []

    def new() -> Engine:
        engines.append(make_engine(database_url))
        return engines[-1]

    yield new
    for engine in engines:
        engine.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


TWO_A_SECOND = Rate(2)  # Trustoo's default
FOUR_A_SECOND = Rate(4)


def _limiter(engine: Engine, clock: Clock, rate: Rate = TWO_A_SECOND, **options) -> SharedRateLimiter:
    options.setdefault("sleep", clock.sleep)
    options.setdefault("max_wait_s", 10)  # room to pin the spacing of many turns while time stands still
    return SharedRateLimiter(engine, "trustoo", rate, clock=clock, **options)


# --- one bucket per account ---------------------------------------------------------------------


def test_rate_limit_spaces_an_accounts_calls_and_leaves_other_accounts_alone(process, clock):
    limiter = _limiter(process(), clock)
    for _ in range(5):
        limiter.acquire(SHOP_A)
    assert clock.sleeps == pytest.approx([0.5] * 4)  # 2 a second, no burst
    limiter.acquire(SHOP_B)
    assert len(clock.sleeps) == 4


def test_rate_limit_per_minute_lets_a_tenth_through_at_once_then_spaces_the_rest(process, clock):
    limiter = _limiter(process(), clock, Rate.per_minute(200))
    for _ in range(20):
        limiter.acquire(SHOP_A)
    assert clock.sleeps == []
    limiter.acquire(SHOP_A)
    assert clock.sleeps == [pytest.approx(1 / 3, abs=1e-5)]  # epoch seconds as floats: a few µs of rounding


def test_callers_at_the_same_moment_queue_in_turn_across_processes(process, clock):
    waits: list[float] = []  # time stands still: each caller reserves its own turn
    limiters = [_limiter(process(), clock, sleep=waits.append) for _ in range(2)]
    for limiter in itertools.islice(itertools.cycle(limiters), 5):
        limiter.acquire(SHOP_A)
    assert waits == pytest.approx([0.5, 1.0, 1.5, 2.0])


def test_live_turn_further_off_than_the_longest_wait_is_rate_limited_and_takes_nothing(process, clock):
    waits: list[float] = []
    limiter = _limiter(process(), clock, Rate(1), sleep=waits.append, max_wait_s=10)
    for _ in range(11):
        limiter.acquire(SHOP_A)
    with pytest.raises(RateLimited) as caught:
        limiter.acquire(SHOP_A)
    assert caught.value.retry_after == pytest.approx(11) and caught.value.outcome_unknown is False
    clock.t += 11
    limiter.acquire(SHOP_A)  # the refused call reserved nothing: this one goes at once
    assert waits == pytest.approx(list(range(1, 11)))


def test_a_live_caller_holds_its_thread_at_most_half_a_second_by_default(process, clock):
    waits: list[float] = []
    limiter = SharedRateLimiter(process(), "trustoo", FOUR_A_SECOND, clock=clock, sleep=waits.append)
    for _ in range(3):
        limiter.acquire(SHOP_A)
    with pytest.raises(RateLimited):
        limiter.acquire(SHOP_A)
    assert waits == pytest.approx([0.25, 0.5]) and max(waits) <= MAX_WAIT_S == 0.5


# --- a 429 pauses its account, everywhere -------------------------------------------------------


def test_429_pause_holds_that_account_in_every_process_and_no_other(process, clock):
    told, other = _limiter(process(), clock), _limiter(process(), clock)
    told.pause(SHOP_A, 5)
    other.acquire(SHOP_B)
    assert clock.sleeps == []
    other.acquire(SHOP_A)
    assert clock.sleeps == [pytest.approx(5)]


def test_429_pause_longer_than_the_longest_wait_sends_live_calls_back_to_the_queue(process, clock):
    told, other = _limiter(process(), clock), _limiter(process(), clock)
    told.pause(SHOP_A, 120)
    told.pause(SHOP_A, 5)  # a shorter pause never cuts a longer one short
    with pytest.raises(RateLimited) as caught:
        other.acquire(SHOP_A)
    assert caught.value.retry_after == pytest.approx(120)
    other.acquire(SHOP_B)
    assert clock.sleeps == []


def test_429_pause_makes_bulk_work_sleep_it_out(process, clock):
    limiter = _limiter(process(), clock)
    limiter.pause(SHOP_A, 120)
    with bulk_work():
        limiter.acquire(SHOP_A)
    assert sum(clock.sleeps) == pytest.approx(120)


# --- live work before bulk work of the same account ---------------------------------------------


def test_bulk_waits_for_a_free_token_and_a_live_call_arriving_meanwhile_goes_first(process, clock):
    live_waits: list[float] = []
    live = _limiter(process(), clock, Rate(1), sleep=live_waits.append)  # callers at one moment

    def bulk_sleeps(seconds: float) -> None:
        if not live_waits[1:]:  # a webhook's call comes in while the resync waits, from outside its bulk work
            contextvars.Context().run(live.acquire, SHOP_A)
        clock.sleep(seconds)

    bulk = _limiter(process(), clock, Rate(1), sleep=bulk_sleeps)
    live.acquire(SHOP_A)
    live.acquire(SHOP_A)
    with bulk_work():
        bulk.acquire(SHOP_A)

    assert live_waits == pytest.approx([1, 2])  # the live call that came later still went at NOW + 2
    assert clock.sleeps == pytest.approx([2, 1])  # the bulk call went after it, at NOW + 3


def test_bulk_callers_in_other_processes_do_not_delay_live_calls(process):
    rate = Rate(10)  # an interval of 0.1 s
    stop = threading.Event()
    taken = [0]

    def resync(limiter: SharedRateLimiter) -> None:
        with bulk_work():
            while not stop.is_set():
                limiter.acquire(SHOP_A)
                taken[0] += 1

    bulk = [threading.Thread(target=resync, args=(SharedRateLimiter(process(), "trustoo", rate),)) for _ in range(6)]
    for thread in bulk:
        thread.start()
    try:
        time.sleep(0.3)
        live = SharedRateLimiter(_connected(process()), "trustoo", rate)
        waits = []
        for _ in range(5):
            started = time.monotonic()
            live.acquire(SHOP_A)
            waits.append(time.monotonic() - started)
    finally:
        stop.set()
        for thread in bulk:
            thread.join()
    assert taken[0] > 0
    # Queued behind six bulk callers, each live call would wait 0.6 s or more.
    assert max(waits) < 0.35, waits


# --- several processes, the real clock ----------------------------------------------------------


def test_limiters_in_several_processes_share_one_bucket_and_keep_within_its_rate(process):
    rate, calls_each = Rate(20), 5
    limiters = [SharedRateLimiter(_connected(process()), "trustoo", rate) for _ in range(4)]
    sent: list[float] = []
    lock = threading.Lock()

    def send(limiter: SharedRateLimiter) -> None:
        for _ in range(calls_each):
            limiter.acquire(SHOP_A)
            with lock:
                sent.append(time.monotonic())

    threads = [threading.Thread(target=send, args=(limiter,)) for limiter in limiters for _ in range(2)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    sent.sort()
    assert len(sent) == 40
    assert sent[-1] - started >= 39 / rate.per_s - 0.05  # one bucket for all eight callers, not one each
    for first, last in itertools.combinations(range(len(sent)), 2):
        window = sent[last] - sent[first]
        # in any stretch of time: the burst, the rate's share of it, and one call of timer jitter
        assert last - first + 1 <= rate.burst + rate.per_s * window + 1


def _connected(engine: Engine) -> Engine:
    """A process that has been up a while: its first connection is not what is timed."""
    with engine.connect():
        return engine


def test_trustoo_clients_in_several_processes_never_meet_the_emulators_429(process):
    emulator = TrustooEmulator({SHOP_A: PRIVATE, SHOP_B: PRIVATE}, rate_limit_per_s=10, rate_limit_burst=3)
    answers: list[int] = []
    lock = threading.Lock()
    with serve_wsgi(emulator) as url:
        tokens = Tokens({SHOP_A: PRIVATE, SHOP_B: PRIVATE})
        apis = [
            TrustooApi(url, tokens, limiter=SharedRateLimiter(process(), "trustoo", Rate(10), max_wait_s=5))
            for _ in range(3)
        ]

        def client(api: TrustooApi) -> None:
            for _ in range(5):
                rating = api.get_rating(SHOP_A, is_all_rating=1)
                with lock:
                    answers.append(rating["review_count"])

        threads = [threading.Thread(target=client, args=(api,)) for api in apis for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for api in apis:
            api.close()
    emulator.close()
    assert len(answers) == 30
    assert emulator.rate_limited == {}
    assert {request.status for request in emulator.requests} == {200}


def test_wix_calls_through_the_shared_limit_stay_under_wixs_200_a_minute(process, clock):
    emulator = WixEmulator(clock=clock, seed=11)  # answers 429 past 200 calls in any sliding minute
    site = emulator.add_instance()
    review = emulator.add_review(site)
    limiter = SharedRateLimiter(process(), "wix", Rate.per_minute(200), clock=clock, sleep=clock.sleep)
    api = WixApi(
        "http://wix.test",
        emulator.app_id,
        emulator.app_secret,
        transport=httpx.WSGITransport(app=emulator),
        clock=clock,
        sleep=clock.sleep,
        limiter=limiter,
    )
    for _ in range(250):
        api.get_review(site, review["id"])

    assert {request.status for request in emulator.requests if "/reviews/" in request.path} == {200}
    assert clock.t - NOW == pytest.approx((250 - 20) / 3, abs=1)


# --- the app's clients take their turns from the shared buckets -----------------------------------


def _told_429(engine: Engine, platform: str, account: str) -> None:
    """Another process met a 429 for the account and paused it for a minute."""
    SharedRateLimiter(engine, platform, Rate(1)).pause(account, 60)


def test_the_apps_trustoo_client_waits_on_its_shops_shared_bucket(services, trustoo):
    _told_429(services.engine, "trustoo", TRUSTOO_PUBLIC_TOKEN)
    with pytest.raises(RateLimited):
        services.trustoo_api.get_rating(TRUSTOO_PUBLIC_TOKEN, is_all_rating=1)
    assert trustoo.requests == []


def test_the_apps_wix_client_waits_on_its_sites_shared_bucket(database_url):
    emulator = WixEmulator()
    site = emulator.add_instance()
    with serve_wsgi(emulator) as url:
        environ = {"WIX_APP_ID": emulator.app_id, "WIX_APP_SECRET": emulator.app_secret, "WIX_API_URL": url}
        services = build_services(load_settings({"DATABASE_URL": database_url, **environ}))
        try:
            _told_429(services.engine, "wix", site)
            assert services.review_requests is not None
            with pytest.raises(RateLimited):
                services.review_requests.query_review_requests(site, order_id="order-1")
        finally:
            services.engine.dispose()
    assert [request.path for request in emulator.requests] == ["/oauth2/token"]  # tokens are not counted


@pytest.mark.parametrize("limit, error", [("5", RateLimited), ("0", RetryableTargetError)])
def test_the_apps_commercetools_client_waits_on_its_projects_bucket_only_with_ctp_rate_limit(
    database_url, limit, error
):
    environ = {
        "DATABASE_URL": database_url,
        "CTP_PROJECT_KEY": "rate-limited-project",
        "CTP_CLIENT_ID": "client",
        "CTP_CLIENT_SECRET": "secret",
        "CTP_API_URL": "http://127.0.0.1:9",  # the discard port: whatever is sent finds nobody
        "CTP_AUTH_URL": "http://127.0.0.1:9",
        "CTP_RATE_LIMIT": limit,
    }
    services = build_services(load_settings(environ))
    try:
        _told_429(services.engine, "commercetools", "rate-limited-project")
        [target] = [target for target in services.targets if isinstance(target, CommercetoolsTarget)]
        with pytest.raises(error) as caught:
            target.check()
        assert type(caught.value) is error  # without a limit the call goes out, unreachable
    finally:
        services.engine.dispose()
