"""A clock for a client and an emulator alike: epoch seconds that move only when told to."""

from __future__ import annotations


class Clock:
    """Sleeping moves the time on at once, and each sleep is remembered, so a test sees how long a
    client would have waited without waiting."""

    def __init__(self, t: float):
        self.t = t
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds
