"""Faults a test schedules on an emulator: each is used by the next `times` requests it matches."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

__all__ = ["FaultSchedule"]


class _Countable(Protocol):
    times: int


F = TypeVar("F", bound=_Countable)


class FaultSchedule(Generic[F]):
    def __init__(self) -> None:
        self._faults: list[F] = []

    def add(self, fault: F) -> None:
        self._faults.append(fault)

    def clear(self) -> None:
        self._faults.clear()

    def take(self, matches: Callable[[F], bool]) -> F | None:
        """The first scheduled fault this request matches, used up once; None when there is none."""
        for fault in self._faults:
            if matches(fault):
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None
