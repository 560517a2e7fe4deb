"""Bulk decisions: replay or discard every event a filter matches, counted before a person confirms.

    count(filter)  ──▶  how many match, by status, and the newest of them (up_to_id)
    act(counted filter)  ──▶  replay or discard, bounded by up_to_id  ──▶  Outcome

The count and the action are two requests (the admin page shows the count and asks; an API client
may do the same), so the queue can move between them. Bounding the action by the newest counted
event keeps events received after the count out of it; what can still differ is the status of a
counted event (a worker claimed or settled it, another person replayed or discarded it), which is
why the caller compares Outcome.done with what the count said (Count.to_act_on). Events in
processing are left to the worker that holds them, as queue.replay and queue.discard always do.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import Engine, func, select

from app.core import queue
from app.core.db import transaction
from app.core.events import EventFilter
from app.core.models import REPLAYABLE_STATUSES, EventStatus, InboxEvent, table

__all__ = ["ACTIONS", "Action", "Count", "Outcome", "act", "count"]

Action = Literal["replay", "discard"]
ACTIONS: tuple[Action, ...] = ("replay", "discard")

_inbox = table(InboxEvent)
_PROCESSING = EventStatus.PROCESSING.value


@dataclass(frozen=True)
class Count:
    """What a filter matches now: events by status, and the filter bounded by the newest of them."""

    where: EventFilter  # up_to_id set: the counted events and no later one (0 when none matched)
    by_status: dict[str, int]

    @property
    def matching(self) -> int:
        return sum(self.by_status.values())

    @property
    def in_flight(self) -> int:
        """Held by a worker: neither action touches them."""
        return self.by_status.get(_PROCESSING, 0)

    @property
    def replayable(self) -> int:
        return sum(n for status, n in self.by_status.items() if status in REPLAYABLE_STATUSES)

    @property
    def discardable(self) -> int:
        return self.matching - self.in_flight

    def to_act_on(self, action: Action) -> int:
        return self.replayable if action == "replay" else self.discardable


@dataclass(frozen=True)
class Outcome:
    action: Action
    done: int  # events replayed or discarded
    in_flight: int  # counted events a worker held when the action ran, left to it


def count(engine: Engine, where: EventFilter) -> Count:
    """One grouped read: the matching events by status, and the newest matching id."""
    query = select(_inbox.c.status, func.count(), func.max(_inbox.c.id)).where(*where.where())
    with transaction(engine) as session:
        rows = session.execute(query.group_by(_inbox.c.status)).all()
    newest = max((top for _, _, top in rows), default=0)
    return Count(dataclasses.replace(where, up_to_id=newest), {status: n for status, n, _ in rows})


def act(engine: Engine, action: Action, where: EventFilter, *, reason: str | None = None, now: datetime) -> Outcome:
    """Replay or discard what a count matched (`where` as Count.where gave it, bounded by up_to_id).

    Raises ValueError without that bound (an unbounded action would also take events nobody
    counted), for a discard without a reason, or for an unknown action."""
    if where.up_to_id is None:
        raise ValueError("count the events first: the action is bounded by the newest event counted")
    if action == "replay":
        done = queue.replay_matching(engine, where, now=now)
    elif action == "discard":
        done = queue.discard_matching(engine, where, reason or "", now=now)
    else:
        raise ValueError(f"no bulk action {action!r}; actions: {', '.join(ACTIONS)}")
    return Outcome(action, done, count(engine, where).in_flight)
