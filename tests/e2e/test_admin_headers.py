"""/admin answers, page and API, errors and redirects included, carry the security headers, and the
page holds nothing its Content-Security-Policy would block (no inline style, script or handler)."""

from __future__ import annotations

import re

import pytest

from app.bootstrap import build_worker
from app.core import runs
from tests.builders import TRUSTOO_PUBLIC_TOKEN, trustoo_review
from tests.e2e.admin_page_helpers import csrf_token, deliver
from tests.e2e.conftest import ADMIN_TOKEN
from tests.e2e.test_admin_page import PAGES

BEARER = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _assert_secured(response) -> None:
    policy = response.headers.get("Content-Security-Policy", "")
    assert policy, f"{response.status_code} without a Content-Security-Policy"
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["default-src"] == "'none'" and "unsafe-inline" not in policy and "script-src" not in directives
    assert (directives["frame-ancestors"], directives["form-action"], directives["base-uri"]) == (
        "'none'",
        "'self'",
        "'none'",
    )
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "method, url, headers, status",
    [
        ("GET", "/admin/login", {}, 200),
        ("HEAD", "/admin/login", {}, 200),
        ("GET", "/admin/", {}, 302),
        ("POST", "/admin/logout", {}, 302),
        ("GET", "/admin/no-such-page", {}, 404),
        ("GET", "/admin/static/admin.css", {}, 200),
        ("GET", "/admin/api/status", {}, 401),
        ("GET", "/admin/api/status", BEARER, 200),
        ("GET", "/admin/api/events/999", BEARER, 404),
        ("POST", "/admin/api/events/replay", BEARER, 400),
    ],
)
def test_admin_answers_of_every_kind_carry_the_security_headers(admin, method, url, headers, status):
    response = admin.open(url, method=method, headers=headers)
    assert response.status_code == status
    _assert_secured(response)


def test_admin_page_signed_in_pages_and_a_refused_form_carry_the_security_headers(page):
    _assert_secured(page.get("/admin/"))
    _assert_secured(page.post("/admin/events/1/replay", data={"csrf_token": "forged"}))


def test_admin_page_headers_leave_the_webhooks_and_health_alone(admin):
    assert "Content-Security-Policy" not in admin.get("/healthz").headers


def test_admin_page_stylesheet_is_served_to_anyone_as_css(admin):
    response = admin.get("/admin/static/admin.css")
    assert response.status_code == 200 and response.mimetype == "text/css"
    assert ".bar-received" in response.get_data(as_text=True)


_INLINE = re.compile(r"<(script|style)\b|\sstyle=|\son[a-z]+=", re.I)


def test_admin_page_every_page_holds_no_inline_style_script_or_event_handler(page, page_services):
    deliver(page, trustoo_review())
    build_worker(page_services).drain()
    runs.request(page_services.engine, runs.RESYNC, "trustoo", [TRUSTOO_PUBLIC_TOKEN], {}, now=page_services.clock())
    sign_in_form = page.application.test_client().get("/admin/login").get_data(as_text=True)
    assert not _INLINE.search(sign_in_form)
    csrf_token(sign_in_form)  # the form is really there
    for url in PAGES:
        if url.endswith("/export"):
            continue  # a CSV download, not a page
        response = page.get(url, query_string={"status": "done"} if url.endswith(("replay", "discard")) else None)
        assert response.status_code == 200, url
        found = _INLINE.search(response.get_data(as_text=True))
        assert found is None, (url, found and found.group(0))
