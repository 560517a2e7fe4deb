"""Webhook intake: verify on the raw bytes, store every event durably, then let the view answer.

This is the first rule of the design in code: a delivery that passes verification is in the
database, committed, before the platform hears "success". Nothing calls a platform here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from app import queue
from connectors.base import PayloadError, WebhookSource

__all__ = ["Receipt", "receive"]


@dataclass(frozen=True)
class Receipt:
    events: int  # events the delivery held (quarantined ones included)
    stored: int  # rows newly written; the rest were duplicates
    quarantined: int  # events stored as unusable, with their reason

    @property
    def duplicates(self) -> int:
        return self.events - self.stored


def receive(engine: Engine, source: WebhookSource, topic: str | None, headers: Mapping[str, str],
            body: bytes, *, now: datetime) -> Receipt:
    """Verify (raises WebhookRejected), split into events and store them in one transaction."""
    account = source.verify(headers, body)
    try:
        items = list(source.parse(account, topic, headers, body))
    except PayloadError as exc:
        # Keep the whole delivery, as text a person can read, under the reason.
        items = [PayloadError(exc.reason, payload=body.decode("utf-8", "backslashreplace"))]
    # Identical bad deliveries share one id, so a platform's retries do not pile up.
    quarantine_id = f"quarantine:{hashlib.sha256(body).hexdigest()[:40]}"
    stored = queue.enqueue(engine, source.name, account, items, now=now, quarantine_id=quarantine_id)
    quarantined = sum(isinstance(item, PayloadError) for item in items)
    return Receipt(events=len(items), stored=stored, quarantined=quarantined)
