"""connectors/cache.py: the bounded, expiring cache of platform answers (a Wix contact's e-mail)."""

from __future__ import annotations

import threading

import pytest

from connectors.base import RetryableTargetError
from connectors.cache import ExpiringCache
from tests.fakes.clock import Clock


class Asker:
    """A platform call that counts how often it is made and answers from a table."""

    def __init__(self, answers: dict[str, str | None]):
        self.answers = answers
        self.asked: list[str] = []

    def __call__(self, key: str):
        def ask() -> str | None:
            self.asked.append(key)
            return self.answers[key]

        return ask


def test_cache_answer_is_kept_and_not_asked_again():
    cache: ExpiringCache[str, str | None] = ExpiringCache(clock=Clock(0))
    ask = Asker({"c-1": "dana.levi@example.com"})

    assert cache.get("c-1", ask("c-1")) == cache.get("c-1", ask("c-1")) == "dana.levi@example.com"
    assert ask.asked == ["c-1"]


def test_cache_none_is_an_answer_and_is_kept():
    cache: ExpiringCache[str, str | None] = ExpiringCache(clock=Clock(0))
    ask = Asker({"gone": None})

    assert cache.get("gone", ask("gone")) is None and cache.get("gone", ask("gone")) is None
    assert ask.asked == ["gone"]


def test_cache_answer_expires_after_its_time():
    clock = Clock(1000.0)
    cache: ExpiringCache[str, str | None] = ExpiringCache(ttl_s=3600, clock=clock)
    ask = Asker({"c-1": "dana.levi@example.com"})
    cache.get("c-1", ask("c-1"))

    clock.t += 3599.9
    cache.get("c-1", ask("c-1"))
    clock.t += 0.1
    cache.get("c-1", ask("c-1"))

    assert ask.asked == ["c-1", "c-1"]


def test_cache_full_drops_the_least_recently_used():
    cache: ExpiringCache[str, str | None] = ExpiringCache(max_entries=2, clock=Clock(0))
    ask = Asker({"a": "a@example.com", "b": "b@example.com", "c": "c@example.com"})
    cache.get("a", ask("a"))
    cache.get("b", ask("b"))
    cache.get("a", ask("a"))  # a is now the most recently used

    cache.get("c", ask("c"))  # b goes
    cache.get("a", ask("a"))
    cache.get("b", ask("b"))

    assert ask.asked == ["a", "b", "c", "b"] and len(cache) == 2


def test_cache_error_is_not_kept():
    cache: ExpiringCache[str, str | None] = ExpiringCache(clock=Clock(0))

    def busy() -> str | None:
        raise RetryableTargetError("Wix GET /contacts/v4/contacts/c-1: HTTP 429", status=429)

    with pytest.raises(RetryableTargetError):
        cache.get("c-1", busy)
    assert cache.get("c-1", lambda: "dana.levi@example.com") == "dana.levi@example.com"


def test_cache_stays_bounded_under_many_threads():
    cache: ExpiringCache[tuple[int, int], str | None] = ExpiringCache(max_entries=50, clock=Clock(0))

    def work(thread: int) -> None:
        for i in range(200):
            assert cache.get((thread, i % 80), lambda i=i: f"{thread}-{i % 80}@example.com") == (
                f"{thread}-{i % 80}@example.com"
            )

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(cache) == 50


@pytest.mark.parametrize(("max_entries", "ttl_s"), [(0, 3600.0), (10, 0.0)])
def test_cache_without_room_or_time_fails_at_construction(max_entries, ttl_s):
    with pytest.raises(ValueError):
        ExpiringCache(max_entries=max_entries, ttl_s=ttl_s)
