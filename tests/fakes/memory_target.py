"""A recording in-memory ReviewTarget: the stand-in for commercetools until its emulator exists.

It keeps one review per key, bumps a version on every write, records every call, and can be told
to fail the next calls (`fail_next`) or to take time (`latency_s`), so tests can pin retries,
idempotency and concurrency without a network.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from connectors.base import Review, TargetError, TargetRef


@dataclass
class RecordingTarget:
    name: str = "commercetools"
    idempotent: bool = True
    latency_s: float = 0.0
    reviews: dict[str, Review] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    _failures: list[TargetError] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @staticmethod
    def key_for(review: Review) -> str:
        digest = hashlib.sha256(f"{review.source}\x00{review.account}\x00{review.source_id}".encode()).hexdigest()
        return f"{review.source}-{digest[:32]}"

    def fail_next(self, *errors: TargetError) -> None:
        with self._lock:
            self._failures.extend(errors)

    def upsert(self, review: Review, known: TargetRef | None = None, *, in_doubt: bool = False) -> TargetRef:
        key = self.key_for(review)
        self._enter("upsert", key)
        with self._lock:
            self.reviews[key] = review
            self.versions[key] = self.versions.get(key, 0) + 1
            return TargetRef(key=key, id=f"id-{key}", version=self.versions[key])

    def delete(self, ref: TargetRef) -> None:
        self._enter("delete", ref.key)
        with self._lock:
            self.reviews.pop(ref.key, None)

    def check(self) -> None:
        """Nothing to set up in memory."""

    def _enter(self, operation: str, key: str) -> None:
        if self.latency_s:
            time.sleep(self.latency_s)
        with self._lock:
            if self._failures:
                raise self._failures.pop(0)
            self.calls.append((operation, key))

    def writes_per_key(self) -> Counter:
        with self._lock:
            return Counter(key for _, key in self.calls)
