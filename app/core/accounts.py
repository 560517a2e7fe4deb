"""Platform accounts kept in the database: more Trustoo shops than the environment names, and the
OAuth tokens of platform mode. Secrets go in encrypted (app/core/vault.py) and never come out in a
listing; the environment's own shop always comes first.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, and_, delete, select, true, update

from app.core.db import accounts_in, affected, insert_for, transaction
from app.core.models import Account, InboxEvent, table
from app.core.vault import Vault, VaultError
from connectors.trustoo import TOPICS as TRUSTOO_TOPICS

__all__ = [
    "UNREADABLE_HINT",
    "AccountLabel",
    "AccountView",
    "Resealed",
    "SecretLookup",
    "Tokens",
    "add",
    "enabled_accounts",
    "is_authorized",
    "labels",
    "list_accounts",
    "remove",
    "reseal_all",
    "save_tokens",
    "secret",
    "set_enabled",
    "tokens",
    "unreadable",
]

log = logging.getLogger(__name__)
_accounts = table(Account)
_inbox = table(InboxEvent)
_CACHE_LIMIT = 10_000
#: The columns that hold sealed values (app/core/vault.py).
_SEALED = ("secret", "access_token", "refresh_token")
#: What to do about a stored credential that none of the keys opens.
UNREADABLE_HINT = (
    "add the SECRET_KEY it was sealed with to SECRET_KEY_FALLBACKS, or add the account again "
    "(`reviewbridge accounts add`)"
)


@dataclass(frozen=True)
class AccountView:
    """What `accounts list` shows: never a secret, only whether there is one."""

    source: str
    account: str
    label: str | None
    enabled: bool
    has_secret: bool
    has_tokens: bool
    token_expires_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True)
class AccountLabel:
    """An account as people read it: a label beside the id the platform gives it (a Trustoo shop's
    public token, a Wix site's instance id), which means little to anyone."""

    source: str
    account: str
    label: str


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str | None
    expires_at: datetime | None


def add(
    engine: Engine,
    vault: Vault | None,
    *,
    source: str,
    account: str,
    secret: str | None = None,
    label: str | None = None,
    now: datetime,
) -> None:
    """Add the account, or replace its secret and label; an account with a secret needs the vault."""
    if secret and vault is None:
        raise VaultError("SECRET_KEY is not set: credentials cannot be stored encrypted without it")
    sealed = vault.encrypt(secret) if secret and vault is not None else None
    values = {"label": label, "secret": sealed, "enabled": True, "updated_at": now}
    statement = insert_for(engine, _accounts).values(source=source, account=account, created_at=now, **values)
    statement = statement.on_conflict_do_update(index_elements=["source", "account"], set_=values)
    with transaction(engine) as session:
        session.execute(statement)


def set_enabled(engine: Engine, *, source: str, account: str, enabled: bool, now: datetime) -> None:
    """Record that a platform installed (or removed) us for an account; its credentials stay as they are."""
    values = {"enabled": enabled, "updated_at": now}
    statement = insert_for(engine, _accounts).values(source=source, account=account, created_at=now, **values)
    statement = statement.on_conflict_do_update(index_elements=["source", "account"], set_=values)
    with transaction(engine) as session:
        session.execute(statement)


def enabled_accounts(engine: Engine, source: str) -> list[str]:
    with transaction(engine) as session:
        return list(
            session.execute(
                select(_accounts.c.account)
                .where(_accounts.c.source == source, _accounts.c.enabled.is_(True))
                .order_by(_accounts.c.account)
            ).scalars()
        )


def remove(engine: Engine, source: str, account: str) -> bool:
    with transaction(engine) as session:
        result = session.execute(delete(_accounts).where(_accounts.c.source == source, _accounts.c.account == account))
        return affected(result) == 1


def list_accounts(engine: Engine, source: str | None = None) -> list[AccountView]:
    query = select(_accounts).order_by(_accounts.c.source, _accounts.c.account)
    if source is not None:
        query = query.where(_accounts.c.source == source)
    with transaction(engine) as session:
        rows = session.execute(query).mappings().all()
    return [
        AccountView(
            source=r["source"],
            account=r["account"],
            label=r["label"],
            enabled=r["enabled"],
            has_secret=r["secret"] is not None,
            has_tokens=r["access_token"] is not None,
            token_expires_at=r["token_expires_at"],
            updated_at=r["updated_at"],
        )
        for r in rows
    ]


def labels(engine: Engine, environment: Iterable[tuple[str, str]] = ()) -> dict[tuple[str, str], AccountLabel]:
    """Every account known, by (source, account): those the environment names, those in the account
    table and those the inbox holds events of, each with a label: the one stored with the account
    (`accounts add --label`), else the shop domain one of its Trustoo webhooks names, else a short
    form of its id. Ordered by source, then label.

    It costs a seek per account, not a read of the inbox: the page shows it on every view."""
    seen_in_inbox = accounts_in(engine.dialect.name, _inbox, lambda rows: true())
    with transaction(engine) as session:
        rows = session.execute(select(_accounts.c.source, _accounts.c.account, _accounts.c.label)).all()
        stored = {(source, account): label for source, account, label in rows}
        query = select(seen_in_inbox.c.source, seen_in_inbox.c.account)
        seen = [(source, account) for source, account in session.execute(query).all()]
        payloads = {
            (source, account): session.execute(
                select(_inbox.c.payload)
                .where(_inbox.c.source == source, _inbox.c.account == account, _inbox.c.topic.in_(_DOMAIN_TOPICS))
                .limit(1)
            ).scalar()
            for source, account in seen
            if source == "trustoo" and not stored.get((source, account))
        }
    domains = {pair: _shop_domain(payload) for pair, payload in payloads.items() if payload is not None}
    found = []
    for source, account in dict.fromkeys([*environment, *stored, *seen]):
        label = stored.get((source, account)) or domains.get((source, account)) or _short(account)
        found.append(AccountLabel(source, account, label))
    found.sort(key=lambda known: (known.source, known.label.lower(), known.account))
    return {(known.source, known.account): known for known in found}


#: Trustoo's webhook items carry the shop's domain (docs/platforms/trustoo.md §1.7); the reviews its
#: Open API lists for a resync or a poll do not.
_DOMAIN_TOPICS = tuple(TRUSTOO_TOPICS.values())


def _shop_domain(payload: str) -> str | None:
    try:
        item = json.loads(payload)
    except ValueError:  # a quarantined delivery keeps its body as it came
        return None
    domain = item.get("my_shopify_domain") if isinstance(item, dict) else None
    if not isinstance(domain, str) or not domain.strip():
        return None
    return domain.strip()[:255]  # as long as a stored label may be


def display_name(known: AccountLabel) -> str:
    """How a line of text names an account: its label when it has one of its own (stored, or a shop
    domain), else its whole id, which the short form would cut."""
    return known.account if known.label == _short(known.account) else known.label


def _short(account: str) -> str:
    """Enough of an id to tell accounts apart at a glance; the page shows the whole id beside it."""
    return account if len(account) <= 16 else f"{account[:10]}…"


def is_authorized(engine: Engine, source: str, account: str) -> bool:
    """The account holds OAuth tokens (it approved ReviewBridge) and is enabled."""
    row = _row(engine, source, account)
    return row is not None and row["access_token"] is not None and row["enabled"]


def secret(engine: Engine, vault: Vault | None, source: str, account: str) -> str | None:
    row = _row(engine, source, account)
    if row is None or row["secret"] is None or vault is None or not row["enabled"]:
        return None
    return vault.decrypt(row["secret"])


def save_tokens(engine: Engine, vault: Vault, *, source: str, account: str, tokens: Tokens, now: datetime) -> None:
    values = {
        "access_token": vault.encrypt(tokens.access_token),
        "refresh_token": vault.encrypt(tokens.refresh_token) if tokens.refresh_token else None,
        "token_expires_at": tokens.expires_at,
        "enabled": True,
        "updated_at": now,
    }
    statement = insert_for(engine, _accounts).values(source=source, account=account, created_at=now, **values)
    statement = statement.on_conflict_do_update(index_elements=["source", "account"], set_=values)
    with transaction(engine) as session:
        session.execute(statement)


def tokens(engine: Engine, vault: Vault | None, source: str, account: str) -> Tokens | None:
    row = _row(engine, source, account)
    if row is None or row["access_token"] is None or vault is None:
        return None
    return Tokens(
        access_token=vault.decrypt(row["access_token"]),
        refresh_token=vault.decrypt(row["refresh_token"]) if row["refresh_token"] else None,
        expires_at=row["token_expires_at"],
    )


@dataclass
class Resealed:
    resealed: int = 0  # accounts whose credentials are now sealed with SECRET_KEY
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (source, account) no key opens


def reseal_all(engine: Engine, vault: Vault, *, now: datetime) -> Resealed:
    """Seal every stored credential anew with SECRET_KEY (after a rotation, so the old key can go).
    An account none of the keys opens is left as it is and reported."""
    report = Resealed()
    for row in _sealed_rows(engine):
        sealed = {name: row[name] for name in _SEALED if row[name] is not None}
        try:
            fresh = {name: vault.reseal(value) for name, value in sealed.items()}
        except VaultError:
            report.unreadable.append((row["source"], row["account"]))
            continue
        # Only if nothing changed meanwhile: a token refreshed since was sealed with SECRET_KEY already.
        unchanged = and_(*(_accounts.c[name] == value for name, value in sealed.items()))
        key = (_accounts.c.source == row["source"]) & (_accounts.c.account == row["account"])
        with transaction(engine) as session:
            report.resealed += affected(
                session.execute(update(_accounts).where(key, unchanged).values(**fresh, updated_at=now))
            )
    return report


def unreadable(engine: Engine, vault: Vault) -> list[tuple[str, str]]:
    """The (source, account) pairs with a stored credential that none of the keys opens."""
    found = []
    for row in _sealed_rows(engine):
        try:
            for name in _SEALED:
                if row[name] is not None:
                    vault.decrypt(row[name])
        except VaultError:
            found.append((row["source"], row["account"]))
    return found


def _sealed_rows(engine: Engine):
    holds_one = (_accounts.c.secret.is_not(None)) | (_accounts.c.access_token.is_not(None))
    query = select(_accounts.c.source, _accounts.c.account, *(_accounts.c[name] for name in _SEALED)).where(holds_one)
    with transaction(engine) as session:
        return session.execute(query.order_by(_accounts.c.source, _accounts.c.account)).mappings().all()


def _row(engine: Engine, source: str, account: str):
    if "\x00" in account:  # no account stored holds one, and PostgreSQL refuses it even in a query
        return None
    with transaction(engine) as session:
        return (
            session.execute(select(_accounts).where(_accounts.c.source == source, _accounts.c.account == account))
            .mappings()
            .first()
        )


class SecretLookup:
    """`get(account)` → the secrets that verify its webhooks: the environment's, then the database's.

    The web process asks on every delivery, so found secrets are kept for a few seconds. Misses are
    not kept: an account added with the CLI verifies its next delivery, without a restart.
    """

    def __init__(
        self,
        engine: Engine,
        vault: Vault | None,
        source: str,
        *,
        environment: dict[str, Sequence[str]] | None = None,
        ttl_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._engine = engine
        self._vault = vault
        self._source = source
        self._environment = dict(environment or {})
        self._ttl_s = ttl_s
        self._clock = clock
        self._cache: dict[str, tuple[float, tuple[str, ...]]] = {}
        self._lock = threading.Lock()

    def get(self, account: str) -> tuple[str, ...] | None:
        if account in self._environment:
            return tuple(self._environment[account])
        with self._lock:
            cached = self._cache.get(account)
            if cached is not None and cached[0] > self._clock():
                return cached[1]
        try:
            stored = secret(self._engine, self._vault, self._source, account)
        except VaultError:
            # Its deliveries are refused (401) until the key is back; the reason belongs in the log.
            log.error("stored secret of %s account %s cannot be opened: %s", self._source, account, UNREADABLE_HINT)
            return None
        if stored is None:
            return None
        with self._lock:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[account] = (self._clock() + self._ttl_s, (stored,))
        return (stored,)
