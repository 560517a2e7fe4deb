"""Browser fixtures: headless Chromium driving the admin page of a real ReviewBridge on loopback.

The service is the one `reviewbridge serve` runs: the app served over HTTP and the worker draining in
the same process, pointed at the commercetools emulator (set up first) and the Trustoo emulator, on
SQLite and on PostgreSQL. Chromium is Debian's (/usr/bin/chromium), launched once per session; each
test gets a fresh context and page. Without Chromium or Playwright the tests are skipped, unless
REQUIRE_BROWSER is set (CI sets it): then they fail.

Screenshots of every page go to build/screenshots/ (BROWSER_SCREENSHOTS_DIR overrides it).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask
from sqlalchemy import Engine, func, select

from app import create_app
from app.bootstrap import build_worker, services_of
from app.core.db import transaction
from app.core.models import InboxEvent
from connectors.commercetools_mapping import review_key
from connectors.http import RetryPolicy
from tests.builders import TRUSTOO_PUBLIC_TOKEN, trustoo_body, trustoo_headers, trustoo_review
from tests.cli import cli_runner
from tests.e2e.conftest import ADMIN_TOKEN, ct, ct_environ  # noqa: F401  (ct, ct_environ: shared fixtures)
from tests.fakes.commercetools import CommercetoolsEmulator
from tests.fakes.serving import serve_wsgi

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture says so: a skip, or a failure under REQUIRE_BROWSER
    expect = None

CHROMIUM = "/usr/bin/chromium"
#: Without the background-networking flags Chromium tries to reach Google, and is refused here.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LAPTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
MAX_ATTEMPTS = 2
WAIT_S = 20.0  # the longest any test waits for the worker or the page
REPO = Path(__file__).resolve().parents[2]


# --- the browser ------------------------------------------------------------------------------------


def _missing_browser() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install -e '.[dev]')"
    if not os.access(CHROMIUM, os.X_OK):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium chromium-driver)"
    return None


@pytest.fixture(scope="session")
def browser():
    missing = _missing_browser()
    if missing:
        if os.environ.get("REQUIRE_BROWSER"):
            pytest.fail(f"browser tests cannot run: {missing} (REQUIRE_BROWSER is set)")
        pytest.skip(f"browser tests skipped: {missing}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    folder = Path(os.environ.get("BROWSER_SCREENSHOTS_DIR") or REPO / "build" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page(browser, service):
    """A fresh browser context (no cookies) at laptop size, its relative URLs on the service."""
    context = browser.new_context(viewport=LAPTOP, base_url=service.url)
    context.set_default_timeout(WAIT_S * 1000)
    yield context.new_page()
    context.close()


def sign_in(page, token: str = ADMIN_TOKEN) -> None:
    """Through the login form, as an operator does; lands on the dashboard."""
    page.goto("/admin/login")
    page.fill("#login-form input[name=token]", token)
    page.click("#login-form button[type=submit]")
    expect(page.locator("#logout-form")).to_be_visible()


def reload_until_text(page, selector: str, text: str, timeout_s: float = WAIT_S) -> None:
    """Reload until `selector` reads `text` (the worker finishes in the background), with a deadline."""
    locator = page.locator(selector)
    deadline = time.monotonic() + timeout_s
    while locator.inner_text().strip() != text and time.monotonic() < deadline:
        page.wait_for_timeout(100)
        page.reload()
    expect(locator).to_have_text(text, timeout=1000)


# --- the service -----------------------------------------------------------------------------------


@dataclass
class Service:
    """ReviewBridge serving on loopback with its worker running, and the emulator it writes to."""

    url: str
    app: Flask
    engine: Engine
    emulator: CommercetoolsEmulator

    def deliver(self, *items: dict[str, Any], topic: str = "review-created") -> None:
        """A signed Trustoo webhook, over HTTP, as Trustoo sends it."""
        body = trustoo_body(*items)
        response = httpx.post(f"{self.url}/webhooks/trustoo/{topic}", content=body, headers=trustoo_headers(body))
        assert response.status_code == 200, response.text

    def event(self, review: dict[str, Any]) -> InboxEvent:
        """The one inbox row of a Trustoo review."""
        with transaction(self.engine) as session:
            return session.execute(select(InboxEvent).where(InboxEvent.subject_id == str(review["id"]))).scalar_one()

    def event_by_id(self, row_id: int) -> InboxEvent:
        with transaction(self.engine) as session:
            return session.get(InboxEvent, row_id)

    def counts(self) -> dict[tuple[str, str, str], int]:
        """(source, account, status) → events, read straight from the database."""
        with transaction(self.engine) as session:
            rows = session.execute(
                select(InboxEvent.source, InboxEvent.account, InboxEvent.status, func.count()).group_by(
                    InboxEvent.source, InboxEvent.account, InboxEvent.status
                )
            ).all()
        return {(source, account, status): count for source, account, status, count in rows}

    def wait_for_status(self, review: dict[str, Any], status: str) -> InboxEvent:
        """The review's inbox row once the worker has brought it to `status`."""

        def reached() -> InboxEvent | None:
            with transaction(self.engine) as session:
                row = session.execute(select(InboxEvent).where(InboxEvent.subject_id == str(review["id"]))).scalar()
            return row if row is not None and row.status == status else None

        return wait_until(reached, f"review {review['id']} to be {status}")

    def dead_letter(self) -> tuple[InboxEvent, dict[str, Any]]:
        """A review commercetools keeps refusing (503) until the event has used up its attempts.

        Every try of every attempt fails, the client's own quick retries included, and nothing
        more: once the event is dead the emulator answers normally again, so a replay succeeds."""
        review = trustoo_review()
        faults = MAX_ATTEMPTS * RetryPolicy().attempts
        self.emulator.inject(503, times=faults, method="GET", path_contains=f"/reviews/key={self.key(review)}")
        self.deliver(review)
        row = self.wait_for_status(review, "dead")
        refused = [r for r in self.emulator.requests if self.key(review) in r.path and r.status == 503]
        assert len(refused) == faults, f"{len(refused)} of the {faults} injected faults were used"
        return row, review

    @staticmethod
    def key(review: dict[str, Any]) -> str:
        """The commercetools key ReviewBridge gives a Trustoo review."""
        return review_key("trustoo", TRUSTOO_PUBLIC_TOKEN, str(review["id"]))


def wait_until(condition: Callable[[], Any], what: str, timeout_s: float = WAIT_S) -> Any:
    """Poll `condition` until it returns something truthy (returned), failing after the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout_s:.0f} s for {what}")
        time.sleep(0.05)


@pytest.fixture
def service_environ(ct_environ):  # noqa: F811  (the shared fixture, imported above)
    return ct_environ | {
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "MAX_ATTEMPTS": str(MAX_ATTEMPTS),
        "DRAIN_INTERVAL_S": "0.1",
        "WORKER_CONCURRENCY": "2",
    }


@pytest.fixture
def service(service_environ, ct) -> Iterator[Service]:  # noqa: F811
    """`reviewbridge serve` in-process: the app over HTTP, the worker draining, commercetools set up."""
    app = create_app(service_environ)
    result = cli_runner(app).invoke(args=["setup", "commercetools"])
    assert result.exit_code == 0, result.output
    services = services_of(app)
    worker = build_worker(services)
    services.on_stored.append(worker.wake)  # as `serve` does: a stored webhook starts a drain at once
    worker.start()
    try:
        with serve_wsgi(app) as url:
            yield Service(url=url, app=app, engine=services.engine, emulator=ct[0])
    finally:
        worker.stop()
        services.engine.dispose()
