"""Wrong admin tokens, on the sign-in form or as bearer tokens, make the client's address wait: five
free, then 1 s, 2 s, 4 s … up to 15 minutes, the right token refused meanwhile with 429 and
Retry-After; shared by the page, the API and every process, forgotten after a success."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from app.bootstrap import services_of
from app.core.db import transaction
from app.core.models import SignInFailure
from app.core.sign_in_limits import Backoff
from tests.e2e.admin_page_helpers import sign_in, texts
from tests.e2e.conftest import ADMIN_TOKEN

WRONG = "wrong-token-Lx9Vb4Nc8Rt3Wz6Ym1Hq2"


def _api(client, token: str):
    return client.get("/admin/api/status", headers={"Authorization": f"Bearer {token}"})


def test_admin_sign_in_wait_doubles_after_five_free_failures_up_to_15_minutes():
    waits = [Backoff().wait_s(failures) for failures in range(1, 18)]
    assert waits == [0] * 5 + [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900]
    assert Backoff().wait_s(10**6) == 900


def test_admin_api_300_wrong_bearer_tokens_get_six_401s_and_then_429s(make_admin_app):
    client = make_admin_app().test_client()
    statuses = [_api(client, WRONG).status_code for _ in range(300)]
    assert statuses == [401] * 6 + [429] * 294


def test_admin_page_sign_in_with_the_right_token_while_waiting_is_refused_with_429_saying_why(make_admin_app, clock):
    client = make_admin_app().test_client()
    assert [sign_in(client, WRONG).status_code for _ in range(6)] == [401] * 6

    refused = sign_in(client, ADMIN_TOKEN)

    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    [message] = texts(refused.get_data(as_text=True), "div", cls="flash error")
    assert "try again in 1 s" in message and "even one with the right token" in message
    assert texts(refused.get_data(as_text=True), "form", id="login-form")
    assert client.get("/admin/").status_code == 302
    clock.now += timedelta(seconds=1)
    assert sign_in(client, ADMIN_TOKEN).status_code == 302 and client.get("/admin/").status_code == 200


def test_admin_api_refusal_while_waiting_is_json_with_retry_after(make_admin_app, clock):
    client = make_admin_app().test_client()
    for _ in range(7):
        _api(client, WRONG)  # the sixth failure starts a 1 s wait; the seventh is refused and counts for nothing
    clock.now += timedelta(seconds=1)
    assert _api(client, WRONG).status_code == 401  # the 7th failure: 2 s now

    refused = _api(client, ADMIN_TOKEN)

    assert refused.status_code == 429 and refused.headers["Retry-After"] == "2"
    assert refused.get_json()["error"] == "too_many_attempts" and "right token" in refused.get_json()["message"]


def test_admin_sign_in_limit_is_shared_by_the_page_the_api_and_every_process(make_admin_app):
    page, api = make_admin_app().test_client(), make_admin_app().test_client()  # two web processes, one database
    assert [sign_in(page, WRONG).status_code for _ in range(3)] == [401] * 3
    assert [_api(api, WRONG).status_code for _ in range(3)] == [401] * 3
    assert sign_in(page, ADMIN_TOKEN).status_code == 429 and _api(api, ADMIN_TOKEN).status_code == 429


def test_admin_sign_in_success_forgets_the_failures(make_admin_app, clock):
    app = make_admin_app()
    client = app.test_client()
    for _ in range(5):
        _api(client, WRONG)
    assert _api(client, ADMIN_TOKEN).status_code == 200
    with transaction(services_of(app).engine) as session:
        assert session.execute(select(SignInFailure)).first() is None
    assert [_api(client, WRONG).status_code for _ in range(6)] == [401] * 6  # five free ones again


def test_admin_api_request_without_any_token_does_not_count_as_a_failure(make_admin_app):
    client = make_admin_app().test_client()
    assert [client.get("/admin/api/status").status_code for _ in range(10)] == [401] * 10
    assert _api(client, ADMIN_TOKEN).status_code == 200


def test_admin_sign_in_refusal_while_waiting_logs_one_warning_without_the_token(make_admin_app, caplog):
    client = make_admin_app().test_client()
    for _ in range(6):
        sign_in(client, WRONG)
    with caplog.at_level(logging.DEBUG):
        sign_in(client, ADMIN_TOKEN)
        _api(client, ADMIN_TOKEN)
    refusals = [record for record in caplog.records if "unchecked" in record.getMessage()]
    assert [record.levelname for record in refusals] == ["WARNING", "WARNING"]
    assert "127.0.0.1" in refusals[0].getMessage() and "6 failed sign-ins" in refusals[0].getMessage()
    assert ADMIN_TOKEN not in caplog.text and WRONG not in caplog.text
