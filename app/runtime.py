"""The collaborators one app owns (engine, connectors, targets, metrics, clock), built in create_app.

Views reach them through `runtime()`; the worker and the CLI are handed them directly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from flask import Flask, current_app
from sqlalchemy import Engine

from app.config import Settings
from app.intake import GroupCommit, Receipt
from app.metrics import Metrics
from app.vault import Vault
from connectors.base import ReviewTarget, UnknownKey, WebhookSource
from connectors.trustoo_api import TrustooApi

if TYPE_CHECKING:
    from app.pipeline import ReviewRequests

__all__ = ["Runtime", "runtime"]

_EXTENSION = "reviewbridge"
log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    vault: Vault | None  # None without SECRET_KEY: no credentials can be stored
    sources: dict[str, WebhookSource]
    targets: Sequence[ReviewTarget]
    metrics: Metrics
    clock: Callable[[], datetime]
    trustoo_api: TrustooApi | None = None
    review_requests: ReviewRequests | None = None
    #: Called after a delivery is stored; the embedded worker uses it to start draining at once.
    on_stored: list[Callable[[], None]] = field(default_factory=list)
    #: Where the webhook views store deliveries: the inbox, committing concurrent deliveries together.
    inbox: GroupCommit = field(init=False)

    def __post_init__(self) -> None:
        self.inbox = GroupCommit(self.engine)

    def init_app(self, app: Flask) -> None:
        app.extensions[_EXTENSION] = self

    def accounts_of(self, source: str) -> list[str]:
        """The accounts to read from a source: the environment's, then those added in the database."""
        from app.accounts import enabled_accounts

        env = [self.settings.trustoo_public_token] if source == "trustoo" and self.settings.trustoo_public_token else []
        return list(dict.fromkeys(env + enabled_accounts(self.engine, source)))

    def webhook_source(self, name: str) -> WebhookSource:
        source = self.sources.get(name)
        if source is None:
            raise UnknownKey(name, f"{name} webhooks are not configured on this service")
        return source

    def record_delivery(self, source: str, receipt: Receipt) -> None:
        """Count the delivery by outcome and wake whoever drains the queue."""
        outcome = "quarantined" if receipt.quarantined else ("stored" if receipt.stored else "duplicate")
        self.metrics.webhooks.labels(source, outcome).inc()
        if receipt.stored:
            for callback in self.on_stored:
                callback()


def runtime() -> Runtime:
    return current_app.extensions[_EXTENSION]
