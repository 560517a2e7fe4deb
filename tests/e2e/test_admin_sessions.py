"""Admin page sessions live in the database: each sign-in is its own, sign-out and `reviewbridge admin
sessions clear` end them for good (a copied cookie included), a new ADMIN_TOKEN ends them all, and
each ends ADMIN_SESSION_HOURS after sign-in however much it is used."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from app.bootstrap import services_of
from app.core.db import transaction
from app.core.models import AdminSession
from tests.cli import cli_runner
from tests.e2e.admin_page_helpers import post_form, sign_in
from tests.e2e.conftest import ADMIN_TOKEN


def _rows(app) -> list[AdminSession]:
    with transaction(services_of(app).engine) as session:
        return list(session.execute(select(AdminSession)).scalars())


def _cookie(client) -> str:
    return client.get_cookie("session", path="/admin").value


def _cookie_ends(client) -> datetime:
    return client.get_cookie("session", path="/admin").expires.astimezone(UTC)


def _held_id(app, client) -> str:
    """The session id the cookie carries (Flask's signed session, opened as the app opens it)."""
    return app.session_interface.get_signing_serializer(app).loads(_cookie(client))["admin"]


def _replay(app, cookie: str):
    """A second browser holding a copy of the cookie."""
    thief = app.test_client()
    thief.set_cookie("session", cookie, path="/admin")
    return thief.get("/admin/")


def test_admin_page_each_sign_in_opens_its_own_session_stored_only_as_a_hash(make_admin_app):
    app = make_admin_app()
    first, second = app.test_client(), app.test_client()
    sign_in(first, ADMIN_TOKEN)
    sign_in(second, ADMIN_TOKEN)

    ids = [_held_id(app, first), _held_id(app, second)]
    rows = _rows(app)
    assert ids[0] != ids[1] and len(ids[0]) >= 43
    assert sorted(row.id_hash for row in rows) == sorted(hashlib.sha256(i.encode()).hexdigest() for i in ids)
    assert not set(ids) & {value for row in rows for value in vars(row).values() if isinstance(value, str)}
    lifetimes = {(row.client_address, row.expires_at - row.created_at) for row in rows}
    assert lifetimes == {("127.0.0.1", timedelta(hours=12))}
    assert all(row.user_agent and "Werkzeug" in row.user_agent for row in rows)


def test_admin_page_copied_cookie_no_longer_signs_in_after_sign_out(make_admin_app):
    app = make_admin_app()
    client = app.test_client()
    sign_in(client, ADMIN_TOKEN)
    copied = _cookie(client)
    assert _replay(app, copied).status_code == 200

    post_form(client, "/admin/", "/admin/logout")

    assert _replay(app, copied).status_code == 302 and _rows(app) == []


def test_admin_page_sign_out_of_one_browser_leaves_the_other_signed_in(make_admin_app):
    app = make_admin_app()
    laptop, phone = app.test_client(), app.test_client()
    sign_in(laptop, ADMIN_TOKEN)
    sign_in(phone, ADMIN_TOKEN)
    post_form(laptop, "/admin/", "/admin/logout")
    assert phone.get("/admin/").status_code == 200 and laptop.get("/admin/").status_code == 302


def test_admin_page_session_ends_12_hours_after_sign_in_however_much_it_is_used(make_admin_app, clock):
    app, start = make_admin_app(), clock.now
    client = app.test_client()
    sign_in(client, ADMIN_TOKEN)
    for hours in (1, 6, 11.9):
        clock.now = start + timedelta(hours=hours)
        assert client.get("/admin/").status_code == 200
        assert _cookie_ends(client) == start + timedelta(hours=12)  # written again (a CSRF token), not extended
    clock.now = start + timedelta(hours=12)
    assert client.get("/admin/").status_code == 302 and _rows(app) == []


def test_admin_page_session_lifetime_follows_admin_session_hours(make_admin_app, clock):
    app, start = make_admin_app(ADMIN_SESSION_HOURS="2"), clock.now
    client = app.test_client()
    sign_in(client, ADMIN_TOKEN)
    assert _cookie_ends(client) == start + timedelta(hours=2)
    clock.now = start + timedelta(hours=2)
    assert client.get("/admin/").status_code == 302


def test_admin_page_new_admin_token_ends_every_session_and_deletes_it_when_presented(make_admin_app):
    app = make_admin_app()
    client = app.test_client()
    sign_in(client, ADMIN_TOKEN)
    rotated = make_admin_app(
        ADMIN_TOKEN="rotated-admin-token-Vb4Nc8Rt3Wz6Ym1Hq2Lx9"
    )  # another process, after the change

    assert _replay(rotated, _cookie(client)).status_code == 302
    assert _rows(app) == []
    assert _replay(app, _cookie(client)).status_code == 302  # and it stays ended


def test_admin_sessions_clear_ends_every_session_and_says_how_many(make_admin_app):
    app = make_admin_app()
    browsers = [app.test_client() for _ in range(3)]
    for browser in browsers:
        sign_in(browser, ADMIN_TOKEN)

    result = cli_runner(app).invoke(args=["admin", "sessions", "clear"])

    assert result.exit_code == 0 and "ended 3 admin session(s)" in result.output
    assert [browser.get("/admin/").status_code for browser in browsers] == [302, 302, 302]
