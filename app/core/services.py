"""The services every use case works with: settings, database, sources, targets, metrics, clock.

app/bootstrap.py builds one `Services` from the settings; the web app, the worker, the CLI, the
tests and the benchmarks all use that one object. Its tunables (routes, retries, the review
request delay) come from the settings; a test replaces what it needs with `dataclasses.replace`.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine

from app.config import Settings
from app.core.accounts import AccountLabel, enabled_accounts, labels
from app.core.intake import GroupCommit, Receipt
from app.core.metrics import Metrics
from app.core.review_requests import ReviewRequests
from app.core.vault import Vault
from connectors.base import ReviewSource, ReviewTarget, UnknownKey, WebhookSource
from connectors.trustoo_api import TrustooApi

__all__ = ["Services"]

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    engine: Engine
    vault: Vault | None  # None without SECRET_KEY: no credentials can be stored
    sources: Mapping[str, WebhookSource]
    targets: Sequence[ReviewTarget]
    metrics: Metrics
    clock: Callable[[], datetime]
    trustoo_api: TrustooApi | None = None
    review_requests: ReviewRequests | None = None  # orders → review requests (Wix)
    routes: Mapping[str, Sequence[str]] | None = None  # source → target names; None: every other target
    review_request_delay_s: int = 0
    max_attempts: int = 12
    retry_base_s: float = 2.0
    retry_cap_s: float = 3600.0
    rng: random.Random | None = None
    #: Called after a delivery is stored; the embedded worker uses it to start draining at once.
    on_stored: list[Callable[[], None]] = field(default_factory=list)
    #: Where the webhook views store deliveries: the inbox, committing concurrent deliveries together.
    inbox: GroupCommit = field(init=False)

    def __post_init__(self) -> None:
        self.inbox = GroupCommit(self.engine)

    def accounts_of(self, source: str) -> list[str]:
        """The accounts to read from a source: the environment's, then those added in the database."""
        env = [account for name, account in self.environment_accounts() if name == source]
        return list(dict.fromkeys(env + enabled_accounts(self.engine, source)))

    def environment_accounts(self) -> list[tuple[str, str]]:
        """(source, account) of the accounts the environment names: TRUSTOO_PUBLIC_TOKEN's shop."""
        token = self.settings.trustoo_public_token
        return [("trustoo", token)] if token else []

    def account_labels(self) -> dict[tuple[str, str], AccountLabel]:
        """Every known account, by (source, account), with the label people know it by (accounts.labels)."""
        return labels(self.engine, self.environment_accounts())

    def review_sources(self) -> dict[str, ReviewSource]:
        """The sources whose reviews can be read (resync, reconcile, poll), by name."""
        return {name: source for name, source in self.sources.items() if isinstance(source, ReviewSource)}

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
