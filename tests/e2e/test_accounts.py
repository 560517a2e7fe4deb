"""`reviewbridge accounts`: more Trustoo shops, kept encrypted, verifying their own webhooks."""

from __future__ import annotations

import json

from sqlalchemy import select

from app import create_app
from app.bootstrap import services_of
from app.core.db import transaction
from app.core.models import Account
from tests.builders import trustoo_body, trustoo_headers, trustoo_review
from tests.cli import cli_runner

SHOP = "SecondShopPublicToken=="
PRIVATE = "second-shop-private-token-0123"


def _add(app, *extra):
    return cli_runner(app).invoke(
        args=["accounts", "add", "trustoo", "--public-token", SHOP, "--private-token", PRIVATE, *extra]
    )


def test_trustoo_shop_added_by_cli_verifies_its_webhooks(app, client):
    body = trustoo_body(trustoo_review())
    headers = trustoo_headers(body, public_token=SHOP, private_token=PRIVATE)
    assert client.post("/webhooks/trustoo/review-created", data=body, headers=headers).status_code == 401
    assert _add(app, "--label", "second.myshopify.com").exit_code == 0
    assert client.post("/webhooks/trustoo/review-created", data=body, headers=headers).status_code == 200


def test_trustoo_private_token_is_stored_encrypted_and_never_listed(app, engine):
    _add(app)
    with transaction(engine) as session:
        stored = session.execute(select(Account.secret)).scalar_one()
    assert PRIVATE not in stored
    listing = cli_runner(app).invoke(args=["accounts", "list"]).output
    assert SHOP in listing and PRIVATE not in listing and "private token" in listing
    rows = json.loads(cli_runner(app).invoke(args=["accounts", "list", "--json"]).output)
    assert next(row["label"] for row in rows) == "(environment)" and PRIVATE not in json.dumps(rows)


def test_removed_trustoo_shop_is_forgotten(app):
    _add(app)
    result = cli_runner(app).invoke(args=["accounts", "remove", "trustoo", SHOP])
    assert result.exit_code == 0
    again = cli_runner(app).invoke(args=["accounts", "remove", "trustoo", SHOP])
    assert again.exit_code != 0 and "no trustoo account" in again.output


def test_accounts_need_a_secret_key(environ, target):
    app = create_app({k: v for k, v in environ.items() if k != "SECRET_KEY"}, targets=[target])
    result = _add(app)
    assert result.exit_code != 0 and "SECRET_KEY" in result.output
    services_of(app).engine.dispose()


NEW_SECRET_KEY = "rotated-secret-key-fedcba9876543210"


def _webhook(app) -> int:
    body = trustoo_body(trustoo_review())
    headers = trustoo_headers(body, public_token=SHOP, private_token=PRIVATE)
    return app.test_client().post("/webhooks/trustoo/review-created", data=body, headers=headers).status_code


def test_rotating_secret_key_keeps_added_shops_verifying_through_the_fallback_until_rotate_keys(
    environ, target, caplog
):
    apps = []

    def build(**overrides):
        apps.append(create_app(environ | overrides, targets=[target]))
        return apps[-1]

    try:
        assert _add(build()).exit_code == 0

        locked = build(SECRET_KEY=NEW_SECRET_KEY)  # the old key dropped too soon
        assert _webhook(locked) == 401
        assert f"stored secret of trustoo account {SHOP} cannot be opened" in caplog.text
        doctor = cli_runner(locked).invoke(args=["doctor"]).output
        assert f"✗ stored credentials of trustoo {SHOP}" in doctor and "SECRET_KEY_FALLBACKS" in doctor

        rotating = build(SECRET_KEY=NEW_SECRET_KEY, SECRET_KEY_FALLBACKS=environ["SECRET_KEY"])
        assert _webhook(rotating) == 200
        resealed = cli_runner(rotating).invoke(args=["accounts", "rotate-keys"])
        assert resealed.exit_code == 0 and "re-sealed the credentials of 1 account(s)" in resealed.output

        assert _webhook(build(SECRET_KEY=NEW_SECRET_KEY)) == 200  # the fallback can go now
    finally:
        for app in apps:
            services_of(app).engine.dispose()


def test_rotate_keys_names_the_accounts_no_key_opens_and_fails(environ, target):
    first = create_app(environ, targets=[target])
    locked = create_app(environ | {"SECRET_KEY": NEW_SECRET_KEY}, targets=[target])
    try:
        _add(first)
        result = cli_runner(locked).invoke(args=["accounts", "rotate-keys"])
        assert result.exit_code == 1
        assert f"✗ trustoo {SHOP}: cannot be opened" in result.stderr and PRIVATE not in result.output
    finally:
        services_of(first).engine.dispose()
        services_of(locked).engine.dispose()
