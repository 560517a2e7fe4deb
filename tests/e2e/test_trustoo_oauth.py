"""Trustoo OAuth2 platform mode: authorize URL → merchant consent → callback → Bearer calls."""

from __future__ import annotations

import httpx
import pytest

from app import create_app
from app.bootstrap import services_of
from tests.builders import TRUSTOO_PRIVATE_TOKEN, TRUSTOO_PUBLIC_TOKEN
from tests.cli import cli_runner
from tests.fakes.serving import serve_wsgi
from tests.fakes.trustoo import TrustooEmulator

CLIENT_ID, CLIENT_SECRET = "rb-platform-client", "rb-platform-secret-0123"


@pytest.fixture
def platform(environ):
    emulator = TrustooEmulator(
        shops={TRUSTOO_PUBLIC_TOKEN: TRUSTOO_PRIVATE_TOKEN}, oauth_clients={CLIENT_ID: CLIENT_SECRET}
    )
    with serve_wsgi(emulator) as trustoo_url:
        app = create_app(
            {k: v for k, v in environ.items() if not k.startswith("TRUSTOO_")}
            | {"TRUSTOO_API_URL": trustoo_url, "TRUSTOO_CLIENT_ID": CLIENT_ID, "TRUSTOO_CLIENT_SECRET": CLIENT_SECRET}
        )
        with serve_wsgi(app) as base_url:
            yield emulator, app, base_url
        services_of(app).engine.dispose()
    emulator.close()


def test_trustoo_merchant_approval_stores_tokens_and_calls_go_out_with_bearer(platform):
    emulator, app, base_url = platform
    runner = cli_runner(app)
    url = runner.invoke(
        args=["trustoo", "authorize-url", "--shop", TRUSTOO_PUBLIC_TOKEN, "--base-url", base_url]
    ).output.strip()
    answer = httpx.get(url, follow_redirects=True, timeout=10)  # the merchant clicks "approve"
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": "connected", "source": "trustoo", "shop": TRUSTOO_PUBLIC_TOKEN}
    listing = runner.invoke(args=["accounts", "list"]).output
    assert "oauth tokens" in listing
    result = runner.invoke(args=["trustoo", "webhooks", "list", "--shop", TRUSTOO_PUBLIC_TOKEN])
    assert result.exit_code == 0, result.output
    last = emulator.requests[-1]
    assert last.headers.get("Authorization", "").startswith("Bearer ") and "Sign" not in last.headers


def test_trustoo_callback_with_a_forged_state_is_refused(platform):
    _, _, base_url = platform
    answer = httpx.get(f"{base_url}/oauth/trustoo/callback", params={"code": "x", "state": "forged"})
    assert answer.status_code == 400 and "state" in answer.json()["message"]


def test_trustoo_callback_when_the_merchant_declines_says_so(platform):
    _, _, base_url = platform
    answer = httpx.get(f"{base_url}/oauth/trustoo/callback", params={"error": "access_denied"})
    assert answer.status_code == 400 and "access_denied" in answer.json()["message"]
