"""End-to-end fixtures: the commercetools emulator on loopback and an app pointed at it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app import create_app
from app.bootstrap import services_of
from tests.cli import cli_runner
from tests.fakes.commercetools import CommercetoolsEmulator
from tests.fakes.serving import serve_wsgi
from tests.fakes.wix import WixEmulator
from tests.integration.conftest import Clock

PRODUCT = "7982301249581"
ADMIN_TOKEN = "admin-token-7Hq2Lx9Vb4Nc8Rt3Wz6Ym1"


@pytest.fixture
def ct():
    """(emulator, base URL), with one product whose key is the builders' Trustoo product id."""
    emulator = CommercetoolsEmulator(
        project_key="reviewbridge-test", client_id="ct-client", client_secret="ct-secret-0123456789"
    )
    emulator.add_product(key=PRODUCT)
    with serve_wsgi(emulator) as url:
        yield emulator, url


@pytest.fixture
def ct_environ(environ, ct):
    _, url = ct
    return environ | {
        "CTP_PROJECT_KEY": "reviewbridge-test",
        "CTP_CLIENT_ID": "ct-client",
        "CTP_CLIENT_SECRET": "ct-secret-0123456789",
        "CTP_API_URL": url,
        "CTP_AUTH_URL": url,
        "TRUSTOO_RATE_LIMIT": "100",
    }


@pytest.fixture
def admin_app(environ, target):
    """The app with the admin API on (ADMIN_TOKEN) and the recording target."""
    app = create_app(environ | {"ADMIN_TOKEN": ADMIN_TOKEN}, targets=[target])
    app.config["TESTING"] = True
    yield app
    services_of(app).engine.dispose()


@pytest.fixture
def clock():
    """Today's time, moved on by the test. Not a fixed date: the test client drops a cookie whose
    Expires has passed by its own clock; whole seconds, as cookies keep them."""
    return Clock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def make_admin_app(environ, target, clock):
    """Apps with the admin page and API on, each with variables of its own (a rotated ADMIN_TOKEN, say),
    on the test's database and clock: as several web processes or a restart are."""
    apps = []

    def make(**variables: str):
        app = create_app(environ | {"ADMIN_TOKEN": ADMIN_TOKEN} | variables, targets=[target], clock=clock)
        app.config["TESTING"] = True
        apps.append(app)
        return app

    yield make
    for app in apps:
        services_of(app).engine.dispose()


@pytest.fixture
def admin(admin_app):
    return admin_app.test_client()


@pytest.fixture
def page(admin_app):
    """A browser signed in to the admin page of admin_app (tests/e2e/admin_page_helpers.py sends its forms)."""
    from tests.e2e.admin_page_helpers import sign_in

    client = admin_app.test_client()
    assert sign_in(client).status_code == 302
    return client


@pytest.fixture
def page_services(admin_app):
    return services_of(admin_app)


@pytest.fixture
def synced_app(ct_environ):
    """ReviewBridge with commercetools configured and set up."""
    app = create_app(ct_environ)
    assert cli_runner(app).invoke(args=["setup", "commercetools"]).exit_code == 0
    yield app
    services_of(app).engine.dispose()


@pytest.fixture
def wix():
    """The Wix emulator on loopback: (emulator, base URL, instance id)."""
    emulator = WixEmulator()
    with serve_wsgi(emulator) as url:
        yield emulator, url, emulator.add_instance()


def wix_settings(emulator: WixEmulator, url: str) -> dict[str, str]:
    """The settings that point the app at the served Wix emulator: its app, API and webhook key."""
    return {
        "WIX_APP_ID": emulator.app_id,
        "WIX_APP_SECRET": emulator.app_secret,
        "WIX_API_URL": url,
        "WIX_PUBLIC_KEY": emulator.public_key_pem.replace("\n", "\\n"),
    }
