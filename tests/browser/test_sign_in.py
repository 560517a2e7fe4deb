"""Signing in to the admin page with ADMIN_TOKEN, and out again: nothing is reachable without a session."""

from __future__ import annotations

from urllib.parse import urlsplit

from tests.browser.conftest import ADMIN_TOKEN, expect, sign_in
from tests.builders import trustoo_review


def _path(url: str) -> str:
    return urlsplit(url).path


def test_operator_signs_in_with_the_admin_token_and_lands_on_the_dashboard(page):
    page.goto("/admin/")
    assert _path(page.url) == "/admin/login"
    sign_in(page)
    assert _path(page.url) == "/admin/"
    expect(page.locator("#status-counts")).to_be_visible()
    for link in ("dashboard", "events", "dead-letters", "waiting", "runs", "connections"):
        expect(page.locator(f"a#nav-{link}")).to_be_visible()


def test_wrong_token_is_refused_on_the_login_form(page):
    page.goto("/admin/login")
    page.fill("#login-form input[name=token]", "not-the-admin-token-at-all")
    with page.expect_navigation() as navigation:
        page.click("#login-form button[type=submit]")
    assert navigation.value.status == 401
    expect(page.locator(".flash.error")).to_be_visible()
    expect(page.locator("#login-form")).to_be_visible()
    expect(page.locator("#logout-form")).to_have_count(0)


def test_page_asked_for_without_a_session_goes_to_login_and_back_after_it(page):
    page.goto("/admin/dead-letters")
    assert _path(page.url) == "/admin/login" and "next=" in page.url
    page.fill("#login-form input[name=token]", ADMIN_TOKEN)
    page.click("#login-form button[type=submit]")
    expect(page.locator("#logout-form")).to_be_visible()
    assert _path(page.url) == "/admin/dead-letters"


def test_signed_out_operator_is_sent_back_to_login(page):
    sign_in(page)
    page.click("#logout-form button[type=submit]")
    expect(page.locator("#login-form")).to_be_visible()
    for path in ("/admin/", "/admin/events", "/admin/waiting"):
        page.goto(path)
        assert _path(page.url) == "/admin/login", path
        expect(page.locator("#login-form")).to_be_visible()


def test_form_posted_after_sign_out_is_refused_and_changes_nothing(page, service):
    review = trustoo_review()
    service.deliver(review)
    done = service.wait_for_status(review, "done")
    sign_in(page)
    stale = page.context.new_page()  # a second tab, left open on the event
    stale.goto(f"/admin/events/{done.id}")
    replay = stale.locator("#replay-form")
    action = replay.evaluate("form => form.action")
    csrf_token = replay.locator("input[name=csrf_token]").input_value()

    page.click("#logout-form button[type=submit]")
    expect(page.locator("#login-form")).to_be_visible()
    response = page.request.post(action, form={"csrf_token": csrf_token}, max_redirects=0)
    assert response.status == 302 and _path(response.headers["location"]) == "/admin/login"
    stale.click("#replay-form button[type=submit]")
    expect(stale.locator("#login-form")).to_be_visible()

    after = service.event_by_id(done.id)
    assert (after.status, after.attempts) == ("done", done.attempts)


def test_form_posted_without_its_csrf_token_is_refused_and_changes_nothing(page, service):
    review = trustoo_review()
    service.deliver(review)
    done = service.wait_for_status(review, "done")
    sign_in(page)
    page.goto(f"/admin/events/{done.id}")
    action = page.locator("#replay-form").evaluate("form => form.action")
    response = page.request.post(action, form={"csrf_token": "forged"}, max_redirects=0)
    assert response.status == 400 and response.text().strip()
    after = service.event_by_id(done.id)
    assert (after.status, after.attempts) == ("done", done.attempts)
