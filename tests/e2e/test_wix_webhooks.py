"""POST /webhooks/wix with signed input no column or parser takes as it is: stored as quarantined, with
the reason, and answered 200 so that Wix stops sending it; never a 500."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import select

from app import create_app
from app.bootstrap import services_of
from app.core.db import transaction
from app.core.models import InboxEvent
from tests.fakes.wix import WixEmulator

REVIEW_CREATED = "wix.reviews.v1.review_created"
HUGE = "9" * 5000


@pytest.fixture
def wix():
    emulator = WixEmulator()
    return emulator, emulator.add_instance()


@pytest.fixture
def wix_client(environ, wix):
    emulator, _ = wix
    app = create_app(environ | {"WIX_PUBLIC_KEY": emulator.public_key_pem.replace("\n", "\\n")})
    yield app.test_client(), services_of(app).engine
    services_of(app).engine.dispose()


def _domain(review_id: str = "r-1", event_id: str = "e-1") -> dict:
    return {
        "id": event_id,
        "entityFqdn": "wix.reviews.v1.review",
        "slug": "created",
        "entityId": review_id,
        "createdEvent": {"entity": {"id": review_id, "content": {"rating": 5, "body": "fine"}}},
    }


def _rows(engine) -> list[InboxEvent]:
    with transaction(engine) as session:
        return list(session.execute(select(InboxEvent).order_by(InboxEvent.id)).scalars())


def _claims(envelope: str) -> str:
    now = int(time.time())
    return json.dumps({"data": envelope, "iat": now, "exp": now + 300})


def _post(client, body: bytes):
    response = client.post("/webhooks/wix", data=body, headers={"Content-Type": "text/plain"})
    assert (response.status_code, response.data) == (200, b""), response.data[:300]


@pytest.mark.parametrize(
    "instance_id, reason",
    [
        pytest.param("i" * 300, "account is longer than 255 characters", id="too-long"),
        pytest.param("inst\x00ance", "account holds a NUL character", id="nul"),
    ],
)
def test_wix_signed_instance_id_no_column_holds_is_quarantined_under_a_storable_form(
    wix_client, wix, instance_id, reason
):
    client, engine = wix_client
    emulator, _ = wix
    _post(client, emulator.sign_webhook(REVIEW_CREATED, instance_id, _domain()))
    [row] = _rows(engine)
    assert row.status == "quarantined" and reason in row.last_error
    assert len(row.account) <= 255 and "\x00" not in row.account
    assert json.loads(row.payload)["id"] == "r-1"  # the review Wix sent is kept


@pytest.mark.parametrize("field", ["id", "entityId"])
@pytest.mark.parametrize("value", ["x" * 3000, "r\x00-1", "r-\ud800"], ids=["too-long", "nul", "lone-surrogate"])
def test_wix_signed_event_or_review_id_no_column_holds_is_quarantined(wix_client, wix, field, value):
    client, engine = wix_client
    emulator, instance = wix
    domain = _domain() | {field: value}
    if field == "entityId":
        domain["createdEvent"]["entity"]["id"] = value
    _post(client, emulator.sign_webhook(REVIEW_CREATED, instance, domain))
    [row] = _rows(engine)
    assert row.status == "quarantined" and row.account == instance


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param(
            lambda i: _claims(
                json.dumps({"eventType": REVIEW_CREATED, "instanceId": i, "data": "{}"})[:-1] + f',"n":{HUGE}}}'
            ),
            id="in-the-envelope",
        ),
        pytest.param(
            lambda i: _claims(json.dumps({"eventType": REVIEW_CREATED, "instanceId": i, "data": f'{{"id":{HUGE}}}'})),
            id="in-the-domain-event",
        ),
        pytest.param(lambda i: _claims("{}")[:-1] + f',"n":{HUGE}}}', id="in-the-claims"),
    ],
)
def test_wix_signed_number_of_5000_digits_is_quarantined_with_the_reason(wix_client, wix, claims):
    client, engine = wix_client
    emulator, instance = wix
    _post(client, emulator.sign_claims_text(claims(instance)))
    [row] = _rows(engine)
    assert row.status == "quarantined"
    assert "number too long to read" in row.last_error or "readable" in row.last_error
