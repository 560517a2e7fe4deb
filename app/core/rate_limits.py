"""Rate limits every process shares: one token bucket per platform and account, in the database.

A platform limits an account (a Trustoo shop, a Wix site, a commercetools project), not a process,
so the bucket is a row of `rate_limit` that every worker on every machine reserves from in one
statement, sleeping afterwards outside any transaction. The row holds one time, `free_at`, when
the next request may go (the "virtual scheduling" form of a token bucket): each request moves it
on by 1/rate, and a bucket left idle saves up to `burst` requests, so free_at trails now by at most
(burst - 1)/rate.

    live    free_at <= now + MAX_WAIT_S: go at max(free_at, now) and move free_at on
            further off: RateLimited, and the event is tried later without holding a thread
    bulk    free_at <= now: go now and move free_at on
            later: sleep until free_at and ask again; a live call that came meanwhile goes first
    429     free_at = max(free_at, now + Retry-After): every process waits, for that account only

Live work is what the worker's drain does for webhook events; it reserves its turn as it comes,
some seconds ahead if need be. Bulk work is resync, reconcile and the periodic poll, and their
entry points say so with `bulk_work()`. Bulk only ever takes a token that is free now, so it never
queues ahead of live work of the same account: it goes at what the live traffic leaves over, and a
live call waits at most one interval behind it.

Times are epoch seconds from `clock`, so the machines' clocks must agree (NTP). One that runs
behind only makes its own process more careful: free_at never moves back.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlalchemy import Engine, case, select

from app.core.db import insert_for, transaction
from app.core.models import RateLimitBucket, table
from connectors.base import RateLimited

__all__ = ["Rate", "SharedRateLimiter", "bulk_work"]

log = logging.getLogger(__name__)
_buckets = table(RateLimitBucket)

#: The longest a live caller sleeps for its turn. A sleeping drain thread is one the other shops
#: cannot use (and the rest of its batch, another shop's live review perhaps, waits behind it), so a
#: longer wait goes back to the queue, which holds no thread: one shop over its limit then holds at
#: most half a second's worth of its turns in threads.
MAX_WAIT_S = 0.5

_bulk = contextvars.ContextVar("reviewbridge_bulk_work", default=False)


@contextlib.contextmanager
def bulk_work() -> Iterator[None]:
    """The platform calls made inside are bulk work: they wait behind live work of the same account.

    A context variable, so it holds for the thread (or task) that entered it and nothing else; a
    decorator too (`@bulk_work()`)."""
    token = _bulk.set(True)
    try:
        yield
    finally:
        _bulk.reset(token)


@dataclass(frozen=True)
class Rate:
    """`per_s` requests a second, and up to `burst` at once after a quiet spell."""

    per_s: float
    burst: float = 1.0

    def __post_init__(self) -> None:
        if self.per_s <= 0 or self.burst < 1:
            raise ValueError("a rate limit needs per_s > 0 and burst >= 1")

    @classmethod
    def per_minute(cls, limit: int) -> Rate:
        """At most `limit` requests in any 60 s (Wix counts so): a burst of a tenth of them, the rest
        spread over the minute, since burst + 60 x (limit - burst)/60 is `limit`."""
        burst = max(1, limit // 10)
        return cls((limit - burst if limit > burst else limit) / 60.0, burst)


class SharedRateLimiter:
    """The `RateLimiter` of connectors/http.py for one platform's accounts, kept in the database.

    `clock` and `sleep` go together (a test gives both); they are not the services' clock, which a
    test may hold still."""

    def __init__(
        self,
        engine: Engine,
        platform: str,
        rate: Rate,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        max_wait_s: float = MAX_WAIT_S,
    ):
        self._engine = engine
        self._platform = platform
        self._clock = clock
        self._sleep = sleep
        self._max_wait_s = max_wait_s
        self._interval = 1.0 / rate.per_s
        self._saved_s = (rate.burst - 1) * self._interval  # how far free_at may trail now: the burst in hand

    def acquire(self, account: str) -> None:
        if _bulk.get():
            self._acquire_bulk(account)
        else:
            self._acquire_live(account)

    def pause(self, account: str, seconds: float) -> None:
        until = self._clock() + seconds
        statement = insert_for(self._engine, _buckets).values(platform=self._platform, account=account, free_at=until)
        statement = statement.on_conflict_do_update(
            index_elements=["platform", "account"],
            set_={"free_at": case((_buckets.c.free_at > until, _buckets.c.free_at), else_=until)},
        )
        with transaction(self._engine) as session:
            session.execute(statement)
        log.warning("%s %s asked us to slow down: no process calls it for %.1f s", self._platform, account, seconds)

    def _acquire_live(self, account: str) -> None:
        now = self._clock()
        free_at = self._reserve(account, now, ahead_s=self._max_wait_s)
        if free_at is None:
            wait = max(0.0, self._free_at(account, now) - now)  # 0 if a turn came free meanwhile: due at once
            raise RateLimited(
                f"{self._platform} {account}: no turn under its rate limit for {wait:.1f} s", retry_after=wait
            )
        self._sleep_until(free_at - self._interval)

    def _acquire_bulk(self, account: str) -> None:
        while True:
            now = self._clock()
            if self._reserve(account, now, ahead_s=0.0) is not None:
                return
            self._sleep_until(self._free_at(account, now))

    def _sleep_until(self, moment: float) -> None:
        # Read the clock again: the time the statements took is already part of the wait.
        wait = moment - self._clock()
        if wait > 0:
            self._sleep(wait)

    def _reserve(self, account: str, now: float, *, ahead_s: float) -> float | None:
        """Take the next turn if it comes within `ahead_s`: the bucket's new free_at (the turn is one
        interval before it, or now), or None and nothing taken. One statement, so it is atomic
        across processes; a bucket met for the first time is created full."""
        full = now - self._saved_s  # a free_at this early or earlier: the whole burst is in hand
        statement = insert_for(self._engine, _buckets).values(
            platform=self._platform, account=account, free_at=full + self._interval
        )
        statement = statement.on_conflict_do_update(
            index_elements=["platform", "account"],
            set_={"free_at": case((_buckets.c.free_at > full, _buckets.c.free_at), else_=full) + self._interval},
            where=_buckets.c.free_at <= now + ahead_s,
        ).returning(_buckets.c.free_at)
        with transaction(self._engine) as session:
            return session.execute(statement).scalar()

    def _free_at(self, account: str, now: float) -> float:
        query = select(_buckets.c.free_at).where(_buckets.c.platform == self._platform, _buckets.c.account == account)
        with transaction(self._engine) as session:
            free_at = session.execute(query).scalar()
        return now if free_at is None else free_at
