"""backoff_delay: exponential ceiling, full jitter, Retry-After as a floor, everything capped.

A seeded random.Random keeps every draw reproducible."""

from __future__ import annotations

import random

import pytest

from app.core.queue import backoff_delay

BASE_S = 2.0
CAP_S = 60.0
DRAWS = 500


def _draws(attempt: int, *, seed: int = 1234, retry_after_s: float | None = None) -> list[float]:
    rng = random.Random(seed)
    return [
        backoff_delay(attempt, base_s=BASE_S, cap_s=CAP_S, retry_after_s=retry_after_s, rng=rng) for _ in range(DRAWS)
    ]


@pytest.mark.parametrize("attempt", range(1, 10))
def test_backoff_full_jitter_stays_within_zero_and_ceiling(attempt):
    ceiling = min(CAP_S, BASE_S * 2 ** (attempt - 1))

    assert all(0 <= delay <= ceiling for delay in _draws(attempt))


@pytest.mark.parametrize("attempt, ceiling", [(1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0), (5, 32.0)])
def test_backoff_ceiling_doubles_per_attempt(attempt, ceiling):
    draws = _draws(attempt)

    # Full jitter spreads over the whole range: the largest of 500 draws lies near the ceiling.
    assert 0.95 * ceiling < max(draws) <= ceiling
    assert min(draws) < 0.05 * ceiling


@pytest.mark.parametrize("attempt", [6, 7, 12, 100])
def test_backoff_ceiling_is_capped(attempt):
    draws = _draws(attempt)

    assert 0.95 * CAP_S < max(draws) <= CAP_S


def test_backoff_same_seed_gives_same_delays():
    assert _draws(4, seed=99) == _draws(4, seed=99)


def test_backoff_first_attempt_uses_base_as_ceiling():
    assert max(_draws(1)) <= BASE_S


def test_backoff_retry_after_is_a_minimum():
    assert all(delay >= 30.0 for delay in _draws(1, retry_after_s=30.0))


def test_backoff_retry_after_below_jitter_keeps_jitter():
    draws = _draws(5, retry_after_s=1.0)

    assert min(draws) >= 1.0 and max(draws) > 30.0


def test_backoff_retry_after_above_cap_waits_exactly_cap():
    assert set(_draws(3, retry_after_s=CAP_S * 10)) == {CAP_S}


def test_backoff_zero_retry_after_changes_nothing():
    assert _draws(3, retry_after_s=0.0) == _draws(3)
