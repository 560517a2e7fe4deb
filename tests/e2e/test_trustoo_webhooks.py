"""POST /webhooks/trustoo/<topic>: what Trustoo sends, what it hears back, and what is stored."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import func, select

from app.bootstrap import services_of
from app.core.db import transaction
from app.core.models import InboxEvent
from tests.builders import (
    TRUSTOO_OLD_PRIVATE_TOKEN,
    trustoo_body,
    trustoo_headers,
    trustoo_review,
)
from tests.cli import cli_runner

SUCCESS = b'{"code":0,"message":"success"}'


def _rows(engine) -> list[InboxEvent]:
    with transaction(engine) as session:
        return list(session.execute(select(InboxEvent).order_by(InboxEvent.id)).scalars())


def _post(client, body: bytes, headers: dict, topic: str | None = "review-created"):
    path = "/webhooks/trustoo" + (f"/{topic}" if topic else "")
    return client.post(path, data=body, headers=headers)


def test_trustoo_signed_batch_is_stored_one_row_per_review_and_answered_with_success(client, engine):
    body = trustoo_body(trustoo_review(), trustoo_review(id="r-string-id"))
    response = _post(client, body, trustoo_headers(body))
    assert (response.status_code, response.data) == (200, SUCCESS)
    rows = _rows(engine)
    assert [(r.topic, r.kind, r.status) for r in rows] == [("review/created", "upsert", "pending")] * 2
    assert rows[1].subject_id == "r-string-id"
    assert rows[0].delivery_id == "5f0c6a1e9b2d4c7a8e3f1a2b3c4d5e6f"


def test_trustoo_retry_with_same_body_is_acknowledged_once(client, engine):
    body = trustoo_body(trustoo_review())
    for request_id in ("first", "second"):
        response = _post(client, body, trustoo_headers(body, request_id=request_id))
        assert (response.status_code, response.data) == (200, SUCCESS)
    assert len(_rows(engine)) == 1


def test_trustoo_edit_of_the_same_review_is_a_new_event(client, engine):
    review = trustoo_review()
    for content in ("first words", "second thoughts"):
        body = trustoo_body({**review, "content": content})
        _post(client, body, trustoo_headers(body), topic="review-updated")
    assert len(_rows(engine)) == 2


def test_trustoo_delivery_signed_with_the_previous_private_token_is_accepted(client, engine):
    body = trustoo_body(trustoo_review())
    response = _post(client, body, trustoo_headers(body, private_token=TRUSTOO_OLD_PRIVATE_TOKEN))
    assert response.status_code == 200 and len(_rows(engine)) == 1


def test_trustoo_topic_may_come_from_the_body(client, engine):
    body = json.dumps({"event_type": "review/deleted", "list": [{"id": 42}]}).encode()
    assert _post(client, body, trustoo_headers(body), topic=None).status_code == 200
    assert [(r.topic, r.kind) for r in _rows(engine)] == [("review/deleted", "delete")]


def _tamper(body: bytes, headers: dict) -> tuple[bytes, dict]:
    return body.replace(b'"rating":5', b'"rating":1'), headers


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda b, h: (b, {k: v for k, v in h.items() if "Sign" not in k}), id="unsigned"),
        pytest.param(lambda b, h: (b, {**h, "Open-Trustoo-Webhook-Sign": "0" * 64}), id="wrong-signature"),
        pytest.param(_tamper, id="body-changed-after-signing"),
        pytest.param(lambda b, h: (json.dumps(json.loads(b), indent=1).encode(), h), id="reserialised-body"),
        pytest.param(lambda b, h: (b, trustoo_headers(b, public_token="someone-else")), id="unknown-public-token"),
        pytest.param(lambda b, h: (b, trustoo_headers(b, private_token="not-our-private-token")), id="foreign-key"),
        pytest.param(lambda b, h: (b, trustoo_headers(b, timestamp=int(time.time()) - 3600)), id="stale"),
        pytest.param(lambda b, h: (b, trustoo_headers(b, timestamp=int(time.time()) + 3600)), id="from-the-future"),
        pytest.param(lambda b, h: (b, {**h, "Open-Trustoo-Webhook-Timestamp": "yesterday"}), id="bad-timestamp"),
        pytest.param(lambda b, h: (b, {**h, "Open-Trustoo-Webhook-Sign": "ü" * 64}), id="non-ascii-signature"),
        pytest.param(lambda b, h: (b, {**h, "Open-Trustoo-Webhook-Sign": "a" * 8000}), id="oversized-header"),
    ],
)
def test_trustoo_untrusted_delivery_is_refused_with_401_and_nothing_stored(client, engine, change):
    body = trustoo_body(trustoo_review())
    body, headers = change(body, trustoo_headers(body))
    response = _post(client, body, headers)
    assert response.status_code == 401
    assert response.get_json()["error"] == "unauthorized"
    assert _rows(engine) == []


def test_trustoo_rejections_show_in_status(client, app, engine):
    body = trustoo_body(trustoo_review())
    _post(client, body, {**trustoo_headers(body), "Open-Trustoo-Webhook-Sign": "f" * 64})
    result = cli_runner(app).invoke(args=["status", "--json"])
    assert json.loads(result.output)["rejected_signatures"] == 1


@pytest.mark.parametrize(
    "body, reason",
    [
        (b"{not json", "body is not JSON"),
        (b"\xff\xfe\x00garbage", "body is not UTF-8"),
        (b"", "body is not JSON"),
        (b"[1,2,3]", "body is not a JSON object"),
        (b'{"items":[]}', 'body has no "list" of reviews'),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_trustoo_signed_but_unusable_body_is_quarantined_and_acknowledged(client, engine, body, reason):
    response = _post(client, body, trustoo_headers(body))
    assert (response.status_code, response.data) == (200, SUCCESS)
    [row] = _rows(engine)
    assert row.status == "quarantined" and reason in row.last_error


def test_trustoo_quarantined_delivery_redelivered_is_stored_once(client, engine):
    body = b"{not json"
    for _ in range(3):
        _post(client, body, trustoo_headers(body))
    assert len(_rows(engine)) == 1


def test_trustoo_batch_keeps_good_reviews_and_quarantines_an_item_without_id(client, engine):
    body = trustoo_body(trustoo_review(), {"rating": 4, "content": "who am I?"})
    assert _post(client, body, trustoo_headers(body)).status_code == 200
    assert sorted(r.status for r in _rows(engine)) == ["pending", "quarantined"]


@pytest.mark.parametrize(
    "review_id, reason",
    [
        ("1001\x00", "holds a NUL character"),
        ("9" * 300, "is longer than 255 characters"),
    ],
)
def test_trustoo_signed_review_whose_id_cannot_be_stored_is_quarantined_not_refused(client, engine, review_id, reason):
    body = trustoo_body(trustoo_review(id=review_id), trustoo_review())
    assert (_post(client, body, trustoo_headers(body)).status_code, len(_rows(engine))) == (200, 2)
    [odd] = [row for row in _rows(engine) if row.status == "quarantined"]
    assert reason in odd.last_error and json.loads(odd.payload)["id"] == review_id


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"list":[{"id":1,"rating":' + b"9" * 5000 + b"}]}", id="in-a-review"),
        pytest.param(b'{"n":' + b"9" * 5000 + b',"list":[]}', id="beside-the-list"),
    ],
)
def test_trustoo_signed_number_of_5000_digits_quarantines_the_delivery_and_is_acknowledged(client, engine, body):
    response = _post(client, body, trustoo_headers(body))
    assert (response.status_code, response.data) == (200, SUCCESS)
    [row] = _rows(engine)
    assert row.status == "quarantined" and "number too long to read" in row.last_error
    assert json.loads(row.payload) == body.decode()  # the delivery as it came


def test_trustoo_signed_review_id_with_a_lone_surrogate_is_quarantined_not_refused(client, engine):
    body = b'{"list":[{"id":"r-\\ud800","rating":5}]}'
    assert _post(client, body, trustoo_headers(body)).status_code == 200
    [row] = _rows(engine)
    assert row.status == "quarantined" and "lone surrogate" in row.last_error


def test_trustoo_public_token_with_a_nul_is_unknown_and_refused_with_401(client, engine):
    body = trustoo_body(trustoo_review())
    assert _post(client, body, trustoo_headers(body, public_token="shop\x00")).status_code == 401
    assert _rows(engine) == []


def test_trustoo_body_over_the_size_limit_is_refused_with_413(client, engine, services):
    body = trustoo_body(trustoo_review(content="x" * services.settings.webhook_max_bytes))
    response = _post(client, body, trustoo_headers(body))
    assert response.status_code == 413 and response.is_json
    assert _rows(engine) == []


@pytest.mark.parametrize("path", ["/webhooks/trustoo/review-exploded", "/webhooks/shopify", "/nowhere"])
def test_unknown_source_or_topic_is_404(client, path):
    response = client.post(path, data=b"{}")
    assert response.status_code == 404 and response.is_json


def test_wrong_method_is_405(client):
    response = client.get("/webhooks/trustoo/review-created")
    assert response.status_code == 405 and response.is_json


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_trustoo_body_is_read_raw_whatever_the_content_type(client, engine, content_type):
    body = trustoo_body(trustoo_review())
    headers = {**trustoo_headers(body), "Content-Type": content_type}
    assert _post(client, body, headers).status_code == 200
    assert len(_rows(engine)) == 1


def test_trustoo_webhooks_not_configured_answer_401(environ, target):
    from app import create_app

    environ = {k: v for k, v in environ.items() if not k.startswith("TRUSTOO_")}
    app = create_app(environ, targets=[target])
    body = trustoo_body(trustoo_review())
    assert _post(app.test_client(), body, trustoo_headers(body)).status_code == 401
    services_of(app).engine.dispose()


def test_total_rows_match_deliveries_under_mixed_traffic(client, engine):
    bodies = [trustoo_body(trustoo_review()) for _ in range(20)]
    for body in bodies + bodies[:5]:
        _post(client, body, trustoo_headers(body))
    with transaction(engine) as session:
        assert session.execute(select(func.count()).select_from(InboxEvent)).scalar() == 20
