"""`reviewbridge doctor`: is this installation right? Each check says ✓ or ✗ and, for ✗, the fix.

The checks read only: a token, one listing call per platform account, the schema revision.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from app import db
from app.runtime import Runtime
from connectors.base import ReviewBridgeError

__all__ = ["PLATFORMS", "Check", "check_platform", "run_checks"]


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str  # what was found, or for a failure what to do about it


def run_checks(rt: Runtime) -> list[Check]:
    checks = list(_database(rt))
    if not all(check.ok for check in checks):
        return checks  # nothing else can be checked without the database
    for probe in (_secrets, _routes, _commercetools, _trustoo, _wix):
        checks.extend(probe(rt))
    return checks


def check_platform(rt: Runtime, platform: str) -> list[Check]:
    """One platform's checks alone (the admin page's "check" button); unconfigured says what to set."""
    probe, variables = PLATFORMS[platform]
    return list(probe(rt)) or [Check(f"{platform} connection", False, f"{platform} is not configured: set {variables}")]


def _database(rt: Runtime) -> Iterator[Check]:
    try:
        current, head = db.current_revision(rt.engine), db.head_revision(rt.engine)
    except SQLAlchemyError as exc:
        yield Check("database reachable", False, f"{type(exc).__name__}: check DATABASE_URL and that the server runs")
        return
    yield Check("database reachable", True, rt.engine.url.render_as_string(hide_password=True))
    yield Check(
        "database migrated",
        current == head,
        f"at {current}" if current == head else f"at {current}, newest {head}: run `reviewbridge db upgrade`",
    )


def _secrets(rt: Runtime) -> Iterator[Check]:
    settings = rt.settings
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
        else "unset: the admin API is off (set ADMIN_TOKEN, 16+ characters, to use it)",
    )


def _routes(rt: Runtime) -> Iterator[Check]:
    configured = {target.name for target in rt.targets}
    for source, target in rt.settings.routes:
        if target not in configured and source in rt.sources:
            yield Check(
                f"route {source} → {target}",
                False,
                f"{target} is not configured; see the README's variables for {target}, or change ROUTES",
            )
        elif source not in rt.sources:
            yield Check(f"route {source} → {target}", True, f"inactive: {source} is not configured")
        else:
            yield Check(f"route {source} → {target}", True, "source and target configured")


def _commercetools(rt: Runtime) -> Iterator[Check]:
    target = next((t for t in rt.targets if t.name == "commercetools"), None)
    if target is None:
        return
    yield _probe(
        "commercetools token, Custom Type and States",
        target.check,
        f"project {rt.settings.ctp_project_key}: token accepted, set-up present",
    )


def _trustoo(rt: Runtime) -> Iterator[Check]:
    if rt.trustoo_api is None:
        return
    for shop in rt.accounts_of("trustoo"):
        yield _probe(
            f"trustoo shop {shop}",
            lambda shop=shop: rt.trustoo_api.get_reviews(shop, page=1, page_size=1),
            "signed call accepted",
        )


def _wix(rt: Runtime) -> Iterator[Check]:
    if "wix" not in rt.sources:
        return
    api = rt.review_requests
    if api is None:
        yield Check(
            "wix app credentials", False, "set WIX_APP_ID and WIX_APP_SECRET: review requests and resync need them"
        )
        return
    for site in rt.accounts_of("wix"):
        yield _probe(
            f"wix site {site}",
            lambda site=site: next(rt.sources["wix"].iter_pages(site)),
            "token issued, reviews readable",
        )


#: Platform → (its checks, the variables that configure it).
PLATFORMS: dict[str, tuple[Callable[[Runtime], Iterator[Check]], str]] = {
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
