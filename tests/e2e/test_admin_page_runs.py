"""/admin runs and connections against the emulators: resyncs and reconciles the worker runs, platform checks."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import update

from app import create_app
from app.bootstrap import build_worker, services_of
from app.core import runs
from app.core.db import transaction
from app.core.models import Run
from tests.builders import TRUSTOO_PUBLIC_TOKEN, trustoo_review
from tests.cli import cli_runner
from tests.e2e.admin_page_helpers import deliver, post_form, sign_in, texts
from tests.e2e.conftest import ADMIN_TOKEN, PRODUCT


@pytest.fixture
def synced_page_app(ct_environ):
    """An app set up against the commercetools and Trustoo emulators, with the admin page on."""
    app = create_app(ct_environ | {"ADMIN_TOKEN": ADMIN_TOKEN})
    assert cli_runner(app).invoke(args=["setup", "commercetools"]).exit_code == 0
    yield app
    services_of(app).engine.dispose()


@pytest.fixture
def synced_page(synced_page_app):
    """Signed in to the admin page of synced_page_app."""
    client = synced_page_app.test_client()
    assert sign_in(client).status_code == 302
    return client


@pytest.fixture
def worker(synced_page_app):
    """The worker of the synced app; tests call its jobs (run_queued_runs) where a worker process would."""
    return build_worker(services_of(synced_page_app))


def _run_queued(client, worker) -> str:
    """The runs page once the worker has run what is queued: nothing runs any more."""
    worker.run_queued_runs()
    html = client.get("/admin/runs").get_data(as_text=True)
    assert not texts(html, "tr", data_state="running")
    return html


def test_admin_page_resync_is_queued_for_the_worker_and_shows_its_summary(synced_page, worker, trustoo, ct):
    emulator, _ = ct
    for rating in (5, 4, 3):
        trustoo.add_review(TRUSTOO_PUBLIC_TOKEN, product_id=PRODUCT, rating=rating)
    response = post_form(synced_page, "/admin/runs", "/admin/runs/resync", {"source": "trustoo"})
    assert response.status_code == 302 and response.headers["Location"] == "/admin/runs"
    queued = synced_page.get("/admin/runs").get_data(as_text=True)
    [row] = texts(queued, "tr", cls="run", data_kind="resync", data_state="running")
    assert "queued" in row and "waiting for a worker" in row
    assert emulator.reviews == {}, "the web process calls no platform"
    html = _run_queued(synced_page, worker)
    [row] = texts(
        html,
        "tr",
        cls="run",
        data_kind="resync",
        data_source="trustoo",
        data_account=TRUSTOO_PUBLIC_TOKEN,
        data_state="done",
    )
    assert "seen 3" in row and "created 3" in row
    assert len(emulator.reviews) == 3
    detail = synced_page.get("/admin/runs/1").get_data(as_text=True)
    assert texts(detail, id="run-state") == ["done"] and "created 3" in texts(detail, id="run-summary")[0]


def test_admin_page_runs_page_refreshes_itself_while_a_run_waits_and_refuses_a_second(synced_page, worker, trustoo):
    for _ in range(3):
        trustoo.add_review(TRUSTOO_PUBLIC_TOKEN, product_id=PRODUCT, rating=5)
    post_form(synced_page, "/admin/runs", "/admin/runs/resync", {"source": "trustoo", "dry_run": "on"})
    html = synced_page.get("/admin/runs").get_data(as_text=True)
    assert texts(html, "tr", data_state="running") and '<meta http-equiv="refresh" content="2">' in html
    second = post_form(synced_page, "/admin/runs", "/admin/runs/resync", {"source": "trustoo"})
    assert second.status_code == 409 and "queued or running already" in second.get_data(as_text=True)
    html = _run_queued(synced_page, worker)
    assert 'http-equiv="refresh" content="2"' not in html and "would create 3" in html


def test_admin_page_run_started_on_one_web_process_shows_on_another(synced_page, ct_environ, trustoo):
    trustoo.add_review(TRUSTOO_PUBLIC_TOKEN, product_id=PRODUCT, rating=5)
    post_form(synced_page, "/admin/runs", "/admin/runs/reconcile", {"source": "trustoo"})
    other = create_app(ct_environ | {"ADMIN_TOKEN": ADMIN_TOKEN})  # another gunicorn worker, dyno or a restart
    try:
        client = other.test_client()
        sign_in(client)
        [row] = texts(
            client.get("/admin/runs").get_data(as_text=True),
            "tr",
            cls="run",
            data_kind="reconcile",
            data_state="running",
        )
        assert "queued" in row
        second = post_form(client, "/admin/runs", "/admin/runs/reconcile", {"source": "trustoo"})
        assert second.status_code == 409
        build_worker(services_of(other)).run_queued_runs()
    finally:
        services_of(other).engine.dispose()
    [row] = texts(synced_page.get("/admin/runs").get_data(as_text=True), "tr", cls="run", data_state="done")
    assert "missing 1" in row


def test_admin_page_run_whose_worker_died_shows_abandoned_and_another_worker_finishes_it(
    synced_page_app, synced_page, worker, trustoo
):
    trustoo.add_review(TRUSTOO_PUBLIC_TOKEN, product_id=PRODUCT, rating=5)
    post_form(synced_page, "/admin/runs", "/admin/runs/resync", {"source": "trustoo"})
    services = services_of(synced_page_app)
    silent_since = services.clock() - timedelta(minutes=10)
    with transaction(services.engine) as session:
        session.execute(
            update(Run).values(
                state="running", worker_id="dead-host:4242:abcdef", started_at=silent_since, updated_at=silent_since
            )
        )
    html = synced_page.get("/admin/runs").get_data(as_text=True)
    [row] = texts(html, "tr", cls="run", data_kind="resync", data_state="running")
    assert "abandoned" in row and '<meta http-equiv="refresh" content="2">' in html
    html = _run_queued(synced_page, worker)
    [row] = texts(html, "tr", cls="run", data_kind="resync", data_state="done")
    assert "created 1" in row


def test_admin_page_resyncs_and_reconciles_show_the_account_by_its_label(synced_page, worker, trustoo):
    deliver(synced_page, trustoo_review())  # the shop's webhooks name its domain
    post_form(synced_page, "/admin/runs", "/admin/runs/reconcile", {"source": "trustoo"})
    html = _run_queued(synced_page, worker)
    [row] = texts(html, "tr", cls="run", data_kind="reconcile", data_state="done")
    assert "example-store.myshopify.com" in row and TRUSTOO_PUBLIC_TOKEN not in row
    detail = synced_page.get("/admin/runs/1").get_data(as_text=True)
    assert texts(detail, "span", cls="account") == ["example-store.myshopify.com"]
    assert TRUSTOO_PUBLIC_TOKEN not in texts(detail, "main")[0]


def test_admin_page_reconcile_reports_drift_rows(synced_page, worker, trustoo):
    for _ in range(2):
        trustoo.add_review(TRUSTOO_PUBLIC_TOKEN, product_id=PRODUCT, rating=5)
    response = post_form(synced_page, "/admin/runs", "/admin/runs/reconcile", {"source": "trustoo"})
    assert response.status_code == 302
    html = _run_queued(synced_page, worker)
    [row] = texts(html, "tr", cls="run", data_kind="reconcile", data_state="done")
    assert "compared 2" in row and "missing 2" in row
    detail = synced_page.get("/admin/runs/1").get_data(as_text=True)
    assert len(texts(detail, "tr", cls="drift", data_kind="missing")) == 2


def test_admin_page_resync_that_fails_shows_the_error(synced_page, worker):
    post_form(
        synced_page, "/admin/runs", "/admin/runs/resync", {"source": "trustoo", "account": "unknown-shop-public-token"}
    )
    html = _run_queued(synced_page, worker)
    [row] = texts(html, "tr", cls="run", data_state="failed")
    assert "no credentials" in row


@pytest.mark.parametrize(
    ("action", "data", "field"),
    [
        ("/admin/runs/resync", {}, "source"),
        ("/admin/runs/resync", {"source": "shopify"}, "source"),
        ("/admin/runs/resync", {"source": "trustoo", "since": "yesterday"}, "since"),
        ("/admin/runs/reconcile", {"source": "shopify"}, "source"),
    ],
)
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
        services_of(app).engine.dispose()


@pytest.mark.parametrize("run_id", [42, 10**20])
def test_admin_page_unknown_run_answers_404(page, run_id):
    assert page.get(f"/admin/runs/{run_id}").status_code == 404


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
        services_of(app).engine.dispose()


def test_admin_page_connection_check_of_an_unconfigured_platform_says_what_to_set(page):
    state, result = _check(page, "wix")
    assert state == "fail" and "WIX_PUBLIC_KEY" in result


def test_admin_page_connection_check_of_an_unknown_platform_answers_404(page):
    response = post_form(page, "/admin/connections", "/admin/connections/shopify/check")
    assert response.status_code == 404


def _cli_resync(app) -> int:
    result = cli_runner(app).invoke(args=["resync", "trustoo", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)[0]["run_id"]


def test_admin_page_rollback_button_queues_a_rollback_that_the_worker_runs(
    synced_page_app, synced_page, worker, trustoo, ct
):
    emulator, _ = ct
    trustoo.add_review(TRUSTOO_PUBLIC_TOKEN, product_id=PRODUCT, rating=5)
    run_id = _cli_resync(synced_page_app)
    page = synced_page.get(f"/admin/runs/{run_id}").get_data(as_text=True)
    assert texts(page, "form", id="rollback-form"), "a finished resync offers its rollback"
    response = post_form(synced_page, f"/admin/runs/{run_id}", f"/admin/runs/{run_id}/rollback", {})
    assert response.status_code == 302 and len(emulator.reviews) == 1, "the web process only queues it"
    html = _run_queued(synced_page, worker)
    [row] = texts(html, "tr", cls="run", data_kind="rollback", data_state="done")
    assert f"of run {run_id}: deleted 1" in row
    assert emulator.reviews == {}
    services = services_of(synced_page_app)
    rollback_id = max(run.id for run in runs.recent(services.engine, now=services.clock()))
    shown = synced_page.get(f"/admin/runs/{rollback_id}").get_data(as_text=True)
    assert texts(shown, "tr", cls="rollback-review", data_action="deleted")
    assert not texts(shown, "form", id="rollback-form"), "a rollback is not rolled back"


def test_admin_page_rollback_without_the_csrf_token_is_refused_and_queues_nothing(
    synced_page_app, synced_page, trustoo, ct
):
    trustoo.add_review(TRUSTOO_PUBLIC_TOKEN, product_id=PRODUCT, rating=5)
    run_id = _cli_resync(synced_page_app)
    response = synced_page.post(f"/admin/runs/{run_id}/rollback", data={})
    assert response.status_code == 400
    html = synced_page.get("/admin/runs").get_data(as_text=True)
    assert not texts(html, "tr", cls="run", data_kind="rollback")


def test_admin_page_rollback_of_a_reconcile_answers_400(synced_page_app, synced_page):
    services = services_of(synced_page_app)
    [run_id] = runs.request(services.engine, runs.RECONCILE, "trustoo", ["shop"], {}, now=services.clock())
    response = post_form(synced_page, f"/admin/runs/{run_id}", f"/admin/runs/{run_id}/rollback", {})
    assert response.status_code == 400 and "only a resync" in response.get_data(as_text=True)
