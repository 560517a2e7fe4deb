"""Behind a proxy: X-Forwarded-Proto and X-Forwarded-For count only from the addresses FORWARDED_ALLOW_IPS
names, so a client cannot claim https or another address; SESSION_COOKIE_SECURE forces a Secure cookie."""

from __future__ import annotations

import logging

import pytest

from tests.e2e.admin_page_helpers import csrf_token
from tests.e2e.conftest import ADMIN_TOKEN

PROXY, CLIENT, STRANGER = "10.1.2.3", "198.51.100.7", "203.0.113.9"
FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-For": CLIENT}


@pytest.fixture
def make_client(make_admin_app):
    def make(peer: str, **variables: str):
        client = make_admin_app(**variables).test_client()
        client.environ_base["REMOTE_ADDR"] = peer  # the address the connection comes from
        return client

    return make


def _sign_in(client, token: str = ADMIN_TOKEN):
    # Over https and without a Referer, as a browser sends the form under `Referrer-Policy: no-referrer`.
    headers = FORWARDED | {"Sec-Fetch-Site": "same-origin"}
    form = client.get("/admin/login", headers=FORWARDED).get_data(as_text=True)
    return client.post("/admin/login", data={"token": token, "csrf_token": csrf_token(form)}, headers=headers)


def test_forwarded_https_from_an_untrusted_address_does_not_count_and_the_cookie_is_not_secure(make_client):
    response = _sign_in(make_client(STRANGER))
    assert response.status_code == 302 and "Secure" not in response.headers["Set-Cookie"]


def test_forwarded_https_from_a_trusted_proxy_counts_and_the_cookie_is_secure(make_client):
    response = _sign_in(make_client("127.0.0.1"))  # the default: a proxy on this machine
    assert response.status_code == 302 and "Secure" in response.headers["Set-Cookie"]


def test_forwarded_allow_ips_names_the_trusted_proxies_by_network(make_client):
    trusted = _sign_in(make_client(PROXY, FORWARDED_ALLOW_IPS="10.0.0.0/8"))
    untrusted = _sign_in(make_client("127.0.0.1", FORWARDED_ALLOW_IPS="10.0.0.0/8"))
    assert "Secure" in trusted.headers["Set-Cookie"] and "Secure" not in untrusted.headers["Set-Cookie"]


def test_forwarded_for_names_the_client_only_through_a_trusted_proxy(make_client, caplog):
    with caplog.at_level(logging.WARNING):
        assert _sign_in(make_client(PROXY, FORWARDED_ALLOW_IPS=PROXY), "wrong").status_code == 401
        assert _sign_in(make_client(STRANGER, FORWARDED_ALLOW_IPS=PROXY), "wrong").status_code == 401
    refusals = [record.getMessage() for record in caplog.records if "refused a sign-in" in record.getMessage()]
    assert [CLIENT in line for line in refusals] == [True, False] and STRANGER in refusals[1]


def test_session_cookie_secure_forces_a_secure_cookie_over_plain_http(make_client):
    client = make_client(STRANGER, SESSION_COOKIE_SECURE="true")
    form = client.get("/admin/login").get_data(as_text=True)
    response = client.post("/admin/login", data={"token": ADMIN_TOKEN, "csrf_token": csrf_token(form)})
    assert response.status_code == 302 and "Secure" in response.headers["Set-Cookie"]
