"""/admin runs and connections against the emulators: resync and reconcile in the background, platform checks."""

from __future__ import annotations

import time

import pytest

from app import create_app
from tests.builders import TRUSTOO_PUBLIC_TOKEN
from tests.e2e.admin_page_helpers import post_form, sign_in, texts
from tests.e2e.conftest import ADMIN_TOKEN, PRODUCT


@pytest.fixture
def synced_page(ct_environ):
    """Signed in to the admin page of an app set up against the commercetools and Trustoo emulators."""
    app = create_app(ct_environ | {"ADMIN_TOKEN": ADMIN_TOKEN})
    assert app.test_cli_runner().invoke(args=["setup", "commercetools"]).exit_code == 0
    client = app.test_client()
    assert sign_in(client).status_code == 302
    yield client
    _wait_for_runs(client)  # no background thread may outlive the database and the emulators
    app.extensions["reviewbridge"].engine.dispose()


def _wait_for_runs(client, timeout_s: float = 10) -> str:
    """The runs page once nothing runs."""
    deadline = time.monotonic() + timeout_s
    while True:
        html = client.get("/admin/runs").get_data(as_text=True)
        if not texts(html, "tr", data_state="running"):
            return html
        assert time.monotonic() < deadline, f"a run is still going after {timeout_s} s"
        time.sleep(0.05)


def test_admin_page_resync_runs_in_the_background_and_shows_its_summary(synced_page, trustoo, ct):
    emulator, _ = ct
    for rating in (5, 4, 3):
        trustoo.add_review(TRUSTOO_PUBLIC_TOKEN, product_id=PRODUCT, rating=rating)
    response = post_form(synced_page, "/admin/runs", "/admin/runs/resync", {"source": "trustoo"})
    assert response.status_code == 302 and response.headers["Location"] == "/admin/runs"
    html = _wait_for_runs(synced_page)
    [row] = texts(html, "tr", cls="run", data_kind="resync", data_source="trustoo",
                  data_account=TRUSTOO_PUBLIC_TOKEN, data_state="done")
    assert "seen 3" in row and "created 3" in row
    assert len(emulator.reviews) == 3
    detail = synced_page.get("/admin/runs/1").get_data(as_text=True)
    assert texts(detail, id="run-state") == ["done"] and "created 3" in texts(detail, id="run-summary")[0]


def test_admin_page_runs_page_refreshes_itself_while_a_run_goes(synced_page, trustoo):
    for _ in range(3):
        trustoo.add_review(TRUSTOO_PUBLIC_TOKEN, product_id=PRODUCT, rating=5)
    trustoo.latency_s = 0.2
    post_form(synced_page, "/admin/runs", "/admin/runs/resync", {"source": "trustoo", "dry_run": "on"})
    html = synced_page.get("/admin/runs").get_data(as_text=True)
    assert texts(html, "tr", data_state="running") and '<meta http-equiv="refresh" content="2">' in html
    second = post_form(synced_page, "/admin/runs", "/admin/runs/resync", {"source": "trustoo"})
    assert second.status_code == 409 and "running already" in second.get_data(as_text=True)
    html = _wait_for_runs(synced_page)
    assert 'http-equiv="refresh" content="2"' not in html and "would write 3" in html


def test_admin_page_reconcile_reports_drift_rows(synced_page, trustoo):
    for _ in range(2):
        trustoo.add_review(TRUSTOO_PUBLIC_TOKEN, product_id=PRODUCT, rating=5)
    response = post_form(synced_page, "/admin/runs", "/admin/runs/reconcile", {"source": "trustoo"})
    assert response.status_code == 302
    html = _wait_for_runs(synced_page)
    [row] = texts(html, "tr", cls="run", data_kind="reconcile", data_state="done")
    assert "compared 2" in row and "missing 2" in row
    detail = synced_page.get("/admin/runs/1").get_data(as_text=True)
    assert len(texts(detail, "tr", cls="drift", data_kind="missing")) == 2


def test_admin_page_resync_that_fails_shows_the_error(synced_page):
    post_form(synced_page, "/admin/runs", "/admin/runs/resync", {"source": "trustoo",
                                                                 "account": "unknown-shop-public-token"})
    html = _wait_for_runs(synced_page)
    [row] = texts(html, "tr", cls="run", data_state="failed")
    assert "no credentials" in row


@pytest.mark.parametrize(("action", "data", "field"), [
    ("/admin/runs/resync", {}, "source"),
    ("/admin/runs/resync", {"source": "shopify"}, "source"),
    ("/admin/runs/resync", {"source": "trustoo", "since": "yesterday"}, "since"),
    ("/admin/runs/reconcile", {"source": "shopify"}, "source"),
])
def test_admin_page_run_with_bad_input_answers_400_naming_the_field(page, action, data, field):
    response = post_form(page, "/admin/runs", action, data)
    assert response.status_code == 400
    assert texts(response.get_data(as_text=True), id="error-message")[0].startswith(field)


def test_admin_page_reconcile_without_commercetools_answers_400_naming_the_variables(environ):
    app = create_app(environ | {"ADMIN_TOKEN": ADMIN_TOKEN}, targets=[])
    try:
        client = app.test_client()
        sign_in(client)
        response = post_form(client, "/admin/runs", "/admin/runs/reconcile", {"source": "trustoo"})
        assert response.status_code == 400 and "CTP_CLIENT_SECRET" in response.get_data(as_text=True)
    finally:
        app.extensions["reviewbridge"].engine.dispose()


def test_admin_page_unknown_run_answers_404(page):
    assert page.get("/admin/runs/42").status_code == 404


# --- connections ----------------------------------------------------------------------------------


def _check(client, platform: str) -> tuple[str, str]:
    response = post_form(client, "/admin/connections", f"/admin/connections/{platform}/check")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    [result] = texts(html, "div", cls="check-result", data_platform=platform)
    state = "ok" if texts(html, "div", cls="check-result ok", data_platform=platform) else "fail"
    return state, result


def test_admin_page_connection_checks_pass_against_the_emulators(synced_page):
    assert _check(synced_page, "commercetools")[0] == "ok"
    state, result = _check(synced_page, "trustoo")
    assert state == "ok" and TRUSTOO_PUBLIC_TOKEN in result


def test_admin_page_connection_check_names_the_variable_and_never_shows_the_secret(ct_environ):
    app = create_app(ct_environ | {"ADMIN_TOKEN": ADMIN_TOKEN, "CTP_CLIENT_SECRET": "not-the-secret-at-all"})
    try:
        client = app.test_client()
        sign_in(client)
        state, result = _check(client, "commercetools")
        assert state == "fail" and "CTP_CLIENT_SECRET" in result and "401" in result
        assert "not-the-secret-at-all" not in result
    finally:
        app.extensions["reviewbridge"].engine.dispose()


def test_admin_page_connection_check_of_an_unconfigured_platform_says_what_to_set(page):
    state, result = _check(page, "wix")
    assert state == "fail" and "WIX_PUBLIC_KEY" in result


def test_admin_page_connection_check_of_an_unknown_platform_answers_404(page):
    response = post_form(page, "/admin/connections", "/admin/connections/shopify/check")
    assert response.status_code == 404
