"""A recording RateLimiter (connectors/http.py): every turn is granted at once, and who asked for
one and which account a 429 paused are remembered, so connector tests can pin what they ask of a
limiter without a database. The shared limiter itself is tested in
tests/integration/test_rate_limits.py."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

__all__ = ["RecordingLimiter"]


@dataclass
class RecordingLimiter:
    acquired: list[str] = field(default_factory=list)  # accounts, one per turn taken
    paused: list[tuple[str, float]] = field(default_factory=list)  # (account, seconds)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def acquire(self, account: str) -> None:
        with self._lock:
            self.acquired.append(account)

    def pause(self, account: str, seconds: float) -> None:
        with self._lock:
            self.paused.append((account, seconds))
