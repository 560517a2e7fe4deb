"""Webhook intake: verify on the raw bytes, store every event durably, then let the view answer.

This is the first rule of the design in code: a delivery that passes verification is in the
database, committed, before the platform hears "success". Nothing calls a platform here.

Deliveries that arrive together are committed together (`GroupCommit`): a commit costs the same
for one row as for fifty, and under load it is most of what an acknowledgement waits for.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from app.core import queue_store
from connectors.base import PayloadError, WebhookSource

__all__ = ["GroupCommit", "Receipt", "receive"]


@dataclass(frozen=True)
class Receipt:
    events: int  # events the delivery held (quarantined ones included)
    stored: int  # rows newly written; the rest were duplicates
    quarantined: int  # events stored as unusable, with their reason

    @property
    def duplicates(self) -> int:
        return self.events - self.stored


def receive(
    inbox: GroupCommit,
    source: WebhookSource,
    topic: str | None,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: datetime,
) -> Receipt:
    """Verify (raises WebhookRejected), split into events and store them, committed, before returning."""
    account = source.verify(headers, body)
    try:
        items = list(source.parse(account, topic, headers, body))
    except PayloadError as exc:
        # Keep the whole delivery, as text a person can read, under the reason.
        items = [PayloadError(exc.reason, payload=body.decode("utf-8", "backslashreplace"))]
    # Identical bad deliveries share one id, so a platform's retries do not pile up.
    quarantine_id = f"quarantine:{hashlib.sha256(body).hexdigest()[:40]}"
    stored = inbox.store(queue_store.inbox_rows(source.name, account, items, now=now, quarantine_id=quarantine_id))
    quarantined = sum(isinstance(item, PayloadError) for item in items)
    return Receipt(events=len(items), stored=stored, quarantined=quarantined)


class GroupCommit:
    """Stores deliveries from many request threads, committing those that arrive together at once.

    The first thread to arrive while no commit is under way leads: it takes every delivery waiting
    (its own included) and commits them in one transaction; threads arriving meanwhile wait, and
    one of them leads the next commit. Every caller returns only once its own rows are committed,
    or with the error that kept them out. A failed group is retried one delivery at a time, so one
    bad delivery fails only its own request.
    """

    def __init__(self, engine: Engine, *, max_group: int = 64):
        self.engine = engine
        self._max_group = max_group
        self._changed = threading.Condition()
        self._waiting: list[_Delivery] = []
        self._committing = False

    def store(self, rows: list[dict]) -> int:
        """Commit one delivery's inbox rows; return how many were new (not duplicates)."""
        mine = _Delivery(rows)
        with self._changed:
            self._waiting.append(mine)
        while True:
            with self._changed:
                while self._committing and not mine.finished:
                    self._changed.wait()
                if mine.finished:
                    return mine.outcome()
                self._committing = True
                group, self._waiting = self._waiting[: self._max_group], self._waiting[self._max_group :]
            try:
                self._commit(group)
            finally:
                with self._changed:
                    for delivery in group:  # only if _commit itself was interrupted
                        if not delivery.finished:
                            delivery.finish(error=RuntimeError("the group commit was interrupted"))
                    self._committing = False
                    self._changed.notify_all()

    def _commit(self, group: list[_Delivery]) -> None:
        try:
            counts = queue_store.store(self.engine, [delivery.rows for delivery in group])
        except Exception as exc:
            if len(group) == 1:
                group[0].finish(error=exc)
                return
            for delivery in group:  # find the one that failed; the others are stored
                self._commit([delivery])
            return
        for delivery, stored in zip(group, counts, strict=True):
            delivery.finish(stored=stored)


class _Delivery:
    def __init__(self, rows: list[dict]):
        self.rows = rows
        self.finished = False
        self._stored = 0
        self._error: Exception | None = None

    def finish(self, *, stored: int = 0, error: Exception | None = None) -> None:
        self._stored, self._error, self.finished = stored, error, True

    def outcome(self) -> int:
        if self._error is not None:
            raise self._error
        return self._stored
