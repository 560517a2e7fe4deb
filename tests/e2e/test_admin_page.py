"""/admin: the operator's web page. Sign-in, session and CSRF guard every page; the dashboard tells the truth.

Forms are sent as a browser sends them: the CSRF token is read from the page that holds the form.
Selectors are the ones tests/browser/CONTRACT.md fixes.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from app import create_app
from app.bootstrap import build_worker, services_of
from app.core.db import transaction
from app.core.models import EventStatus, LedgerEntry
from connectors.base import FixAndReplayError, ProductNotFound
from tests.builders import TRUSTOO_PUBLIC_TOKEN, trustoo_review
from tests.e2e.admin_page_helpers import csrf_token, db_counts, deliver, post_form, sign_in, texts
from tests.e2e.conftest import ADMIN_TOKEN

#: Every page and action but the sign-in form, with sample path values.
PAGES = [
    "/admin/",
    "/admin/events",
    "/admin/events/replay",
    "/admin/events/discard",
    "/admin/events/export",
    "/admin/events/1",
    "/admin/dead-letters",
    "/admin/waiting",
    "/admin/runs",
    "/admin/runs/1",
    "/admin/connections",
    "/admin/api-docs",
]
ACTIONS = [
    "/admin/logout",
    "/admin/events/replay",
    "/admin/events/discard",
    "/admin/events/1/replay",
    "/admin/events/1/discard",
    "/admin/dead-letters/replay",
    "/admin/waiting/map",
    "/admin/runs/resync",
    "/admin/runs/reconcile",
    "/admin/runs/1/rollback",
    "/admin/connections/trustoo/check",
]
ACCOUNT = f"trustoo/{TRUSTOO_PUBLIC_TOKEN}"


# --- access ---------------------------------------------------------------------------------------


def test_admin_page_without_admin_token_is_off_and_answers_404_saying_so(client):
    for url in ["/admin/", "/admin/login", "/admin/events"]:
        response = client.get(url)
        assert response.status_code == 404 and response.mimetype == "text/html"
        assert "set ADMIN_TOKEN" in response.get_data(as_text=True)


def test_admin_page_with_admin_token_but_no_secret_key_refuses_with_503_saying_to_set_it(environ, target):
    app = create_app(environ | {"ADMIN_TOKEN": ADMIN_TOKEN, "SECRET_KEY": ""}, targets=[target])
    try:
        for response in (
            app.test_client().get("/admin/login"),
            app.test_client().post("/admin/login", data={"token": ADMIN_TOKEN}),
        ):
            assert response.status_code == 503 and "SECRET_KEY" in response.get_data(as_text=True)
            assert "Set-Cookie" not in response.headers
    finally:
        services_of(app).engine.dispose()


@pytest.mark.parametrize("url", PAGES)
def test_admin_page_every_page_without_sign_in_redirects_to_the_form_and_back(admin, url):
    response = admin.get(url)
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/login?next=" + url.replace("/", "%2F").replace("%2F", "/")


@pytest.mark.parametrize("url", ACTIONS)
def test_admin_page_every_action_without_sign_in_is_refused_before_csrf_and_changes_nothing(admin, page_services, url):
    deliver(admin, trustoo_review())
    response = admin.post(
        url,
        data={
            "reason": "spam",
            "source": "trustoo",
            "account": TRUSTOO_PUBLIC_TOKEN,
            "source_product_id": "1",
            "product_key": "mug",
        },
    )
    assert response.status_code == 302 and response.headers["Location"] == "/admin/login"
    assert db_counts(page_services.engine) == {"pending": 1}


def test_admin_page_routes_are_all_in_these_lists(admin_app):
    rules = {
        (rule.rule, method)
        for rule in admin_app.url_map.iter_rules()
        if rule.endpoint.startswith("admin_page.")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    samples = {"<int:event_id>": "1", "<int:run_id>": "1", "<platform>": "trustoo"}

    def sample(rule: str) -> str:
        for name, value in samples.items():
            rule = rule.replace(name, value)
        return rule

    tested = {(url, "GET") for url in PAGES} | {(url, "POST") for url in ACTIONS}
    assert {(sample(rule), method) for rule, method in rules} ^ tested == {
        ("/admin/login", "GET"),
        ("/admin/login", "POST"),
        ("/admin/static/<path:filename>", "GET"),  # the stylesheet, open to all (test_admin_headers.py)
    }


@pytest.mark.parametrize("token", ["wrong-token-0123456789abcdef", ADMIN_TOKEN + "x", "", "tökén"])
def test_admin_page_sign_in_with_a_wrong_token_answers_401_and_never_echoes_it(admin, token, caplog):
    with caplog.at_level(logging.DEBUG):
        response = sign_in(admin, token)
    page_html = response.get_data(as_text=True)
    assert response.status_code == 401 and texts(page_html, "div", cls="flash error")
    assert texts(page_html, "form", id="login-form") and not texts(page_html, "form", id="logout-form")
    assert ADMIN_TOKEN not in page_html and ADMIN_TOKEN not in caplog.text
    assert not token or token not in caplog.text
    assert admin.get("/admin/").status_code == 302


def test_admin_page_sign_in_sets_a_signed_http_only_lax_cookie_for_12_hours(admin):
    response = sign_in(admin)
    assert response.status_code == 302 and response.headers["Location"] == "/admin/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/admin" in cookie and "Secure" not in cookie
    assert ADMIN_TOKEN not in cookie
    expires = admin.get_cookie("session", path="/admin").expires
    assert round((expires - datetime.now(UTC)) / timedelta(hours=1)) == 12
    dashboard = admin.get("/admin/")
    assert dashboard.status_code == 200 and texts(dashboard.get_data(as_text=True), "form", id="logout-form")


def test_admin_page_cookie_is_secure_over_https(admin):
    form = admin.get("/admin/login", base_url="https://localhost").get_data(as_text=True)
    response = admin.post(
        "/admin/login",
        data={"token": ADMIN_TOKEN, "csrf_token": csrf_token(form)},
        base_url="https://localhost",
        headers={"Referer": "https://localhost/admin/login"},
    )
    assert response.status_code == 302 and "Secure" in response.headers["Set-Cookie"]


def test_admin_page_sign_in_goes_back_to_the_page_asked_for_but_never_off_the_page(admin, admin_app):
    assert admin.get("/admin/events?status=dead").headers["Location"] == "/admin/login?next=/admin/events?status%3Ddead"
    form = admin.get("/admin/login?next=/admin/events?status%3Ddead").get_data(as_text=True)
    assert texts(form, "input", name="next") == ["/admin/events?status=dead"]
    for next_url, expected in [
        ("/admin/events?status=dead", "/admin/events?status=dead"),
        ("https://evil.example/admin", "/admin/"),
        ("//evil.example/admin", "/admin/"),
        ("/admin/api/status", "/admin/"),
        ("/\\evil.example", "/admin/"),
        ("/admin/events\r\nSet-Cookie: admin=1", "/admin/"),
        ("/admin/\x1b[2J", "/admin/"),
    ]:
        browser = admin_app.test_client()
        form = browser.get("/admin/login").get_data(as_text=True)
        response = browser.post(
            "/admin/login", data={"token": ADMIN_TOKEN, "next": next_url, "csrf_token": csrf_token(form)}
        )
        assert response.status_code == 302 and response.headers["Location"] == expected, next_url


@pytest.mark.parametrize("next_url", ["/admin/events%0D%0ASet-Cookie:%20admin=1", "/admin%0A", "/admin%00"])
def test_admin_page_signed_in_login_with_a_control_character_in_next_goes_to_the_dashboard(page, next_url):
    response = page.get(f"/admin/login?next={next_url}")
    assert response.status_code == 302 and response.headers["Location"] == "/admin/"


def test_admin_page_sign_out_ends_the_session(page):
    response = post_form(page, "/admin/", "/admin/logout")
    assert response.status_code == 302 and response.headers["Location"] == "/admin/login"
    assert texts(page.get("/admin/login").get_data(as_text=True), "div", cls="flash success") == ["Signed out."]
    assert page.get("/admin/").status_code == 302


def test_admin_page_session_ends_when_admin_token_changes(environ, target, admin_app):
    client = admin_app.test_client()
    sign_in(client)
    cookie = client.get_cookie("session", path="/admin").value
    rotated = create_app(environ | {"ADMIN_TOKEN": "another-admin-token-5Fk8Qp2Xs7Jd4Gh1"}, targets=[target])
    try:
        other = rotated.test_client()
        other.set_cookie("session", cookie, path="/admin")
        assert other.get("/admin/").status_code == 302
    finally:
        services_of(rotated).engine.dispose()


@pytest.mark.parametrize("csrf", [None, "", "forged-token"])
def test_admin_page_form_without_its_csrf_token_answers_400_and_changes_nothing(page, page_services, csrf):
    deliver(page, trustoo_review())
    data = {"reason": "spam"} | ({} if csrf is None else {"csrf_token": csrf})
    page.get("/admin/events/1")  # the page's forms hold a token; this post does not send it
    response = page.post("/admin/events/1/discard", data=data)
    assert response.status_code == 400 and response.mimetype == "text/html"
    [message] = texts(response.get_data(as_text=True), id="error-message")
    assert "reload the page" in message and "csrf" in message.lower()
    assert db_counts(page_services.engine) == {"pending": 1} and page.get("/admin/").status_code == 200


def test_admin_page_sign_in_form_needs_its_csrf_token_too(admin):
    admin.get("/admin/login")
    response = admin.post("/admin/login", data={"token": ADMIN_TOKEN})
    assert response.status_code == 400 and admin.get("/admin/").status_code == 302


@pytest.mark.parametrize("fetch_site", ["cross-site", "same-site"])
def test_admin_page_form_a_browser_marks_as_sent_from_another_site_is_refused_even_with_its_token(
    page, page_services, fetch_site
):
    # The page sends no Referer (Referrer-Policy: no-referrer); Sec-Fetch-Site is what tells a browser's
    # cross-site form apart, and a token read by another way does not make it ours.
    deliver(page, trustoo_review())
    token = csrf_token(page.get("/admin/events/1").get_data(as_text=True))
    response = page.post(
        "/admin/events/1/discard",
        data={"reason": "spam", "csrf_token": token},
        headers={"Sec-Fetch-Site": fetch_site},
    )
    assert response.status_code == 400
    assert "another site" in texts(response.get_data(as_text=True), id="error-message")[0]
    assert db_counts(page_services.engine) == {"pending": 1}
    same_origin = page.post(
        "/admin/events/1/discard",
        data={"reason": "spam", "csrf_token": token},
        headers={"Sec-Fetch-Site": "same-origin"},
    )
    assert same_origin.status_code == 302 and db_counts(page_services.engine) == {"discarded": 1}


def test_admin_page_head_of_the_sign_in_form_answers_as_get_and_never_signs_in(admin):
    # Flask routes HEAD to the view; only a POST (with its CSRF token) may sign in.
    response = admin.head("/admin/login", data={"token": ADMIN_TOKEN})
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert admin.get("/admin/").status_code == 302


def test_admin_page_csrf_leaves_the_json_api_and_webhooks_alone(page, admin):
    deliver(page, trustoo_review())
    response = admin.post(
        "/admin/api/events/discard",
        json={"ids": [1], "reason": "spam"},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert response.status_code == 200


def test_admin_page_every_page_has_the_nav_and_a_viewport_for_phones(page):
    for url in (
        "/admin/",
        "/admin/events",
        "/admin/dead-letters",
        "/admin/waiting",
        "/admin/runs",
        "/admin/connections",
        "/admin/api-docs",
    ):
        html = page.get(url).get_data(as_text=True)
        assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html, url
        for link in ("dashboard", "events", "dead-letters", "waiting", "runs", "connections"):
            assert texts(html, "a", id=f"nav-{link}"), (url, link)
        assert "<script" not in html, url
        assert re.findall(r"<link [^>]*>", html) == ['<link rel="stylesheet" href="/admin/static/admin.css">'], url


def test_admin_page_each_page_has_one_name_in_its_nav_link_title_and_heading(page):
    for link, url in (
        ("dashboard", "/admin/"),
        ("events", "/admin/events"),
        ("dead-letters", "/admin/dead-letters"),
        ("waiting", "/admin/waiting"),
        ("runs", "/admin/runs"),
        ("connections", "/admin/connections"),
    ):
        html = page.get(url).get_data(as_text=True)
        [name] = texts(html, "a", id=f"nav-{link}")
        assert texts(html, "title")[0] == f"{name} · ReviewBridge", url  # the first: the page's, not the chart's
        assert texts(html, "h1") == [name], url


# --- dashboard ------------------------------------------------------------------------------------


def _dashboard_numbers(html: str, attribute: str) -> dict[str, int]:
    cells = re.findall(rf'<td[^>]*{attribute}="([^"]+)"[^>]*>(?:<a[^>]*>)?(\d+)', html)
    return {cell: int(count) for cell, count in cells}


def test_admin_page_dashboard_numbers_match_the_database(page, page_services, target):
    target.fail_next(
        FixAndReplayError("review text rejected", status=400),
        ProductNotFound("8000000000001", "no commercetools product for 8000000000001"),
    )
    for _ in range(4):
        deliver(page, trustoo_review())
    build_worker(page_services).drain()
    deliver(page, trustoo_review())
    database = db_counts(page_services.engine)
    assert database == {"dead": 1, "waiting_for_product": 1, "done": 2, "pending": 1}

    html = page.get("/admin/").get_data(as_text=True)
    assert _dashboard_numbers(html, "data-count") == {
        f"{ACCOUNT}/{status.value}": database.get(status.value, 0) for status in EventStatus
    }
    assert _dashboard_numbers(html, "data-received") == {f"{ACCOUNT}/hour": 5, f"{ACCOUNT}/day": 5}
    assert texts(html, id="queue-depth") == ["2"]  # pending + waiting_for_product
    assert texts(html, id="oldest-pending")[0].endswith("ago")
    assert texts(html, "td", cls="last-success")[0].endswith("ago")
    assert "no commercetools product for 8000000000001" in texts(html, "td", cls="last-error")[0]
    with transaction(page_services.engine) as session:
        written = session.execute(select(func.count()).select_from(LedgerEntry)).scalar()
    assert texts(html, "td", cls="target-reviews") == [str(written)] == ["2"]


def test_admin_page_dashboard_chart_counts_the_last_24_hours_without_external_assets(page, page_services):
    for _ in range(3):
        deliver(page, trustoo_review())
    build_worker(page_services).drain()
    html = page.get("/admin/").get_data(as_text=True)
    svg = html.split('<svg id="chart-24h"', 1)[1].split("</svg>")[0]
    assert "href" not in svg and "<image" not in svg
    received = [int(n) for n in re.findall(r'<g class="hour"[^>]*data-received="(\d+)"', svg)]
    done = [int(n) for n in re.findall(r'<g class="hour"[^>]*data-done="(\d+)"', svg)]
    assert len(received) == 24 and received[-1] == sum(received) == 3 and done[-1] == 3


def test_admin_page_dashboard_with_no_events_says_so(page):
    html = page.get("/admin/").get_data(as_text=True)
    assert texts(html, id="no-events") and texts(html, id="oldest-pending") == ["none"]
    assert "commercetools" in texts(html, "section", id="target-health")[0]
