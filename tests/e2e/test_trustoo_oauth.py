"""Trustoo OAuth2 platform mode: authorize URL → merchant consent → callback → Bearer calls."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import select

from app import create_app
from app.bootstrap import build_worker, services_of
from app.core.db import transaction
from app.core.models import InboxEvent
from tests.builders import TRUSTOO_PRIVATE_TOKEN, TRUSTOO_PUBLIC_TOKEN, trustoo_body, trustoo_headers
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


# --- webhooks signed with the client secret (TRUSTOO_WEBHOOK_KEY_SOURCE=client_secret) -------------

OTHER_SHOP = "second-shop-public-token=="


@pytest.fixture
def shared_secret(environ, target):
    """Two shops that approved ReviewBridge; Trustoo signs both shops' webhooks with our client secret."""
    emulator = TrustooEmulator(
        shops={TRUSTOO_PUBLIC_TOKEN: TRUSTOO_PRIVATE_TOKEN, OTHER_SHOP: "second-shop-private-token"},
        oauth_clients={CLIENT_ID: CLIENT_SECRET},
    )
    with serve_wsgi(emulator) as trustoo_url:
        app = create_app(
            {k: v for k, v in environ.items() if not k.startswith("TRUSTOO_")}
            | {
                "TRUSTOO_API_URL": trustoo_url,
                "TRUSTOO_CLIENT_ID": CLIENT_ID,
                "TRUSTOO_CLIENT_SECRET": CLIENT_SECRET,
                "TRUSTOO_WEBHOOK_KEY_SOURCE": "client_secret",
                "TRUSTOO_RATE_LIMIT": "100",
            },
            targets=[target],
        )
        with serve_wsgi(app) as base_url:
            for shop in (TRUSTOO_PUBLIC_TOKEN, OTHER_SHOP):
                url = cli_runner(app).invoke(args=["trustoo", "authorize-url", "--shop", shop, "--base-url", base_url])
                # The merchant of `shop` approves (the emulator takes its session from `shop`).
                consent = httpx.get(f"{url.output.strip()}&shop={quote(shop)}", follow_redirects=True, timeout=10)
                assert consent.status_code == 200, consent.text
            yield emulator, app
        services_of(app).engine.dispose()
    emulator.close()


def _deliver_signed_with_client_secret(app, emulator, review: dict, *, under: str) -> None:
    """The delivery Trustoo made for the review's own shop, sent under the public token `under`."""
    body = trustoo_body({**emulator.shop_info(TRUSTOO_PUBLIC_TOKEN), **review})
    headers = trustoo_headers(body, private_token=CLIENT_SECRET, public_token=under)
    response = app.test_client().post("/webhooks/trustoo/review-created", data=body, headers=headers)
    assert response.status_code == 200, response.data


def test_trustoo_shared_secret_delivery_under_another_shops_token_is_quarantined_and_never_applied(
    shared_secret, target, caplog
):
    emulator, app = shared_secret
    review = emulator.add_review(TRUSTOO_PUBLIC_TOKEN, content="written in the first shop")
    _deliver_signed_with_client_secret(app, emulator, review, under=OTHER_SHOP)
    build_worker(services_of(app)).drain()
    [row] = _rows(app)
    assert (row.account, row.status) == (OTHER_SHOP, "quarantined")
    assert f"shop {OTHER_SHOP} has no review {review['id']}" in row.last_error
    assert (
        f"names my_shopify_domain {emulator.shop_info(TRUSTOO_PUBLIC_TOKEN)['my_shopify_domain']!r}" in row.last_error
    )
    assert target.calls == []
    assert any("quarantined" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)


def test_trustoo_shared_secret_delivery_is_applied_as_the_header_shops_open_api_has_it(shared_secret, target):
    emulator, app = shared_secret
    review = emulator.add_review(TRUSTOO_PUBLIC_TOKEN, content="as Trustoo holds it")
    _deliver_signed_with_client_secret(
        app, emulator, review | {"content": "as the body says"}, under=TRUSTOO_PUBLIC_TOKEN
    )
    build_worker(services_of(app)).drain()
    [row] = _rows(app)
    assert row.status == "done"
    [applied] = target.reviews.values()
    assert (applied.account, applied.body) == (TRUSTOO_PUBLIC_TOKEN, "as Trustoo holds it")


def _rows(app) -> list[InboxEvent]:
    with transaction(services_of(app).engine) as session:
        return list(session.execute(select(InboxEvent).order_by(InboxEvent.id)).scalars())
