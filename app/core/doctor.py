"""`reviewbridge doctor`: is this installation right? Each check says ✓ or ✗ and, for ✗, the fix.

The checks read only: a token, one listing call per platform account, the schema revision.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from app.core import accounts, db, db_errors, trustoo_webhooks
from app.core.services import Services
from connectors.base import ReviewBridgeError, ReviewSource
from connectors.trustoo_api import TrustooApi

__all__ = ["PLATFORMS", "Check", "check_platform", "run_checks"]


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str  # what was found, or for a failure what to do about it


def run_checks(services: Services) -> list[Check]:
    checks = list(_database(services))
    if not all(check.ok for check in checks):
        return checks  # nothing else can be checked without the database
    for probe in (_secrets, _stored_credentials, _routes, _alerts, _commercetools, _trustoo, _wix):
        checks.extend(probe(services))
    return checks


def check_platform(services: Services, platform: str) -> list[Check]:
    """One platform's checks alone (the admin page's "check" button); unconfigured says what to set."""
    probe, variables = PLATFORMS[platform]
    return list(probe(services)) or [
        Check(f"{platform} connection", False, f"{platform} is not configured: set {variables}")
    ]


def _database(services: Services) -> Iterator[Check]:
    try:
        current, head = db.current_revision(services.engine), db.head_revision(services.engine)
    except SQLAlchemyError as exc:
        yield Check("database reachable", False, db_errors.explain(exc))
        return
    yield Check("database reachable", True, services.engine.url.render_as_string(hide_password=True))
    yield Check(
        "database migrated",
        current == head,
        f"at {current}" if current == head else f"at {current}, newest {head}: run `reviewbridge db upgrade`",
    )


def _secrets(services: Services) -> Iterator[Check]:
    settings = services.settings
    yield Check(
        "SECRET_KEY",
        bool(settings.secret_key),
        "set" if settings.secret_key else "set SECRET_KEY (16+ characters): stored credentials need it",
    )
    # The admin API is a choice, not a requirement: off is reported, not failed.
    yield Check(
        "ADMIN_TOKEN",
        True,
        "set: the admin API is on"
        if settings.admin_token
        else "unset: the admin API is off (set ADMIN_TOKEN, 32+ characters, to use it)",
    )


def _alerts(services: Services) -> Iterator[Check]:
    # Like the admin API, alerts are a choice: off is reported, not failed. Never the URL: it holds a token.
    settings = services.settings
    if not settings.alert_webhook_url:
        yield Check("alerts", True, "off: set ALERT_WEBHOOK_URL (Slack-compatible) to be told what needs a person")
        return
    watched = ["new dead letters"]
    if settings.alert_pending_age_s:
        watched.append(f"a queue later than {settings.alert_pending_age_s} s")
    if settings.alert_signature_failures:
        watched.append(
            f"{settings.alert_signature_failures}+ rejected webhooks within {settings.alert_signature_window_s} s"
        )
    links = f"links to {settings.public_url}" if settings.public_url else "set PUBLIC_URL for links (paths until then)"
    yield Check(
        "alerts",
        True,
        f"on: {', '.join(watched)}; at most one per {settings.alert_min_interval_s} s per subject; {links}",
    )


def _stored_credentials(services: Services) -> Iterator[Check]:
    """Credentials `accounts add` and OAuth stored: each must open with SECRET_KEY or a fallback."""
    if services.vault is None:
        return
    locked = accounts.unreadable(services.engine, services.vault)
    for source, account in locked:
        yield Check(f"stored credentials of {source} {account}", False, f"cannot be opened: {accounts.UNREADABLE_HINT}")
    if not locked:
        detail = "every one opens"
        if services.settings.secret_key_fallbacks:
            detail += "; `reviewbridge accounts rotate-keys` seals them with SECRET_KEY, then drop the fallbacks"
        yield Check("stored credentials", True, detail)


def _routes(services: Services) -> Iterator[Check]:
    configured = {target.name for target in services.targets}
    for source, target in services.settings.routes:
        if target not in configured and source in services.sources:
            yield Check(
                f"route {source} → {target}",
                False,
                f"{target} is not configured; see the README's variables for {target}, or change ROUTES",
            )
        elif source not in services.sources:
            yield Check(f"route {source} → {target}", True, f"inactive: {source} is not configured")
        else:
            yield Check(f"route {source} → {target}", True, "source and target configured")


def _commercetools(services: Services) -> Iterator[Check]:
    target = next((t for t in services.targets if t.name == "commercetools"), None)
    if target is None:
        return
    yield _probe(
        "commercetools token, Custom Type and States",
        target.check,
        f"project {services.settings.ctp_project_key}: token accepted, set-up present",
    )


def _trustoo(services: Services) -> Iterator[Check]:
    api = services.trustoo_api
    if api is None:
        return
    names = _names(services, "trustoo")
    for shop in services.accounts_of("trustoo"):
        yield _probe(
            f"trustoo shop {names.get(shop, shop)}",
            functools.partial(api.get_reviews, shop, page=1, page_size=1),
            "signed call accepted",
        )
        if services.settings.public_url:
            yield _webhooks_here(api, shop, services.settings.public_url, names.get(shop, shop))


def _names(services: Services, source: str) -> dict[str, str]:
    """The accounts of `source` as people know them (their labels), by id."""
    labels = services.account_labels().items()
    return {account: accounts.display_name(known) for (of, account), known in labels if of == source}


def _webhooks_here(api: TrustooApi, shop: str, public_url: str, name: str) -> Check:
    name = f"trustoo shop {name} webhooks"
    try:
        missing = trustoo_webhooks.unregistered(api.get_shop_webhooks(shop), public_url)
    except ReviewBridgeError as exc:
        return Check(name, False, str(exc))
    if missing:
        fix = f"run `reviewbridge trustoo webhooks register --shop {shop}`"
        return Check(name, False, f"{', '.join(missing)} not delivered to {public_url}: {fix}")
    return Check(name, True, f"the three review topics are delivered to {public_url}")


def _wix(services: Services) -> Iterator[Check]:
    source = services.review_sources().get("wix")
    if source is None:
        return
    api = services.review_requests
    if api is None:
        yield Check(
            "wix app credentials", False, "set WIX_APP_ID and WIX_APP_SECRET: review requests and resync need them"
        )
        return
    sites = services.accounts_of("wix")
    if not sites:
        yield Check(
            "wix sites",
            False,
            "no Wix site known yet: install the app on a site (its AppInstalled event adds it) "
            "or run `reviewbridge accounts add wix --instance ID`",
        )
    names = _names(services, "wix")
    for site in sites:
        yield _probe(
            f"wix site {names.get(site, site)}",
            functools.partial(_first_page, source, site),
            "token issued, reviews readable",
        )


def _first_page(source: ReviewSource, account: str) -> object:
    return next(iter(source.iter_pages(account)))


#: Platform → (its checks, the variables that configure it).
PLATFORMS: dict[str, tuple[Callable[[Services], Iterator[Check]], str]] = {
    "commercetools": (_commercetools, "CTP_PROJECT_KEY, CTP_CLIENT_ID and CTP_CLIENT_SECRET"),
    "trustoo": (
        _trustoo,
        "TRUSTOO_PUBLIC_TOKEN and TRUSTOO_PRIVATE_TOKEN (or add a shop with `reviewbridge accounts add trustoo`)",
    ),
    "wix": (_wix, "WIX_PUBLIC_KEY, WIX_APP_ID and WIX_APP_SECRET"),
}


def _probe(name: str, call: Callable[[], object], success: str) -> Check:
    try:
        call()
    except ReviewBridgeError as exc:
        return Check(name, False, str(exc))
    return Check(name, True, success)
