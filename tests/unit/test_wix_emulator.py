"""The Wix emulator (tests/fakes/wix.py): each rule it holds our Wix connector to, pinned.

Everything goes through HTTP exactly as the connector will (`httpx.WSGITransport`), except the
webhook delivery test, which serves a receiver on loopback with `serve_wsgi`.
"""

from __future__ import annotations

import json
import threading
import time

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.wrappers import Request, Response

from tests.fakes.serving import serve_wsgi
from tests.fakes.wix import BOOKINGS_APP_ID, STORES_APP_ID, WixEmulator

APP_ID, APP_SECRET = "wix-app-id", "wix-app-secret-0123456789"
SITE, OTHER_SITE = "6f1c9a2e-5b7d-4e0a-9c3f-2d8b7e6a1f40", "0a7e5c3b-1111-4e0a-9c3f-2d8b7e6a1f41"
T0 = 1_795_000_000.0
_KEY_PEM = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
)


class Clock:
    def __init__(self, now: float = T0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def emu(clock: Clock) -> WixEmulator:
    emulator = WixEmulator(app_id=APP_ID, app_secret=APP_SECRET, clock=clock, seed=7, private_key_pem=_KEY_PEM)
    emulator.add_instance(SITE)
    emulator.add_instance(OTHER_SITE)
    return emulator


def _client(emu: WixEmulator) -> httpx.Client:
    return httpx.Client(transport=httpx.WSGITransport(app=emu), base_url="http://wix.test")


def _token(client: httpx.Client, instance_id: str = SITE) -> str:
    response = client.post(
        "/oauth2/token",
        json={
            "grant_type": "client_credentials",
            "client_id": APP_ID,
            "client_secret": APP_SECRET,
            "instance_id": instance_id,
        },
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


@pytest.fixture
def api(emu: WixEmulator) -> httpx.Client:
    """A client already holding an app token for SITE, sent the way the Wix SDK sends it (no Bearer)."""
    client = _client(emu)
    client.headers["Authorization"] = _token(client)
    return client


def _app_code(response: httpx.Response) -> str:
    return response.json()["details"]["applicationError"]["code"]


def _violation(response: httpx.Response) -> dict:
    return response.json()["details"]["validationError"]["fieldViolations"][0]


def _decode(emu: WixEmulator, body: bytes) -> tuple[dict, dict, dict, dict]:
    # the emulator's clock is frozen at T0; exp is checked in its own test, against real time
    claims = jwt.decode(
        body.decode(),
        emu.public_key_pem,
        algorithms=["RS256"],
        options={"verify_aud": False, "verify_exp": False, "require": ["exp", "iat"]},
    )
    envelope = json.loads(claims["data"])
    return claims, envelope, json.loads(envelope["data"]), json.loads(envelope["identity"])


def _rr(order_id: str | None = None, contact_id: str = "c0ff-contact", **extra) -> dict:
    body = {"namespace": "stores", "recipient": {"contactId": contact_id}, "communicationChannel": "EMAIL", **extra}
    if order_id:
        body["order"] = {"id": order_id}
    return {"reviewRequest": body}


# --- OAuth and tokens -----------------------------------------------------------------------------


def test_wix_token_client_credentials_returns_4h_bearer_token(emu):
    with _client(emu) as client:
        response = client.post(
            "/oauth2/token",
            json={
                "grant_type": "client_credentials",
                "client_id": APP_ID,
                "client_secret": APP_SECRET,
                "instance_id": SITE,
            },
        )
    body = response.json()
    assert response.status_code == 200
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 14400)
    assert body["access_token"]


def test_wix_token_wrong_secret_is_401_with_wix_error_shape(emu):
    with _client(emu) as client:
        response = client.post(
            "/oauth2/token",
            json={
                "grant_type": "client_credentials",
                "client_id": APP_ID,
                "client_secret": "nope",
                "instance_id": SITE,
            },
        )
    assert response.status_code == 401
    assert set(response.json()) == {"message", "details"}
    assert _app_code(response) == "UNAUTHENTICATED"


def test_wix_token_unknown_instance_is_400(emu):
    with _client(emu) as client:
        response = client.post(
            "/oauth2/token",
            json={
                "grant_type": "client_credentials",
                "client_id": APP_ID,
                "client_secret": APP_SECRET,
                "instance_id": "not-installed",
            },
        )
    assert response.status_code == 400
    assert _app_code(response) == "APP_NOT_INSTALLED"


def test_wix_token_missing_instance_id_is_400_validation_error(emu):
    with _client(emu) as client:
        response = client.post(
            "/oauth2/token", json={"grant_type": "client_credentials", "client_id": APP_ID, "client_secret": APP_SECRET}
        )
    assert response.status_code == 400
    assert _violation(response)["field"] == "instance_id"
    assert _violation(response)["violatedRule"] == "REQUIRED_FIELD"


def test_wix_api_call_with_bearer_prefix_is_401(emu):
    with _client(emu) as client:
        token = _token(client)
        response = client.post("/reviews/v1/reviews/query", json={}, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert client.post("/reviews/v1/reviews/query", json={}, headers={"Authorization": token}).status_code == 200


def test_wix_api_call_without_or_with_unknown_token_is_401(emu):
    with _client(emu) as client:
        assert client.post("/reviews/v1/reviews/query", json={}).status_code == 401
        response = client.post("/reviews/v1/reviews/query", json={}, headers={"Authorization": "forged"})
    assert response.status_code == 401
    assert _app_code(response) == "UNAUTHENTICATED"


def test_wix_token_expires_after_4h_by_the_clock(emu, clock, api):
    clock.advance(14400 - 1)
    assert api.post("/reviews/v1/reviews/query", json={}).status_code == 200
    clock.advance(1)
    assert api.post("/reviews/v1/reviews/query", json={}).status_code == 401


def test_wix_removed_instance_tokens_stop_working(emu, api):
    emu.remove_instance(SITE)
    assert api.post("/reviews/v1/reviews/query", json={}).status_code == 401
    with _client(emu) as client:
        response = client.post(
            "/oauth2/token",
            json={
                "grant_type": "client_credentials",
                "client_id": APP_ID,
                "client_secret": APP_SECRET,
                "instance_id": SITE,
            },
        )
    assert response.status_code == 400


def test_wix_token_is_scoped_to_its_instance(emu, api):
    review = emu.add_review(OTHER_SITE)
    assert api.get(f"/reviews/v1/reviews/{review['id']}").status_code == 404
    assert api.post("/reviews/v1/reviews/query", json={}).json()["reviews"] == []


# --- webhooks -------------------------------------------------------------------------------------


def test_wix_webhook_body_is_rs256_jwt_with_three_layers(emu, clock):
    review = emu.add_review(SITE, title="Great mug", rating=5, contact_id="c0ff-contact")
    body = emu.sign_webhook("wix.reviews.v1.review_created", SITE, emu.last_event)
    assert body.count(b".") == 2 and not body.startswith(b"{")
    header = jwt.get_unverified_header(body.decode())
    claims, envelope, event, identity = _decode(emu, body)
    assert header["alg"] == "RS256" and "kid" in header
    assert (claims["iat"], claims["exp"]) == (int(T0), int(T0) + 300)
    assert isinstance(claims["data"], str) and isinstance(envelope["data"], str)
    assert isinstance(envelope["identity"], str) and identity["identityType"] == "WIX_USER"
    assert (envelope["eventType"], envelope["instanceId"]) == ("wix.reviews.v1.review_created", SITE)
    assert (event["entityFqdn"], event["slug"], event["entityId"]) == ("wix.reviews.v1.review", "created", review["id"])
    assert event["createdEvent"]["entity"] == review
    assert event["eventTime"].endswith("Z") and event["triggeredByAnonymizeRequest"] is False


def test_wix_webhook_public_key_is_per_emulator_rsa_2048():
    first, second = WixEmulator(), WixEmulator()
    key = serialization.load_pem_public_key(first.public_key_pem.encode())
    assert first.public_key_pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert key.key_size == 2048 and first.public_key_pem != second.public_key_pem
    body = first.sign_webhook("wix.reviews.v1.review_created", SITE, {"id": "e1"})
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(body, second.public_key_pem, algorithms=["RS256"])


def test_wix_webhook_expired_token_fails_verification(emu):
    body = emu.sign_webhook(
        "wix.reviews.v1.review_created", SITE, {"id": "e1"}, issued_at=time.time() - 1000, expires_in_s=300
    )
    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(body, emu.public_key_pem, algorithms=["RS256"], leeway=60)


def test_wix_webhook_forged_tokens_fail_rs256_verification(emu):
    for forged in (
        emu.sign_webhook("t", SITE, {}, wrong_key=True),
        emu.sign_webhook("t", SITE, {}, algorithm="none"),
        emu.sign_webhook("t", SITE, {}, algorithm="HS256"),
    ):
        with pytest.raises(jwt.InvalidTokenError):
            jwt.decode(forged, emu.public_key_pem, algorithms=["RS256"])


def test_wix_webhook_aud_claim_trips_pyjwt_without_verify_aud_false(emu):
    body = emu.sign_webhook("t", SITE, {}, extra_claims={"aud": APP_ID})
    frozen = {"verify_exp": False}  # the emulator's clock is frozen in the past
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(body, emu.public_key_pem, algorithms=["RS256"], options=frozen)
    claims = jwt.decode(body, emu.public_key_pem, algorithms=["RS256"], options={**frozen, "verify_aud": False})
    assert claims["aud"] == APP_ID


def test_wix_review_event_sequence_increases_per_entity_and_ids_differ(emu):
    first, second = emu.add_review(SITE), emu.add_review(SITE)
    created = emu.last_event
    updated = emu.review_event(SITE, second["id"], "updated")
    other = emu.review_event(SITE, first["id"], "updated")
    assert int(updated["entityEventSequence"]) > int(created["entityEventSequence"])
    assert other["entityEventSequence"] == updated["entityEventSequence"]  # one sequence per entity
    assert len({created["id"], updated["id"], other["id"]}) == 3
    assert created["id"] != second["id"]  # the event id is not the entity id


def test_wix_review_event_bodies_follow_each_slug(emu):
    review = emu.add_review(SITE, moderation_status="IN_MODERATION")
    assert emu.last_event["createdEvent"]["entity"]["moderation"]["moderationStatus"] == "IN_MODERATION"
    changed = emu.moderate(SITE, review["id"], "APPROVED")
    moderation = emu.last_event
    assert moderation["slug"] == "moderation_status_changed"
    assert moderation["actionEvent"]["body"] == {"review": changed, "previousModerationStatus": "IN_MODERATION"}
    kinds = [e.event_type for e in emu.events if e.event["entityId"] == review["id"]]
    assert kinds == [
        "wix.reviews.v1.review_created",
        "wix.reviews.v1.review_moderation_status_changed",
        "wix.reviews.v1.review_moderation_status_changed",
        "wix.reviews.v1.review_review_published",
    ]
    edited = emu.update_review(SITE, review["id"], body="Edited")
    assert emu.last_event["updatedEvent"]["currentEntity"] == edited and edited["revision"] == "3"
    emu.delete_review(SITE, review["id"])
    assert emu.last_event["deletedEvent"]["deletedEntity"]["id"] == review["id"]
    assert emu.review_event(SITE, review["id"], "created")["createdEvent"]["entity"]["content"]["body"] == "Edited"


def test_wix_review_webhook_signs_a_fresh_event_with_its_event_type(emu):
    review = emu.add_review(SITE)
    _, envelope, event, _ = _decode(emu, emu.review_webhook(SITE, review["id"], "updated"))
    assert envelope["eventType"] == "wix.reviews.v1.review_updated"
    assert event["updatedEvent"]["currentEntity"] == review and event == emu.events[-1].event


def test_wix_review_event_as_json_carries_entity_as_json_string(emu):
    review = emu.add_review(SITE)
    event = emu.review_event(SITE, review["id"], "created", as_json=True)
    assert "entity" not in event["createdEvent"]
    assert json.loads(event["createdEvent"]["entityAsJson"]) == review
    action = emu.review_event(SITE, review["id"], "moderation_status_changed", as_json=True)
    assert json.loads(action["actionEvent"]["bodyAsJson"])["review"]["id"] == review["id"]


def test_wix_add_review_returns_the_review_as_the_api_returns_it(emu, api):
    review = emu.add_review(
        SITE, entity_id="e7d0-product", contact_id="c0ff", author_name="Dana", title="Mug", body="Hot", rating=4
    )
    assert api.get(f"/reviews/v1/reviews/{review['id']}").json()["review"] == review
    assert review["content"] == {"title": "Mug", "body": "Hot", "media": [], "rating": 4}
    assert review["author"] == {"contactId": "c0ff", "authorName": "Dana"}
    assert (review["revision"], review["origin"], review["namespace"]) == ("1", {"type": "ORGANIC"}, "stores")
    assert review["createdDate"] == "2026-11-18T11:06:40.000Z"
    with pytest.raises(Exception, match="one review per author per entity"):
        emu.add_review(SITE, entity_id="e7d0-product", contact_id="c0ff")


def test_wix_order_fulfilled_event_carries_order_and_statuses(emu):
    order = emu.make_order(SITE, stores_items=2)
    event = emu.order_fulfilled_event(SITE, order)
    body = event["actionEvent"]["body"]
    assert (event["entityFqdn"], event["slug"], event["entityId"]) == ("wix.ecom.v1.order", "fulfilled", order["id"])
    assert (body["previousFulfillmentStatus"], body["newFulfillmentStatus"]) == ("NOT_FULFILLED", "FULFILLED")
    assert body["order"]["id"] == order["id"] and body["order"]["fulfillmentStatus"] == "FULFILLED"
    assert emu.events[-1].event_type == "wix.ecom.v1.order_fulfilled"
    _, envelope, decoded, _ = _decode(emu, emu.sign_event(emu.events[-1]))
    assert envelope["eventType"] == "wix.ecom.v1.order_fulfilled" and decoded == event


def test_wix_make_order_marks_stores_and_other_app_line_items(emu):
    order = emu.make_order(SITE, order_id="o-1", contact_id="c-1", stores_items=2, other_items=1)
    apps = [li["catalogReference"]["appId"] for li in order["lineItems"]]
    assert apps == [STORES_APP_ID, STORES_APP_ID, BOOKINGS_APP_ID]
    assert order["id"] == "o-1" and order["buyerInfo"]["contactId"] == "c-1"
    assert "contactId" not in emu.make_order(SITE, contact_id=None)["buyerInfo"]


def test_wix_deliver_posts_the_jwt_as_body_with_duplicates_and_shuffles(emu):
    received: list[bytes] = []
    lock = threading.Lock()

    def receiver(environ, start_response):
        request = Request(environ)
        with lock:
            received.append(request.get_data())
        status = 500 if request.args.get("fail") else 200
        return Response("", status)(environ, start_response)

    emu.add_review(SITE)
    first = emu.sign_webhook("wix.reviews.v1.review_created", SITE, emu.last_event)
    fulfilled = emu.order_fulfilled_event(SITE, emu.make_order(SITE))
    second = emu.sign_webhook("wix.ecom.v1.order_fulfilled", SITE, fulfilled)
    with serve_wsgi(receiver) as url:
        deliveries = emu.deliver(f"{url}/webhooks/wix", first, times=2)
        assert [d.status for d in deliveries] == [200, 200] and all(d.ok for d in deliveries)
        assert received == [first, first]
        many = emu.deliver_many(f"{url}/webhooks/wix", [first, second], duplicates=2, seed=3, concurrency=2)
        assert len(many) == 4 and all(d.ok for d in many)
        assert sorted(received[2:]) == sorted([first, first, second, second])
        failed = emu.deliver(f"{url}/webhooks/wix?fail=1", second, retries=2)
        assert [d.status for d in failed] == [500, 500, 500] and not any(d.ok for d in failed)
    assert len(emu.deliveries) == 9


def test_wix_deliver_refuses_non_loopback_urls(emu):
    with pytest.raises(ValueError, match="loopback"):
        emu.deliver("https://example.com/webhooks/wix", b"x")


# --- Reviews --------------------------------------------------------------------------------------


def test_wix_get_private_review_is_404_unless_return_private_reviews(emu, api):
    review = emu.add_review(SITE, moderation_status="IN_MODERATION")
    hidden = api.get(f"/reviews/v1/reviews/{review['id']}")
    assert hidden.status_code == 404 and _app_code(hidden) == "NOT_FOUND"
    shown = api.get(f"/reviews/v1/reviews/{review['id']}", params={"returnPrivateReviews": "true"})
    assert shown.status_code == 200 and shown.json()["review"]["id"] == review["id"]


def test_wix_query_reviews_hides_private_reviews_unless_asked(emu, api):
    public = emu.add_review(SITE)
    for status in ("IN_MODERATION", "REJECTED", "SUBMITTED"):
        emu.add_review(SITE, moderation_status=status)
    assert [r["id"] for r in api.post("/reviews/v1/reviews/query", json={}).json()["reviews"]] == [public["id"]]
    everything = api.post("/reviews/v1/reviews/query", json={"query": {}, "returnPrivateReviews": True}).json()
    assert len(everything["reviews"]) == 4


def test_wix_query_reviews_pages_by_cursor_in_created_order(emu, api, clock):
    ids = []
    for _ in range(5):
        ids.append(emu.add_review(SITE)["id"])
        clock.advance(1)
    page = api.post("/reviews/v1/reviews/query", json={"query": {"cursorPaging": {"limit": 2}}}).json()
    seen = [r["id"] for r in page["reviews"]]
    assert page["metadata"]["count"] == 2 and page["metadata"]["cursors"]["next"]
    emu.add_review(SITE, created_date=T0 - 100)  # inserted before the cursor: must not shift the pages
    while page["metadata"]["cursors"].get("next"):
        cursor = page["metadata"]["cursors"]["next"]
        body = {"query": {"cursorPaging": {"limit": 2, "cursor": cursor}}}
        page = api.post("/reviews/v1/reviews/query", json=body).json()
        seen += [r["id"] for r in page["reviews"]]
    assert seen == ids
    assert page["metadata"] == {"count": 1, "cursors": {}}


def test_wix_query_reviews_cursor_with_filter_or_sort_is_400(emu, api):
    for _ in range(3):
        emu.add_review(SITE)
    first = api.post("/reviews/v1/reviews/query", json={"query": {"cursorPaging": {"limit": 1}}}).json()
    cursor = first["metadata"]["cursors"]["next"]
    response = api.post(
        "/reviews/v1/reviews/query",
        json={"query": {"filter": {"namespace": "stores"}, "cursorPaging": {"limit": 1, "cursor": cursor}}},
    )
    assert response.status_code == 400
    assert _violation(response)["field"] == "query.cursorPaging.cursor"
    bogus = api.post("/reviews/v1/reviews/query", json={"query": {"cursorPaging": {"cursor": "made-up"}}})
    assert bogus.status_code == 400 and _app_code(bogus) == "INVALID_CURSOR"


def test_wix_query_reviews_limit_over_100_is_400_and_default_is_50(emu, api):
    response = api.post("/reviews/v1/reviews/query", json={"query": {"cursorPaging": {"limit": 101}}})
    assert response.status_code == 400 and _violation(response)["violatedRule"] == "MAX"
    for _ in range(51):
        emu.add_review(SITE)
    assert len(api.post("/reviews/v1/reviews/query", json={}).json()["reviews"]) == 50
    everything = api.post("/reviews/v1/reviews/query", json={"query": {"cursorPaging": {"limit": 100}}}).json()
    assert len(everything["reviews"]) == 51


def test_wix_query_reviews_filters_on_created_date(emu, api, clock):
    old = emu.add_review(SITE)
    clock.advance(60)
    new = emu.add_review(SITE)

    def ids(condition):
        body = {"query": {"filter": {"createdDate": condition}}}
        return [r["id"] for r in api.post("/reviews/v1/reviews/query", json=body).json()["reviews"]]

    assert ids({"$gt": old["createdDate"]}) == [new["id"]]
    assert ids({"$gte": old["createdDate"]}) == [old["id"], new["id"]]
    assert ids({"$lt": new["createdDate"]}) == [old["id"]]
    assert ids({"$gte": old["createdDate"], "$lt": new["createdDate"]}) == [old["id"]]


def test_wix_query_reviews_unsupported_filter_or_sort_is_400(emu, api):
    for query in (
        {"filter": {"updatedDate": {"$gt": "2026-01-01T00:00:00Z"}}},
        {"filter": {"entityId": {"$gt": "x"}}},
        {"sort": [{"fieldName": "entityId", "order": "ASC"}]},
    ):
        response = api.post("/reviews/v1/reviews/query", json={"query": query})
        assert response.status_code == 400, query
        assert "validationError" in response.json()["details"]


def test_wix_query_reviews_filters_and_sorts(emu, api):
    low = emu.add_review(SITE, entity_id="p-1", rating=2)
    high = emu.add_review(SITE, entity_id="p-1", rating=5)
    emu.add_review(SITE, entity_id="p-2", rating=4)
    body = {"query": {"filter": {"entityId": "p-1"}, "sort": [{"fieldName": "content.rating", "order": "DESC"}]}}
    found = api.post("/reviews/v1/reviews/query", json=body).json()["reviews"]
    assert [r["id"] for r in found] == [high["id"], low["id"]]
    either = {"query": {"filter": {"$or": [{"content.rating": {"$lte": 2}}, {"entityId": {"$in": ["p-2"]}}]}}}
    assert len(api.post("/reviews/v1/reviews/query", json=either).json()["reviews"]) == 2
    assert api.post("/reviews/v1/reviews/count", json={"filter": {"entityId": "p-1"}}).json() == {"count": 2}


def test_wix_create_review_by_app_is_app_origin_and_one_per_author_per_entity(emu, api):
    draft = {
        "review": {
            "namespace": "stores",
            "entityId": "e7d0-product",
            "author": {"contactId": "c0ff"},
            "content": {"title": "Nice", "body": "Good", "rating": 5},
        }
    }
    created = api.post("/reviews/v1/reviews", json=draft)
    review = created.json()["review"]
    assert created.status_code == 200
    assert review["origin"] == {"type": "APP", "appId": APP_ID} and review["revision"] == "1"
    assert review["moderation"]["moderationStatus"] == "APPROVED"
    assert emu.last_event["createdEvent"]["entity"] == review
    duplicate = api.post("/reviews/v1/reviews", json=draft)
    assert duplicate.status_code == 409 and _app_code(duplicate) == "ALREADY_EXISTS"


def test_wix_create_review_on_moderated_site_waits_in_moderation(emu, api):
    emu.add_instance(SITE, moderation=True)
    draft = {"review": {"namespace": "stores", "entityId": "p", "author": {"contactId": "c"}, "content": {"rating": 3}}}
    review = api.post("/reviews/v1/reviews", json=draft).json()["review"]
    assert review["moderation"]["moderationStatus"] == "IN_MODERATION"
    assert api.get(f"/reviews/v1/reviews/{review['id']}").status_code == 404


def test_wix_create_review_without_contact_or_rating_is_400(emu, api):
    no_contact = {"review": {"namespace": "stores", "entityId": "p", "content": {"rating": 5}}}
    response = api.post("/reviews/v1/reviews", json=no_contact)
    assert response.status_code == 400 and _violation(response)["field"] == "review.author.contactId"
    bad_rating = {
        "review": {"namespace": "stores", "entityId": "p", "author": {"contactId": "c"}, "content": {"rating": 6}}
    }
    assert api.post("/reviews/v1/reviews", json=bad_rating).status_code == 400


def test_wix_update_review_requires_the_current_revision(emu, api):
    draft = {"review": {"namespace": "stores", "entityId": "p", "author": {"contactId": "c"}, "content": {"rating": 3}}}
    review = api.post("/reviews/v1/reviews", json=draft).json()["review"]
    path = f"/reviews/v1/reviews/{review['id']}"
    missing = api.patch(path, json={"review": {"id": review["id"], "content": {"rating": 4}}})
    assert missing.status_code == 400 and _violation(missing)["field"] == "review.revision"
    updated = api.patch(path, json={"review": {"id": review["id"], "revision": "1", "content": {"rating": 4}}})
    assert updated.status_code == 200
    assert updated.json()["review"]["revision"] == "2" and updated.json()["review"]["content"]["rating"] == 4
    stale = api.patch(path, json={"review": {"id": review["id"], "revision": "1", "content": {"rating": 1}}})
    assert stale.status_code == 409 and _app_code(stale) == "REVISION_MISMATCH"


def test_wix_update_organic_review_by_app_is_403(emu, api):
    review = emu.add_review(SITE)
    patch = {"review": {"revision": "1", "content": {"rating": 1}}}
    response = api.patch(f"/reviews/v1/reviews/{review['id']}", json=patch)
    assert response.status_code == 403


def test_wix_delete_review_returns_it_then_404(emu, api):
    review = emu.add_review(SITE)
    deleted = api.delete(f"/reviews/v1/reviews/{review['id']}")
    assert deleted.status_code == 200 and deleted.json()["review"]["id"] == review["id"]
    assert emu.last_event["slug"] == "deleted"
    assert api.delete(f"/reviews/v1/reviews/{review['id']}").status_code == 404
    assert api.get(f"/reviews/v1/reviews/{review['id']}").status_code == 404


def test_wix_moderate_via_api_takes_only_approved_or_rejected(emu, api):
    review = emu.add_review(SITE, moderation_status="IN_MODERATION")
    path = f"/reviews/v1/reviews/{review['id']}/moderate"
    assert api.patch(path, json={"status": "SUBMITTED"}).status_code == 400
    approved = api.patch(path, json={"status": "APPROVED"}).json()["review"]
    assert approved["moderation"] == {"moderationStatus": "APPROVED", "manuallyChanged": True}
    assert emu.events[-1].event_type == "wix.reviews.v1.review_review_published"


# --- Review Requests ------------------------------------------------------------------------------


def test_wix_create_review_request_for_order_takes_five_most_expensive_stores_items(emu, api):
    order = emu.make_order(SITE, stores_items=6, other_items=1, prices=[5, 60, 10, 50, 20, 40, 999])
    response = api.post("/reviews/v2/review-requests", json=_rr(order["id"], order["buyerInfo"]["contactId"]))
    request = response.json()["reviewRequest"]
    expected = [order["lineItems"][i]["catalogReference"]["catalogItemId"] for i in (1, 3, 5, 4, 2)]
    assert response.status_code == 200
    assert [i["catalogItemId"] for i in request["items"]] == expected
    assert request["order"] == {"id": order["id"], "number": order["number"]}
    assert (request["status"], request["revision"], request["communicationChannel"]) == ("SCHEDULED", "1", "EMAIL")
    assert request["requestedBy"] == {"identityType": "APP", "appId": APP_ID}
    assert emu.review_request_creates == [_rr(order["id"], order["buyerInfo"]["contactId"])]


def test_wix_create_review_request_twice_for_one_order_makes_two_requests(emu, api):
    order = emu.make_order(SITE)
    first = api.post("/reviews/v2/review-requests", json=_rr(order["id"]))
    second = api.post("/reviews/v2/review-requests", json=_rr(order["id"]))
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json()["reviewRequest"]["id"] != second.json()["reviewRequest"]["id"]
    assert len(emu.review_request_creates) == 2 and len(emu.review_requests(SITE)) == 2


def test_wix_create_review_request_without_order_or_items_is_400_either_required(emu, api):
    response = api.post("/reviews/v2/review-requests", json=_rr())
    assert response.status_code == 400
    assert _app_code(response) == "EITHER_ORDER_OR_ITEMS_REQUIRED"
    assert response.json()["message"] and response.json()["details"]["applicationError"]["description"]
    assert emu.review_request_creates == []


def test_wix_create_review_request_unknown_order_is_428_order_not_found(emu, api):
    response = api.post("/reviews/v2/review-requests", json=_rr("no-such-order"))
    assert response.status_code == 428 and _app_code(response) == "ORDER_NOT_FOUND"
    other_site_order = emu.make_order(OTHER_SITE)
    assert _app_code(api.post("/reviews/v2/review-requests", json=_rr(other_site_order["id"]))) == "ORDER_NOT_FOUND"


def test_wix_create_review_request_empty_order_is_428_order_is_empty(emu, api):
    empty = emu.make_order(SITE, stores_items=0)
    response = api.post("/reviews/v2/review-requests", json=_rr(empty["id"]))
    assert response.status_code == 428 and _app_code(response) == "ORDER_IS_EMPTY"


def test_wix_create_review_request_as_member_is_428_initiator_identity_not_supported(emu):
    order = emu.make_order(SITE)
    with _client(emu) as client:
        token = emu.issue_token(SITE, identity_type="MEMBER")
        response = client.post("/reviews/v2/review-requests", json=_rr(order["id"]), headers={"Authorization": token})
    assert response.status_code == 428 and _app_code(response) == "INITIATOR_IDENTITY_NOT_SUPPORTED"


def test_wix_create_review_request_without_channel_or_contact_is_400_validation(emu, api):
    order = emu.make_order(SITE)
    no_channel = _rr(order["id"])
    del no_channel["reviewRequest"]["communicationChannel"]
    response = api.post("/reviews/v2/review-requests", json=no_channel)
    assert response.status_code == 400 and _violation(response)["field"] == "reviewRequest.communicationChannel"
    no_contact = _rr(order["id"])
    del no_contact["reviewRequest"]["recipient"]
    response = api.post("/reviews/v2/review-requests", json=no_contact)
    assert response.status_code == 400 and _violation(response)["field"] == "reviewRequest.recipient.contactId"
    too_many = _rr(items=[{"catalogItemId": f"p{i}"} for i in range(6)])
    assert api.post("/reviews/v2/review-requests", json=too_many).status_code == 400


def test_wix_create_review_request_with_items_only_keeps_those_items(emu, api):
    response = api.post("/reviews/v2/review-requests", json=_rr(items=[{"catalogItemId": "p-1"}]))
    request = response.json()["reviewRequest"]
    assert response.status_code == 200 and request["items"] == [{"catalogItemId": "p-1"}] and "order" not in request


def test_wix_query_review_requests_filters_by_order_id_with_paging_metadata(emu, api):
    order, other = emu.make_order(SITE), emu.make_order(SITE)
    mine = api.post("/reviews/v2/review-requests", json=_rr(order["id"])).json()["reviewRequest"]
    api.post("/reviews/v2/review-requests", json=_rr(other["id"]))
    body = {"query": {"filter": {"order.id": {"$eq": order["id"]}}}}
    found = api.post("/reviews/v2/review-requests/query", json=body).json()
    assert found == {"reviewRequests": [mine], "pagingMetadata": {"count": 1, "cursors": {}, "hasNext": False}}
    paged = api.post("/reviews/v2/review-requests/query", json={"query": {"cursorPaging": {"limit": 1}}}).json()
    assert paged["pagingMetadata"]["hasNext"] is True and paged["pagingMetadata"]["cursors"]["next"]
    both = {"filter": {"order.id": {"$in": [order["id"], other["id"]]}}}
    count = api.post("/reviews/v2/review-requests/count", json=both)
    assert count.json() == {"count": 2}


def test_wix_get_review_request_by_id_or_404(emu, api):
    created = api.post("/reviews/v2/review-requests", json=_rr(emu.make_order(SITE)["id"])).json()["reviewRequest"]
    assert api.get(f"/reviews/v2/review-requests/{created['id']}").json() == {"reviewRequest": created}
    assert api.get("/reviews/v2/review-requests/nope").status_code == 404


def test_wix_delete_review_request_needs_the_canceled_state(emu, api):
    created = api.post("/reviews/v2/review-requests", json=_rr(emu.make_order(SITE)["id"])).json()["reviewRequest"]
    path = f"/reviews/v2/review-requests/{created['id']}"
    assert api.delete(path).status_code == 428
    emu.cancel_review_request(SITE, created["id"])
    assert api.delete(path).json() == {}
    assert api.get(path).status_code == 404


def test_wix_cancel_by_filter_cancels_only_scheduled_automation_requests(emu, api):
    order = emu.make_order(SITE)
    ours = api.post("/reviews/v2/review-requests", json=_rr(order["id"])).json()["reviewRequest"]
    by_automation = _rr(order["id"], automationActivationId="73fff183-acf3-4770-b527-f65f9f10d5f6")
    automated = api.post("/reviews/v2/review-requests", json=by_automation).json()["reviewRequest"]
    response = api.put("/reviews/v2/bulk/review-requests/cancel-by-filter", json={"filter": {"order.id": order["id"]}})
    assert response.status_code == 200 and response.json()["jobId"]
    status = {r["id"]: r["status"] for r in emu.review_requests(SITE)}
    assert status == {ours["id"]: "SCHEDULED", automated["id"]: "CANCELED"}


# --- contacts ---------------------------------------------------------------------------------------

DANA = "c0ffee00-1111-4222-8333-944445555666"


def test_wix_get_contact_returns_the_contact_in_full_by_default(emu, api):
    added = emu.add_contact(SITE, DANA, "dana.levi@example.com", more_emails=["dana@levi-studio.example"], first="Dana")

    response = api.get(f"/contacts/v4/contacts/{DANA}")

    assert response.status_code == 200 and response.json() == {"contact": added}
    contact = response.json()["contact"]
    assert contact["primaryInfo"] == {"email": "dana.levi@example.com"}
    assert [(i["email"], i.get("primary", False)) for i in contact["info"]["emails"]["items"]] == [
        ("dana.levi@example.com", True),
        ("dana@levi-studio.example", False),
    ]


def test_wix_get_contact_returns_only_the_fields_asked_for_with_id_and_revision(emu, api):
    emu.add_contact(SITE, DANA, "dana.levi@example.com", first="Dana", last="Levi")

    contact = api.get(f"/contacts/v4/contacts/{DANA}", params={"fields": ["primaryInfo", "info.emails"]}).json()[
        "contact"
    ]

    assert set(contact) == {"id", "revision", "primaryInfo", "info"} and set(contact["info"]) == {"emails"}


def test_wix_get_contact_basic_fieldset_leaves_the_email_list_out(emu, api):
    emu.add_contact(SITE, DANA, "dana.levi@example.com")

    contact = api.get(f"/contacts/v4/contacts/{DANA}", params={"fieldsets": "BASIC"}).json()["contact"]

    assert contact["primaryInfo"] == {"email": "dana.levi@example.com"} and "emails" not in contact["info"]


def test_wix_get_contact_with_an_unsupported_field_is_400(emu, api):
    emu.add_contact(SITE, DANA, "dana.levi@example.com")

    response = api.get(f"/contacts/v4/contacts/{DANA}", params={"fields": "info.secrets"})

    assert response.status_code == 400 and _violation(response)["field"] == "fields"


def test_wix_get_contact_unknown_or_deleted_is_404_not_found(emu, api):
    emu.add_contact(SITE, DANA, "dana.levi@example.com")
    emu.delete_contact(SITE, DANA)

    for contact_id in (DANA, "0d9e8f7a-0000-4000-8000-000000000000"):
        response = api.get(f"/contacts/v4/contacts/{contact_id}")
        assert response.status_code == 404 and _app_code(response) == "NOT_FOUND"


def test_wix_get_contact_needs_a_token_and_sees_only_its_instances_contacts(emu, api):
    emu.add_contact(OTHER_SITE, DANA, "dana.levi@example.com")

    with _client(emu) as client:
        assert client.get(f"/contacts/v4/contacts/{DANA}").status_code == 401
    assert api.get(f"/contacts/v4/contacts/{DANA}").status_code == 404


def test_wix_get_contact_counts_toward_the_instances_rate_limit(emu, api):
    emu.rate_limit_per_minute = 2
    emu.add_contact(SITE, DANA, "dana.levi@example.com")
    api.post("/reviews/v1/reviews/query", json={})
    assert api.get(f"/contacts/v4/contacts/{DANA}").status_code == 200

    limited = api.get(f"/contacts/v4/contacts/{DANA}")

    assert limited.status_code == 429 and _app_code(limited) == "RESOURCE_EXHAUSTED"


# --- rate limits, faults, log ---------------------------------------------------------------------


def test_wix_rate_limit_429_past_200_calls_per_instance_per_sliding_minute(emu, clock, api):
    for _ in range(200):
        assert api.post("/reviews/v1/reviews/query", json={}).status_code == 200
    limited = api.post("/reviews/v1/reviews/query", json={})
    assert limited.status_code == 429 and _app_code(limited) == "RESOURCE_EXHAUSTED"
    assert "Retry-After" not in limited.headers
    with _client(emu) as other:
        other.headers["Authorization"] = _token(other, OTHER_SITE)
        assert other.post("/reviews/v1/reviews/query", json={}).status_code == 200  # per instance
    clock.advance(60)
    assert api.post("/reviews/v1/reviews/query", json={}).status_code == 200


def test_wix_rate_limit_can_announce_retry_after(emu, clock):
    emu.rate_limit_per_minute = 2
    emu.rate_limit_retry_after = True
    with _client(emu) as client:
        client.headers["Authorization"] = _token(client)
        client.post("/reviews/v1/reviews/query", json={})
        clock.advance(20)
        client.post("/reviews/v1/reviews/query", json={})
        assert client.post("/reviews/v1/reviews/query", json={}).headers["Retry-After"] == "40"


def test_wix_inject_503_then_the_call_succeeds(emu, api):
    emu.inject(503, times=2)
    statuses = [api.post("/reviews/v1/reviews/query", json={}).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert api.post("/reviews/v1/reviews/query", json={}).status_code == 200


def test_wix_inject_503_body_is_the_empty_system_error(emu, api):
    emu.inject(503)
    assert api.post("/reviews/v1/reviews/query", json={}).json() == {"message": "", "details": {}}


def test_wix_inject_after_apply_creates_the_request_but_loses_the_answer(emu, api):
    order = emu.make_order(SITE)
    emu.inject(504, path_contains="/review-requests", after_apply=True)
    lost = api.post("/reviews/v2/review-requests", json=_rr(order["id"]))
    assert lost.status_code == 504
    assert len(emu.review_request_creates) == 1  # it happened: a blind retry would make a second one
    found = api.post("/reviews/v2/review-requests/query", json={"query": {"filter": {"order.id": order["id"]}}})
    assert len(found.json()["reviewRequests"]) == 1


def test_wix_inject_path_contains_touches_only_matching_calls(emu, api):
    emu.inject(500, path_contains="/review-requests")
    assert api.post("/reviews/v1/reviews/query", json={}).status_code == 200
    assert api.post("/reviews/v2/review-requests/query", json={}).status_code == 500


def test_wix_inject_on_token_endpoint_only_when_named(emu):
    emu.inject(503)
    with _client(emu) as client:
        token = _token(client)  # an unnamed fault leaves /oauth2/token alone
        assert client.post("/reviews/v1/reviews/query", json={}, headers={"Authorization": token}).status_code == 503
        emu.inject(503, path_contains="/oauth2/token")
        response = client.post(
            "/oauth2/token",
            json={
                "grant_type": "client_credentials",
                "client_id": APP_ID,
                "client_secret": APP_SECRET,
                "instance_id": SITE,
            },
        )
        assert response.status_code == 503


def test_wix_inject_hang_delays_the_answer(emu, api):
    emu.inject(None, hang_s=0.2)
    started = time.monotonic()
    assert api.post("/reviews/v1/reviews/query", json={}).status_code == 200
    assert time.monotonic() - started >= 0.2


def test_wix_fail_rate_faults_api_calls_deterministically_with_a_seed(clock):
    def run() -> list[int]:
        emulator = WixEmulator(clock=clock, fail_rate=0.5, seed=11, private_key_pem=_KEY_PEM)
        emulator.add_instance(SITE)
        with _client(emulator) as client:
            client.headers["Authorization"] = _token(client)  # the token endpoint is not faulted
            return [client.post("/reviews/v1/reviews/query", json={}).status_code for _ in range(20)]

    first = run()
    assert first == run()
    assert 200 in first and set(first) - {200} <= {429, 500, 503, 504} and set(first) != {200}


def test_wix_requests_are_logged_with_headers_body_and_status(emu, api):
    emu.inject(503)
    api.post("/reviews/v1/reviews/query", json={"query": {}}, params={"x": "1"})
    api.get("/reviews/v1/reviews/missing")
    token_call, faulted, missing = emu.requests
    assert (token_call.path, token_call.status, token_call.instance_id) == ("/oauth2/token", 200, None)
    assert (faulted.method, faulted.path, faulted.query, faulted.body, faulted.status) == (
        "POST",
        "/reviews/v1/reviews/query",
        {"x": ["1"]},
        {"query": {}},
        503,
    )
    assert faulted.headers["Authorization"] == api.headers["Authorization"]
    assert (missing.status, missing.instance_id) == (404, SITE)


def test_wix_body_that_is_not_a_json_object_is_400(emu, api):
    assert api.post("/reviews/v1/reviews/query", content=b"[1]").status_code == 400
    response = api.post("/reviews/v2/review-requests", content=b"{not json")
    assert response.status_code == 400 and "validationError" in response.json()["details"]


def test_wix_unknown_endpoint_is_404_and_responses_carry_a_request_id(emu, api):
    response = api.get("/ecom/v1/orders/123")
    assert response.status_code == 404 and response.headers["x-wix-request-id"]
