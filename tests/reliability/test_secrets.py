"""Secrets: after a full faulty run (R3's faults, forged deliveries, refused admin calls, expired
commercetools tokens) with DEBUG logging, no configured secret (Trustoo private tokens, client
secrets, ADMIN_TOKEN, SECRET_KEY) appears in a captured log line, a stored error, `status --json`
or an admin API answer. The subprocess scenarios (R4, R6) scan their workers' output the same way,
and every reliability test checks its captured log at teardown (conftest `leaks`).
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from app.bootstrap import services_of
from app.core.db import transaction
from app.core.models import Attempt, InboxEvent, LedgerEntry
from tests.builders import TRUSTOO_OLD_PRIVATE_TOKEN, trustoo_body, trustoo_headers, trustoo_review
from tests.cli import cli_runner
from tests.reliability.conftest import (
    ADMIN_TOKEN,
    drain_until_settled,
    make_app,
    post_trustoo,
    post_wix,
    report,
    scale,
    signed_trustoo,
)

REVIEWS = scale(20, 200)


@pytest.fixture
def chatty_app(wix_environ):
    app = make_app(
        wix_environ | {"LOG_LEVEL": "DEBUG", "RETRY_BASE_S": "0.01", "RETRY_CAP_S": "1", "MAX_ATTEMPTS": "100"}
    )
    yield app
    services_of(app).engine.dispose()


def test_no_configured_secret_shows_in_logs_errors_status_or_admin_answers(chatty_app, ct, wix, leaks):
    ct_emulator, _ = ct
    wix_emulator, _, instance = wix
    client = chatty_app.test_client()
    now = int(time.time())
    for _ in range(REVIEWS):
        post_trustoo(client, "review-created", *signed_trustoo([trustoo_review()], now))
    body = trustoo_body(trustoo_review())
    post_trustoo(client, "review-created", body, trustoo_headers(body, private_token=TRUSTOO_OLD_PRIVATE_TOKEN))
    forged = client.post(
        "/webhooks/trustoo/review-created",
        data=body,
        headers=trustoo_headers(body, private_token="not-the-token-at-all"),
    )
    stale = client.post("/webhooks/trustoo/review-created", data=body, headers=trustoo_headers(body, timestamp=1))
    assert (forged.status_code, stale.status_code) == (401, 401)
    order = wix_emulator.make_order(instance)
    post_wix(
        client,
        wix_emulator.sign_webhook(
            "wix.ecom.v1.order_fulfilled", instance, wix_emulator.order_fulfilled_event(instance, order)
        ),
    )
    assert (
        client.post(
            "/webhooks/wix", data=wix_emulator.sign_webhook("wix.ecom.v1.order_fulfilled", instance, {}, wrong_key=True)
        ).status_code
        == 401
    )

    ct_emulator.fail_rate = wix_emulator.fail_rate = 0.3
    ct_emulator.expire_tokens()
    ct_emulator.inject(401, times=2, path_contains="/reviews")  # a refused token, renewed
    try:
        drain_until_settled(chatty_app, timeout_s=scale(60, 600), threads=4)
    finally:
        ct_emulator.fail_rate = wix_emulator.fail_rate = 0.0

    answers = []
    status = cli_runner(chatty_app).invoke(args=["status", "--json"])
    answers.append(("reviewbridge status --json", status.output))
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    for path in (
        "/admin/api/status",
        "/admin/api/events?limit=500",
        "/admin/api/dead-letters",
        "/admin/api/resyncs",
        "/metrics",
        "/readyz",
    ):
        answers.append((path, client.get(path, headers=admin).get_data(as_text=True)))
    for wrong in ({"Authorization": "Bearer nope"}, {"Authorization": f"Basic {ADMIN_TOKEN}"}, {}):
        answers.append(("refused admin call", client.get("/admin/api/status", headers=wrong).get_data(as_text=True)))
    with transaction(services_of(chatty_app).engine) as session:
        ids = session.execute(select(InboxEvent.id)).scalars().all()
        errors = [
            *session.execute(select(InboxEvent.last_error)).scalars(),
            *session.execute(select(Attempt.error)).scalars(),
            *session.execute(select(LedgerEntry.last_error)).scalars(),
        ]
    for event_pk in ids:
        answers.append(
            (
                f"/admin/api/events/{event_pk}",
                client.get(f"/admin/api/events/{event_pk}", headers=admin).get_data(as_text=True),
            )
        )
    for where, text in answers:
        leaks.scan(text, where)
    for error in errors:
        leaks.scan(error, "stored error")
    report(
        "secrets",
        answers_scanned=len(answers),
        stored_errors=sum(e is not None for e in errors),
        ct_failed=sum(r.status >= 429 for r in ct_emulator.requests),
        leaks=len(leaks.found),
    )
    assert leaks.found == []
