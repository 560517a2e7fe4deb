"""connectors/wix.py, wix_webhooks.py and wix_api.py against the Wix emulator (docs/platforms/wix.md), in
process.

Webhooks are signed by the emulator (tests/fakes/wix.py) with a key made once for this module,
so a test can also sign claims of its own with it. One fake clock serves the verifier, the client,
its rate limit and the emulator; `sleep` moves it on, so no test really waits.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.base import (
    ConfigError,
    Event,
    EventKind,
    FixAndReplayError,
    PayloadError,
    RetryableTargetError,
    Review,
    SignatureError,
    StaleRequest,
)
from connectors.http import RetryPolicy
from connectors.wix import WixSource
from connectors.wix_api import WixApi
from connectors.wix_mapping import review_request_body
from connectors.wix_webhooks import WixWebhookVerifier
from tests.fakes.clock import Clock
from tests.fakes.limiter import RecordingLimiter
from tests.fakes.wix import BOOKINGS_APP_ID, ORDER_EVENT_TYPES, REVIEW_EVENT_TYPES, WixEmulator

APP_ID, APP_SECRET = "wix-app-id", "wix-app-secret-0123456789"
SITE = "6f1c9a2e-5b7d-4e0a-9c3f-2d8b7e6a1f40"
BASE = "http://wix.test"
NOW = 1_795_000_000.0
_PRIVATE_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_KEY_PEM = _PRIVATE_KEY.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
)
_OTHER_PUBLIC_PEM = (
    rsa.generate_private_key(public_exponent=65537, key_size=2048)
    .public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def emu(clock: Clock) -> WixEmulator:
    emulator = WixEmulator(app_id=APP_ID, app_secret=APP_SECRET, clock=clock, seed=11, private_key_pem=_KEY_PEM)
    emulator.add_instance(SITE)
    return emulator


@pytest.fixture
def verifier(emu: WixEmulator, clock: Clock) -> WixWebhookVerifier:
    return WixWebhookVerifier([emu.public_key_pem], now=clock)


def _api(emu: WixEmulator, clock: Clock, **options) -> WixApi:
    options.setdefault("app_secret", APP_SECRET)
    return WixApi(BASE, APP_ID, transport=httpx.WSGITransport(app=emu), clock=clock, sleep=clock.sleep, **options)


@pytest.fixture
def api(emu: WixEmulator, clock: Clock) -> WixApi:
    return _api(emu, clock)


@pytest.fixture
def source(verifier: WixWebhookVerifier, api: WixApi) -> WixSource:
    return WixSource(verifier, api)


def _receive(source: WixSource, body: bytes) -> Event | PayloadError:
    """What intake does: verify, then parse; Wix sends one event per delivery."""
    account = source.verify({"Content-Type": "text/plain; charset=utf-8"}, body)
    items = source.parse(account, None, {}, body)
    assert len(items) == 1
    return items[0]


def _sign_claims(claims: dict, *, key=_PRIVATE_KEY, algorithm: str = "RS256") -> bytes:
    return jwt.encode(claims, key, algorithm=algorithm).encode()


def _envelope(event_type: str = "wix.reviews.v1.review_created", data: object = "{}", **extra) -> str:
    return json.dumps(
        {"eventType": event_type, "instanceId": SITE, "data": data, "identity": '{"identityType":"APP"}', **extra}
    )


def _requests(emu: WixEmulator, path_part: str) -> list:
    return [r for r in emu.requests if path_part in r.path]


# --- verification ------------------------------------------------------------------------------


def test_wix_emulator_webhook_verifies_to_its_instance(emu, verifier):
    review = emu.add_review(SITE)

    assert verifier.verify({}, emu.review_webhook(SITE, review["id"], "created")) == SITE


def test_wix_parse_of_the_body_just_verified_reads_its_claims_without_decoding_the_token_again(
    emu, source, monkeypatch
):
    review = emu.add_review(SITE)
    body = emu.review_webhook(SITE, review["id"], "created")
    account = source.verify({}, body)
    decodes: list[bytes] = []
    real_decode = jwt.decode
    monkeypatch.setattr(jwt, "decode", lambda token, *a, **k: decodes.append(token) or real_decode(token, *a, **k))

    [verified] = source.parse(account, None, {}, body)
    [other] = source.parse(account, None, {}, bytes(bytearray(body)))  # equal bytes, another object: decoded

    assert decodes == [body.decode()] and verified == other and verified.subject_id == review["id"]


def test_wix_body_with_surrounding_whitespace_verifies(emu, verifier):
    review = emu.add_review(SITE)

    assert verifier.verify({}, b"\r\n" + emu.review_webhook(SITE, review["id"], "created") + b"\n") == SITE


@pytest.mark.parametrize("order", ["new_first", "old_first"])
def test_wix_key_rotation_verifies_with_either_key(emu, clock, order):
    keys = [emu.public_key_pem, _OTHER_PUBLIC_PEM]
    verifier = WixWebhookVerifier(keys if order == "new_first" else keys[::-1], now=clock)
    review = emu.add_review(SITE)

    assert verifier.verify({}, emu.review_webhook(SITE, review["id"], "created")) == SITE


def test_wix_pem_with_literal_backslash_n_is_accepted(emu, clock):
    one_line = emu.public_key_pem.strip().replace("\n", "\\n")
    verifier = WixWebhookVerifier([one_line], now=clock)
    review = emu.add_review(SITE)

    assert verifier.verify({}, emu.review_webhook(SITE, review["id"], "created")) == SITE


def test_wix_verifier_without_keys_fails_at_construction():
    with pytest.raises(ValueError, match="at least one public key"):
        WixWebhookVerifier([])


def test_wix_verifier_with_a_broken_pem_fails_at_construction():
    with pytest.raises(ValueError, match="#1 is not a PEM public key"):
        WixWebhookVerifier(["-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----"])


def test_wix_expired_token_is_stale(emu, verifier, clock):
    review = emu.add_review(SITE)
    body = emu.review_webhook(SITE, review["id"], "created", issued_at=clock() - 400, expires_in_s=300)

    with pytest.raises(StaleRequest, match="expired 100 s ago"):
        verifier.verify({}, body)


def test_wix_token_expired_within_the_leeway_verifies(emu, verifier, clock):
    review = emu.add_review(SITE)
    body = emu.review_webhook(SITE, review["id"], "created", issued_at=clock() - 350, expires_in_s=300)

    assert verifier.verify({}, body) == SITE


def test_wix_token_issued_in_the_future_is_stale(emu, verifier, clock):
    review = emu.add_review(SITE)
    body = emu.review_webhook(SITE, review["id"], "created", issued_at=clock() + 3600)

    with pytest.raises(StaleRequest, match="iat lies in the future"):
        verifier.verify({}, body)


def test_wix_expired_token_with_a_wrong_signature_is_a_signature_error(emu, verifier, clock):
    review = emu.add_review(SITE)
    body = emu.review_webhook(SITE, review["id"], "created", issued_at=clock() - 4000, wrong_key=True)

    with pytest.raises(SignatureError):
        verifier.verify({}, body)


def test_wix_token_with_an_audience_verifies_without_an_audience_check(emu, verifier):
    review = emu.add_review(SITE)
    body = emu.review_webhook(SITE, review["id"], "created", extra_claims={"aud": "someone-else", "iss": "x"})

    assert verifier.verify({}, body) == SITE


def test_wix_token_without_exp_is_a_signature_error(verifier, clock):
    body = _sign_claims({"data": _envelope(), "iat": int(clock())})

    with pytest.raises(SignatureError, match="no numeric exp"):
        verifier.verify({}, body)


@pytest.mark.parametrize(
    "forgery",
    [
        pytest.param({"algorithm": "none"}, id="alg-none"),
        pytest.param({"algorithm": "HS256"}, id="hs256-keyed-with-the-public-pem"),
        pytest.param({"wrong_key": True}, id="wrong-key"),
    ],
)
def test_wix_forged_token_is_a_signature_error(emu, verifier, forgery):
    review = emu.add_review(SITE)
    body = emu.review_webhook(SITE, review["id"], "created", **forgery)

    with pytest.raises(SignatureError) as caught:
        verifier.verify({}, body)
    assert type(caught.value) is SignatureError


def test_wix_token_with_a_tampered_payload_is_a_signature_error(emu, verifier):
    review = emu.add_review(SITE)
    header, _, signature = emu.review_webhook(SITE, review["id"], "created").split(b".")
    other = emu.review_webhook(SITE, emu.add_review(SITE)["id"], "created").split(b".")[1]

    with pytest.raises(SignatureError, match="none of the public keys"):
        verifier.verify({}, b".".join([header, other, signature]))


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"not a jwt", id="text"),
        pytest.param(b'{"data": "{}"}', id="json"),
        pytest.param(b"a.b.c", id="three-dots"),
        pytest.param(b"eyJhbGciOiJSUzI1NiJ9.e30.", id="rs256-without-signature"),
        pytest.param(b"eyJhbGciOiJSUzI1NiJ9.!!!.AAAA", id="bad-base64"),
        pytest.param(b"\xff\xfe\x00garbage", id="not-utf8"),
        pytest.param("eyJhbGciOiJSUzI1NiJ9.é.x".encode(), id="non-ascii"),
    ],
)
def test_wix_garbage_body_is_a_signature_error(verifier, body):
    with pytest.raises(SignatureError) as caught:
        verifier.verify({}, body)
    assert type(caught.value) is SignatureError


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_wix_any_body_is_verified_or_refused_with_a_signature_error(body):
    verifier = WixWebhookVerifier([_OTHER_PUBLIC_PEM], now=lambda: NOW)
    with pytest.raises(SignatureError):
        verifier.verify({}, body)


@settings(max_examples=100, deadline=None)
@given(
    header=st.dictionaries(st.sampled_from(["alg", "typ", "kid"]), st.text(max_size=10) | st.integers()),
    payload=st.binary(max_size=60),
)
def test_wix_any_jwt_shaped_body_is_refused_with_a_signature_error(header, payload):
    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    body = b".".join([b64(json.dumps(header).encode()), b64(payload), b64(b"sig")])
    verifier = WixWebhookVerifier([_OTHER_PUBLIC_PEM], now=lambda: NOW)
    with pytest.raises(SignatureError):
        verifier.verify({}, body)


# --- parsing: review events ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, event_kind",
    [
        ("created", EventKind.UPSERT),
        ("updated", EventKind.UPSERT),
        ("moderation_status_changed", EventKind.UPSERT),
        ("review_published", EventKind.UPSERT),
        ("deleted", EventKind.DELETE),
    ],
)
def test_wix_review_webhook_parses_into_one_event(emu, source, kind, event_kind):
    review = emu.add_review(SITE, rating=4, title="Great mug")
    if kind == "deleted":
        review = emu.delete_review(SITE, review["id"])
    domain = emu.review_event(SITE, review["id"], kind)

    event = _receive(source, emu.sign_webhook(REVIEW_EVENT_TYPES[kind], SITE, domain))

    assert isinstance(event, Event)
    assert (event.source, event.account, event.kind, event.topic) == ("wix", SITE, event_kind, REVIEW_EVENT_TYPES[kind])
    assert event.event_id == domain["id"] and event.subject_id == review["id"]
    assert event.sequence == int(domain["entityEventSequence"])
    assert event.occurred_at == datetime.fromisoformat(domain["eventTime"].replace("Z", "+00:00"))
    assert event.occurred_at.tzinfo is not None and event.occurred_at.utcoffset() == timedelta(0)
    assert event.payload["id"] == review["id"]
    assert event.payload["content"]["rating"] == 4


def test_wix_review_event_sequence_increases_per_review(emu, source):
    review = emu.add_review(SITE)
    first = _receive(source, emu.review_webhook(SITE, review["id"], "updated"))
    second = _receive(source, emu.review_webhook(SITE, review["id"], "updated"))

    assert second.sequence > first.sequence and first.event_id != second.event_id


@pytest.mark.parametrize("kind", ["created", "updated", "deleted", "moderation_status_changed", "review_published"])
def test_wix_as_json_body_parses_the_same_as_an_object(emu, source, kind):
    review = emu.add_review(SITE)
    domain = emu.review_event(SITE, review["id"], kind)
    as_json = json.loads(json.dumps(domain))
    for holder in ("createdEvent", "updatedEvent", "deletedEvent", "actionEvent"):
        for key in list(as_json.get(holder, {})):
            as_json[holder] = {f"{key}AsJson": json.dumps(as_json[holder][key])}

    plain = _receive(source, emu.sign_webhook(REVIEW_EVENT_TYPES[kind], SITE, domain))
    stringy = _receive(source, emu.sign_webhook(REVIEW_EVENT_TYPES[kind], SITE, as_json))

    assert stringy == plain


def test_wix_emulator_as_json_webhook_parses_like_the_object_form(emu, source):
    review = emu.add_review(SITE)
    event = _receive(source, emu.review_webhook(SITE, review["id"], "updated", as_json=True))

    assert event.kind is EventKind.UPSERT and event.payload == review


def test_wix_entity_sent_as_a_json_string_parses_the_same(emu, source):
    review = emu.add_review(SITE)
    domain = emu.review_event(SITE, review["id"], "created")
    stringy = dict(domain, createdEvent={"entity": json.dumps(domain["createdEvent"]["entity"])})

    plain = _receive(source, emu.sign_webhook(REVIEW_EVENT_TYPES["created"], SITE, domain))
    assert _receive(source, emu.sign_webhook(REVIEW_EVENT_TYPES["created"], SITE, stringy)) == plain


def test_wix_envelope_and_event_as_objects_parse_the_same(emu, source, clock):
    review = emu.add_review(SITE)
    domain = emu.review_event(SITE, review["id"], "created")
    strings = emu.sign_webhook(REVIEW_EVENT_TYPES["created"], SITE, domain)
    objects = _sign_claims(
        {
            "data": {"eventType": REVIEW_EVENT_TYPES["created"], "instanceId": SITE, "data": domain},
            "iat": int(clock()),
            "exp": int(clock()) + 300,
        }
    )

    assert _receive(source, objects) == _receive(source, strings)


def test_wix_delete_with_only_the_id_keeps_the_id(emu, source):
    review = emu.add_review(SITE)
    domain = emu.review_event(SITE, review["id"], "created")
    domain = {k: v for k, v in domain.items() if k != "createdEvent"} | {
        "slug": "deleted",
        "deletedEvent": {"deletedEntity": {}},
    }

    event = _receive(source, emu.sign_webhook(REVIEW_EVENT_TYPES["deleted"], SITE, domain))

    assert event.kind is EventKind.DELETE and event.payload == {"id": review["id"]}


# --- parsing: orders, accounts, the rest ---------------------------------------------------------------


def test_wix_order_fulfilled_parses_into_an_order_event(emu, source):
    order = emu.make_order(SITE, stores_items=2)
    domain = emu.order_fulfilled_event(SITE, order)

    event = _receive(source, emu.sign_webhook(ORDER_EVENT_TYPES["fulfilled"], SITE, domain))

    assert (event.kind, event.subject_id, event.topic) == (EventKind.ORDER, order["id"], "wix.ecom.v1.order_fulfilled")
    assert event.event_id == domain["id"] and event.account == SITE
    assert event.payload["id"] == order["id"] and event.payload["fulfillmentStatus"] == "FULFILLED"
    assert event.payload["buyerInfo"] == order["buyerInfo"]


def test_wix_order_fulfilled_as_json_parses_the_same(emu, source):
    order = emu.make_order(SITE)
    domain = emu.order_fulfilled_event(SITE, order, as_json=True)

    event = _receive(source, emu.sign_webhook(ORDER_EVENT_TYPES["fulfilled"], SITE, domain))

    assert event.kind is EventKind.ORDER and event.payload["lineItems"] == order["lineItems"]


def test_wix_order_partially_fulfilled_is_ignored(emu, source):
    order = emu.make_order(SITE)
    domain = emu.order_fulfilled_event(SITE, order, new="PARTIALLY_FULFILLED")

    event = _receive(source, emu.sign_webhook(ORDER_EVENT_TYPES["fulfilled"], SITE, domain))

    assert event.kind is EventKind.IGNORED and event.topic == "wix.ecom.v1.order_fulfilled"
    assert "PARTIALLY_FULFILLED" in event.payload["reason"]


@pytest.mark.parametrize(
    "trigger, slug, kind",
    [
        ("approved", "approved", EventKind.ORDER),
        ("approved", "fulfilled", EventKind.IGNORED),
        ("fulfilled", "approved", EventKind.IGNORED),
        ("off", "fulfilled", EventKind.IGNORED),
        ("off", "approved", EventKind.IGNORED),
    ],
)
def test_wix_review_request_trigger_picks_the_order_event(emu, verifier, trigger, slug, kind):
    source = WixSource(verifier, review_request_trigger=trigger)
    order = emu.make_order(SITE)
    domain = emu.order_fulfilled_event(SITE, order) if slug == "fulfilled" else emu.order_event(SITE, order, "approved")

    event = _receive(source, emu.sign_webhook(ORDER_EVENT_TYPES[slug], SITE, domain))

    assert event.kind is kind and event.subject_id == order["id"]


def test_wix_unknown_review_request_trigger_fails_at_construction(verifier):
    with pytest.raises(ValueError, match="not one of fulfilled, approved, off"):
        WixSource(verifier, review_request_trigger="paid")


def test_wix_unknown_event_type_is_ignored(emu, source):
    order = emu.make_order(SITE)
    domain = emu.order_event(SITE, order, "canceled")

    event = _receive(source, emu.sign_webhook(ORDER_EVENT_TYPES["canceled"], SITE, domain))

    assert (event.kind, event.topic, event.event_id) == (EventKind.IGNORED, "wix.ecom.v1.order_canceled", domain["id"])


def test_wix_legacy_event_with_an_unreadable_inner_layer_is_ignored_not_quarantined(emu, source):
    event = _receive(source, emu.sign_webhook("ProductChanged", SITE, "{'productId': legacy"))

    assert event.kind is EventKind.IGNORED and event.topic == "ProductChanged"


@pytest.mark.parametrize("event_type, action", [("AppInstalled", "installed"), ("AppRemoved", "removed")])
def test_wix_app_lifecycle_event_is_an_account_event(emu, source, clock, event_type, action):
    event = _receive(source, emu.sign_webhook(event_type, SITE, {"appId": APP_ID, "originInstanceId": ""}))

    assert (event.kind, event.account, event.subject_id, event.topic) == (EventKind.ACCOUNT, SITE, SITE, event_type)
    assert event.payload == {"action": action, "appId": APP_ID, "originInstanceId": ""}
    assert event.occurred_at == datetime.fromtimestamp(int(clock()), tz=UTC)


def test_wix_reinstall_is_not_a_duplicate_of_the_first_install(emu, source, clock):
    first = _receive(source, emu.sign_webhook("AppInstalled", SITE, {"appId": APP_ID}))
    same = _receive(source, emu.sign_webhook("AppInstalled", SITE, {"appId": APP_ID}))
    clock.t += 86400
    later = _receive(source, emu.sign_webhook("AppInstalled", SITE, {"appId": APP_ID}))

    assert first.event_id == same.event_id != later.event_id


# --- parsing: unusable layers ----------------------------------------------------------------------------


def test_wix_token_data_that_is_not_json_is_quarantined_with_the_reason(source, clock):
    body = _sign_claims({"data": "{not json", "iat": int(clock()), "exp": int(clock()) + 300})

    assert source.verify({}, body) == ""  # Wix's own token: kept, and quarantined by parse
    [item] = source.parse("", None, {}, body)
    assert isinstance(item, PayloadError) and item.reason.startswith("the token's data claim is not JSON")


def test_wix_envelope_without_instance_id_is_quarantined(source, clock):
    envelope = json.dumps({"eventType": "wix.reviews.v1.review_created", "data": "{}"})
    body = _sign_claims({"data": envelope, "iat": int(clock()), "exp": int(clock()) + 300})

    assert source.verify({}, body) == ""
    [item] = source.parse("", None, {}, body)
    assert isinstance(item, PayloadError) and "has no instanceId" in item.reason


def test_wix_envelope_data_that_is_not_json_is_quarantined(emu, source):
    item = _receive(source, emu.sign_webhook(REVIEW_EVENT_TYPES["created"], SITE, "{broken"))

    assert isinstance(item, PayloadError)
    assert item.reason.startswith("the wix.reviews.v1.review_created envelope's data is not JSON")


def test_wix_broken_entity_as_json_is_quarantined(emu, source):
    review = emu.add_review(SITE)
    domain = dict(emu.review_event(SITE, review["id"], "created"), createdEvent={"entityAsJson": '{"id": '})

    item = _receive(source, emu.sign_webhook(REVIEW_EVENT_TYPES["created"], SITE, domain))

    assert isinstance(item, PayloadError)
    assert item.reason.startswith("the wix.reviews.v1.review_created event's createdEvent.entityAsJson is not JSON")


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"createdEvent": None}, "has no entity or body"),
        ({"id": None}, "event has no id"),
        ({"eventTime": "yesterday"}, "eventTime 'yesterday' is not a date"),
        ({"createdEvent": {"entity": ["not", "an", "object"]}}, "is neither a JSON string nor an object"),
    ],
)
def test_wix_review_event_missing_a_part_is_quarantined(emu, source, change, reason):
    review = emu.add_review(SITE)
    domain = {k: v for k, v in (emu.review_event(SITE, review["id"], "created") | change).items() if v is not None}

    item = _receive(source, emu.sign_webhook(REVIEW_EVENT_TYPES["created"], SITE, domain))

    assert isinstance(item, PayloadError) and reason in item.reason


def test_wix_order_event_without_an_order_is_quarantined(emu, source):
    order = emu.make_order(SITE)
    domain = emu.order_fulfilled_event(SITE, order)
    domain["actionEvent"]["body"].pop("order")

    item = _receive(source, emu.sign_webhook(ORDER_EVENT_TYPES["fulfilled"], SITE, domain))

    assert isinstance(item, PayloadError) and "body's order is missing" in item.reason


# --- resolve ------------------------------------------------------------------------------------------


def test_wix_resolve_maps_the_event_entity_without_calling_wix(emu, source):
    review = emu.add_review(SITE, rating=3, moderation_status="IN_MODERATION")
    event = _receive(source, emu.review_webhook(SITE, review["id"], "created"))
    calls = len(emu.requests)

    resolved = source.resolve(event)

    assert isinstance(resolved, Review) and resolved.rating == 3 and resolved.published is False
    assert len(emu.requests) == calls


def test_wix_resolve_of_a_delete_is_none(emu, source):
    review = emu.delete_review(SITE, emu.add_review(SITE)["id"])

    assert source.resolve(_receive(source, emu.review_webhook(SITE, review["id"], "deleted"))) is None


def test_wix_resolve_of_a_thin_entity_fetches_the_review(emu, source):
    review = emu.add_review(SITE, rating=2, moderation_status="REJECTED")
    event = Event(
        source="wix",
        account=SITE,
        event_id="e-1",
        kind=EventKind.UPSERT,
        subject_id=review["id"],
        topic="wix.reviews.v1.review_updated",
        occurred_at=datetime.now(UTC),
        payload={"id": review["id"]},
    )

    resolved = source.resolve(event)

    assert resolved.rating == 2 and resolved.published is False  # a private review: returnPrivateReviews
    assert _requests(emu, f"/reviews/v1/reviews/{review['id']}")[0].query == {"returnPrivateReviews": ["true"]}


def test_wix_resolve_of_a_thin_entity_gone_at_wix_is_none(emu, source):
    review = emu.add_review(SITE)
    emu.delete_review(SITE, review["id"])
    event = Event(
        source="wix",
        account=SITE,
        event_id="e-1",
        kind=EventKind.UPSERT,
        subject_id=review["id"],
        topic="wix.reviews.v1.review_updated",
        occurred_at=datetime.now(UTC),
        payload={"id": review["id"]},
    )

    assert source.resolve(event) is None


def test_wix_resolve_without_api_of_a_thin_entity_is_a_payload_error(verifier):
    event = Event(
        source="wix",
        account=SITE,
        event_id="e-1",
        kind=EventKind.UPSERT,
        subject_id="r-1",
        topic="wix.reviews.v1.review_updated",
        occurred_at=datetime.now(UTC),
        payload={"id": "r-1"},
    )

    with pytest.raises(PayloadError, match=r"no content\.rating"):
        WixSource(verifier).resolve(event)


def test_wix_echo_key_is_none(emu, source):
    review = emu.add_review(SITE)

    assert source.echo_key(_receive(source, emu.review_webhook(SITE, review["id"], "created"))) is None


# --- the API: tokens -----------------------------------------------------------------------------------


def test_wix_token_is_fetched_once_and_reused(emu, api):
    review = emu.add_review(SITE)
    for _ in range(3):
        api.get_review(SITE, review["id"])

    assert len(_requests(emu, "/oauth2/token")) == 1
    assert len({r.headers["Authorization"] for r in _requests(emu, "/reviews/")}) == 1


def test_wix_token_is_sent_raw_without_bearer(emu, api):
    review = emu.add_review(SITE)
    api.get_review(SITE, review["id"])

    [call] = _requests(emu, "/reviews/")
    assert call.status == 200 and call.headers["Authorization"].startswith("OauthNG.JWS.")
    token_call = _requests(emu, "/oauth2/token")[0]
    assert token_call.body == {
        "grant_type": "client_credentials",
        "client_id": APP_ID,
        "client_secret": APP_SECRET,
        "instance_id": SITE,
    }


def test_wix_expired_token_is_refreshed_once(emu, api):
    review = emu.add_review(SITE)
    api.get_review(SITE, review["id"])
    emu.expire_tokens()

    assert api.get_review(SITE, review["id"])["id"] == review["id"]
    assert len(_requests(emu, "/oauth2/token")) == 2
    assert [r.status for r in _requests(emu, "/reviews/")] == [200, 401, 200]


def test_wix_token_is_renewed_before_four_hours(emu, api, clock):
    review = emu.add_review(SITE)
    api.get_review(SITE, review["id"])
    clock.t += 3 * 3600 + 49 * 60
    api.get_review(SITE, review["id"])
    clock.t += 2 * 60
    api.get_review(SITE, review["id"])

    assert len(_requests(emu, "/oauth2/token")) == 2
    assert all(r.status == 200 for r in _requests(emu, "/reviews/"))


def test_wix_tokens_are_per_instance(emu, api):
    other = emu.add_instance()
    api.get_review(SITE, "missing")
    api.get_review(other, "missing")

    assert [r.body["instance_id"] for r in _requests(emu, "/oauth2/token")] == [SITE, other]


def test_wix_wrong_app_secret_is_a_config_error_without_the_secret(emu, clock):
    secret = "the-wrong-secret-987654321"
    api = _api(emu, clock, app_secret=secret)

    with pytest.raises(ConfigError) as caught:
        api.get_review(SITE, "r-1")
    message = str(caught.value)
    assert "WIX_APP_ID" in message and "WIX_APP_SECRET" in message and secret not in message


def test_wix_app_not_installed_on_the_instance_waits_for_a_person(emu, api):
    with pytest.raises(FixAndReplayError, match="not installed on instance gone-site") as caught:
        api.get_review("gone-site", "r-1")
    assert caught.value.code == "APP_NOT_INSTALLED"


def test_wix_missing_permission_is_a_config_error(emu, api):
    emu.inject(403, path_contains="/reviews/v1/")

    with pytest.raises(ConfigError, match="needs the permissions"):
        api.get_review(SITE, "r-1")


# --- the API: rate limit, errors ------------------------------------------------------------------------


def test_wix_calls_take_a_turn_of_their_instances_rate_limit_and_token_requests_do_not(emu, clock):
    limiter = RecordingLimiter()
    api = _api(emu, clock, limiter=limiter)
    other = emu.add_instance()
    api.get_review(SITE, "missing")
    api.get_review(other, "missing")

    assert len(_requests(emu, "/oauth2/token")) == 2
    assert limiter.acquired == [SITE, other]


def test_wix_get_review_of_an_unknown_review_is_none(api):
    assert api.get_review(SITE, "no-such-review") is None


def test_wix_404_without_a_wix_error_body_is_not_taken_for_a_gone_review(emu, api):
    emu.inject(404, body="<html>Not Found</html>", path_contains="/reviews/v1/")

    with pytest.raises(FixAndReplayError, match="HTTP 404"):
        api.get_review(SITE, "r-1")


@pytest.mark.parametrize("status", [429, 503])
def test_wix_persistent_429_or_5xx_is_retryable(emu, clock, status):
    api = _api(emu, clock, retry=RetryPolicy(attempts=3))
    emu.inject(status, times=3, path_contains="/reviews/v1/")

    with pytest.raises(RetryableTargetError) as caught:
        api.get_review(SITE, "r-1")
    assert caught.value.status == status and len(_requests(emu, "/reviews/")) == 3


def test_wix_one_5xx_on_a_read_is_retried_here(emu, api):
    review = emu.add_review(SITE)
    emu.inject(503, path_contains="/reviews/v1/")

    assert api.get_review(SITE, review["id"])["id"] == review["id"]


def test_wix_validation_error_is_surfaced_in_the_message(emu, api):
    with pytest.raises(
        FixAndReplayError,
        match=r"reviewRequest.recipient.contactId: recipient.contactId is required"
        r" \(REQUIRED_FIELD\) \(HTTP 400, x-wix-request-id ",
    ):
        api.create_review_request(SITE, {"reviewRequest": {"communicationChannel": "EMAIL", "order": {"id": "o"}}})


# --- the API: query reviews and resync -------------------------------------------------------------------


def _add_reviews(emu: WixEmulator, count: int, *, private_every: int = 5) -> list[dict]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        emu.add_review(
            SITE,
            rating=1 + i % 5,
            createdDate=(start + timedelta(hours=i)).isoformat(),
            moderation_status="IN_MODERATION" if i % private_every == 0 else "APPROVED",
        )
        for i in range(count)
    ]


def test_wix_query_reviews_pages_through_250_reviews_with_private_ones(emu, api):
    added = _add_reviews(emu, 250)
    seen, cursor, pages = [], None, 0
    while True:
        items, cursor = api.query_reviews(SITE, cursor=cursor)
        seen += items
        pages += 1
        if not cursor:
            break

    assert pages == 3 and len(seen) == 250
    assert {r["id"] for r in seen} == {r["id"] for r in added}
    assert sum(r["moderation"]["moderationStatus"] == "IN_MODERATION" for r in seen) == 50
    assert [r["createdDate"] for r in seen] == sorted((r["createdDate"] for r in seen), reverse=True)
    first, second = (r.body for r in _requests(emu, "/reviews/v1/reviews/query")[:2])
    assert first["returnPrivateReviews"] is True and first["query"]["cursorPaging"] == {"limit": 100}
    assert set(second["query"]) == {"cursorPaging"}  # a cursor carries the filter and sort


def test_wix_iter_reviews_yields_reviews_newest_first_past_since_only(emu, source):
    added = _add_reviews(emu, 250)
    since = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=130)

    reviews = list(source.iter_reviews(SITE, since=since))

    assert [r.source_id for r in reviews] == [r["id"] for r in reversed(added[130:])]
    assert all(isinstance(r, Review) and r.account == SITE for r in reviews)
    assert sum(not r.published for r in reviews) == sum(1 for i in range(130, 250) if i % 5 == 0)


def test_wix_iter_reviews_reads_one_page_at_a_time(emu, source):
    _add_reviews(emu, 250)
    reviews = source.iter_reviews(SITE)

    next(reviews)
    assert len(_requests(emu, "/reviews/v1/reviews/query")) == 1


def test_wix_iter_reviews_turns_an_unmappable_review_into_a_payload_error(emu, verifier):
    class Api:
        def query_reviews(self, instance, *, since=None, cursor=None, limit=100):
            return [{"id": "r-1", "content": {"rating": 4}}, {"id": "r-2", "content": {}}], None

    items = list(WixSource(verifier, Api()).iter_reviews(SITE))

    assert isinstance(items[0], Review) and isinstance(items[1], PayloadError)
    assert items[1].payload == {"id": "r-2", "content": {}}


def test_wix_iter_reviews_without_api_is_a_config_error(verifier):
    with pytest.raises(ConfigError, match="WIX_APP_ID"):
        list(WixSource(verifier).iter_reviews(SITE))


# --- the API: review requests -------------------------------------------------------------------------------


def _request_body(order_id: str, contact_id: str = "c-1", items: tuple[str, ...] = ()) -> dict:
    body = {
        "namespace": "stores",
        "order": {"id": order_id},
        "recipient": {"contactId": contact_id},
        "communicationChannel": "EMAIL",
    }
    if items:
        body["items"] = [{"catalogItemId": item} for item in items]
    return {"reviewRequest": body}


def test_wix_create_review_request_returns_the_request(emu, api):
    order = emu.make_order(SITE, stores_items=2)

    request = api.create_review_request(SITE, _request_body(order["id"], order["buyerInfo"]["contactId"]))

    assert request["order"]["id"] == order["id"] and request["status"] == "SCHEDULED"
    assert request["recipient"] == {"contactId": order["buyerInfo"]["contactId"]}
    assert emu.review_requests(SITE)[0]["id"] == request["id"]


def test_wix_create_review_request_lost_answer_is_outcome_unknown_and_then_found(emu, api):
    order = emu.make_order(SITE)
    emu.inject(503, after_apply=True, path_contains="/reviews/v2/review-requests", method="POST")

    with pytest.raises(RetryableTargetError) as caught:
        api.create_review_request(SITE, _request_body(order["id"]))

    assert caught.value.outcome_unknown is True and caught.value.status == 503
    assert len(emu.review_request_creates) == 1  # not resent blindly
    [found] = api.query_review_requests(SITE, order_id=order["id"])
    assert found["order"]["id"] == order["id"]


def test_wix_create_review_request_timeout_is_outcome_unknown(emu, clock):
    order = emu.make_order(SITE)

    def timing_out(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/reviews/v2/review-requests":
            raise httpx.ReadTimeout("read timed out", request=request)
        return httpx.WSGITransport(app=emu).handle_request(request)

    api = WixApi(BASE, APP_ID, APP_SECRET, transport=httpx.MockTransport(timing_out), clock=clock, sleep=clock.sleep)
    with pytest.raises(RetryableTargetError) as caught:
        api.create_review_request(SITE, _request_body(order["id"]))
    assert caught.value.outcome_unknown is True


def test_wix_create_review_request_429_is_retryable_and_surely_not_applied(emu, api):
    order = emu.make_order(SITE)
    emu.inject(429, path_contains="/reviews/v2/review-requests", method="POST")

    with pytest.raises(RetryableTargetError) as caught:
        api.create_review_request(SITE, _request_body(order["id"]))
    assert caught.value.outcome_unknown is False and emu.review_request_creates == []


def test_wix_query_review_requests_finds_only_the_order_s_requests(emu, api):
    order, other = emu.make_order(SITE), emu.make_order(SITE)
    for _ in range(2):  # Wix has no idempotency: two creates, two requests
        api.create_review_request(SITE, _request_body(order["id"]))
    api.create_review_request(SITE, _request_body(other["id"]))

    assert len(api.query_review_requests(SITE, order_id=order["id"])) == 2
    assert api.query_review_requests(SITE, order_id="no-such-order") == []


@pytest.mark.parametrize(
    "case, code, status",
    [
        ("unknown order", "ORDER_NOT_FOUND", 428),
        ("order without items", "ORDER_IS_EMPTY", 428),
        ("neither order nor items", "EITHER_ORDER_OR_ITEMS_REQUIRED", 400),
    ],
)
def test_wix_review_request_application_error_waits_for_a_fix(emu, api, case, code, status):
    if case == "unknown order":
        body = _request_body("no-such-order")
    elif case == "order without items":
        body = _request_body(emu.make_order(SITE, stores_items=0)["id"])
    else:
        body = {"reviewRequest": {"recipient": {"contactId": "c-1"}, "communicationChannel": "EMAIL"}}

    with pytest.raises(FixAndReplayError) as caught:
        api.create_review_request(SITE, body)

    assert caught.value.code == code and caught.value.status == status
    assert str(caught.value).startswith(f"Wix POST /reviews/v2/review-requests failed: {code}: ")
    assert len(_requests(emu, "/reviews/v2/review-requests")) == 1  # not retried


def test_wix_review_request_refused_for_the_caller_identity_waits_for_a_fix(emu, api):
    order = emu.make_order(SITE)
    emu.inject(
        428,
        path_contains="/reviews/v2/review-requests",
        method="POST",
        body={
            "message": "The identity used to call the method isn't supported for creating review requests.",
            "details": {
                "applicationError": {
                    "code": "INITIATOR_IDENTITY_NOT_SUPPORTED",
                    "description": "The identity isn't supported",
                    "data": {},
                }
            },
        },
    )

    with pytest.raises(FixAndReplayError) as caught:
        api.create_review_request(SITE, _request_body(order["id"]))
    assert caught.value.code == "INITIATOR_IDENTITY_NOT_SUPPORTED"


def test_wix_428_without_a_known_code_waits_for_a_fix_and_is_not_retried(emu, api):
    emu.inject(428, path_contains="/reviews/v2/review-requests", method="POST")

    with pytest.raises(FixAndReplayError) as caught:
        api.create_review_request(SITE, _request_body("o-1"))
    assert caught.value.code == "FAILED_PRECONDITION" and len(_requests(emu, "/reviews/v2/")) == 1


def test_wix_review_request_body_from_an_emulator_order_is_accepted(emu, api):
    order = emu.make_order(SITE, stores_items=2, other_items=1)
    body = review_request_body(order)

    assert body == {
        "reviewRequest": {
            "namespace": "stores",
            "order": {"id": order["id"]},
            "items": [{"catalogItemId": li["catalogReference"]["catalogItemId"]} for li in order["lineItems"][1::-1]],
            "recipient": {"contactId": order["buyerInfo"]["contactId"]},
            "communicationChannel": "EMAIL",
        }
    }
    assert api.create_review_request(SITE, body)["items"] == body["reviewRequest"]["items"]


@pytest.mark.parametrize(
    "options, reason",
    [
        ({"contact_id": None}, "has no buyerInfo.contactId"),
        ({"stores_items": 0, "other_items": 2, "other_app_id": BOOKINGS_APP_ID}, "has no Wix Stores line items"),
        ({"stores_items": 0}, "has no Wix Stores line items"),
    ],
)
def test_wix_review_request_body_skips_an_order_with_a_clear_reason(emu, options, reason):
    order = emu.make_order(SITE, **options)

    with pytest.raises(PayloadError) as caught:
        review_request_body(order)
    assert caught.value.reason.startswith(f"skipped: order {order['id']} {reason}")


def test_wix_token_without_a_data_claim_is_quarantined_with_the_claims(source, clock):
    claims = {"iat": int(clock()), "exp": int(clock()) + 300, "other": "x"}
    body = _sign_claims(claims)

    [item] = source.parse(source.verify({}, body), None, {}, body)

    assert isinstance(item, PayloadError) and item.reason == "the token's data claim is missing"
    assert item.payload == claims
