"""A small in-memory cache of platform answers: bounded, thread-safe, each answer kept for a while.

Only for what may be asked again at no harm: each process holds its own copy, so nothing here is
something processes must agree on (rate limits and leases live in the database). An error is never
kept: the next caller asks again.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["ExpiringCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ExpiringCache(Generic[K, V]):
    """At most `max_entries` answers, each for `ttl_s` seconds of `clock`; the least recently used
    goes first when it is full. None is an answer like any other (a "not found" is kept too)."""

    def __init__(
        self, *, max_entries: int = 10_000, ttl_s: float = 3600.0, clock: Callable[[], float] = time.monotonic
    ):
        if max_entries < 1 or ttl_s <= 0:
            raise ValueError("an ExpiringCache needs max_entries >= 1 and ttl_s > 0")
        self._max = max_entries
        self._ttl = ttl_s
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()  # key -> (expires at, answer)
        self._lock = threading.Lock()

    def get(self, key: K, compute: Callable[[], V]) -> V:
        """The kept answer for `key`, else `compute()`'s, kept from now on. `compute` runs outside the
        lock, so a slow platform call holds up no other key; two threads asking for one key at once
        may both compute it, which costs a call and nothing else."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                if entry[0] > self._clock():
                    self._entries.move_to_end(key)
                    return entry[1]
                del self._entries[key]
        value = compute()
        with self._lock:
            self._entries[key] = (self._clock() + self._ttl, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return value

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
