"""A review author's e-mail, as each source knows it (`AuthorEmails`, docs/platforms/wix.md §1.8).

Trustoo sends the e-mail with the review. A Wix review names only its author's contact, so the
e-mail is read with Contacts v4 Get Contact from the Wix emulator (tests/fakes/wix.py, in process)
and kept per (instance, contact): the emulator's request log counts the calls Wix would see.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import httpx
import pytest

from connectors.base import AuthorEmails, ConfigError, FixAndReplayError, RetryableTargetError, Review
from connectors.cache import ExpiringCache
from connectors.http import RetryPolicy
from connectors.trustoo import TrustooSource, TrustooWebhookVerifier
from connectors.trustoo import map_review as map_trustoo_review
from connectors.wix import WixSource
from connectors.wix_api import WixApi
from connectors.wix_mapping import contact_email
from connectors.wix_mapping import map_review as map_wix_review
from connectors.wix_webhooks import WixWebhookVerifier
from tests.builders import TRUSTOO_PRIVATE_TOKEN, TRUSTOO_PUBLIC_TOKEN
from tests.fakes.clock import Clock
from tests.fakes.limiter import RecordingLimiter
from tests.fakes.wix import WixEmulator

APP_ID, APP_SECRET = "wix-app-id", "wix-app-secret-0123456789"
SITE = "6f1c9a2e-5b7d-4e0a-9c3f-2d8b7e6a1f40"
OTHER_SITE = "0a7e5c3b-1111-4e0a-9c3f-2d8b7e6a1f41"
DANA = "c0ffee00-1111-4222-8333-944445555666"  # the contact of tests/payloads/wix/review_entity.json
NOW = 1_795_000_000.0
PAYLOADS = Path(__file__).resolve().parent.parent / "payloads" / "wix"


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def emu(clock: Clock) -> WixEmulator:
    emulator = WixEmulator(app_id=APP_ID, app_secret=APP_SECRET, clock=clock, seed=18)
    emulator.add_instance(SITE)
    emulator.add_instance(OTHER_SITE)
    return emulator


def _api(emu: WixEmulator, clock: Clock, **options) -> WixApi:
    return WixApi(
        "http://wix.test",
        APP_ID,
        APP_SECRET,
        transport=httpx.WSGITransport(app=emu),
        clock=clock,
        sleep=clock.sleep,
        **options,
    )


@pytest.fixture
def source(emu: WixEmulator, clock: Clock) -> WixSource:
    return WixSource(WixWebhookVerifier([emu.public_key_pem], now=clock), _api(emu, clock))


def _wix_review(emu: WixEmulator, instance: str = SITE, contact_id: str = DANA) -> Review:
    """A review written by the contact, as the pipeline holds it (mapped from the Reviews API)."""
    return map_wix_review(instance, emu.add_review(instance, contactId=contact_id, authorName="Dana", rating=4))


def _contact_calls(emu: WixEmulator) -> list:
    return [r for r in emu.requests if r.path.startswith("/contacts/v4/contacts/")]


# --- Wix: through the Contacts API --------------------------------------------------------------------


def test_wix_author_email_is_read_through_the_contacts_api(emu, source):
    emu.add_contact(SITE, DANA, "dana.levi@example.com", first="Dana", last="Levi")
    review = _wix_review(emu)

    assert review.author_email is None and review.extra["contact_id"] == DANA
    assert source.author_email(review) == "dana.levi@example.com"
    [call] = _contact_calls(emu)
    assert (call.method, call.path, call.status, call.instance_id) == (
        "GET",
        f"/contacts/v4/contacts/{DANA}",
        200,
        SITE,
    )
    assert call.query == {"fields": ["primaryInfo", "info.emails"]}  # only what the e-mail needs


def test_wix_second_lookup_of_the_same_contact_makes_no_second_call(emu, source):
    emu.add_contact(SITE, DANA, "dana.levi@example.com")
    first, second = _wix_review(emu), _wix_review(emu)  # two reviews by one customer, two products

    assert source.author_email(first) == source.author_email(second) == "dana.levi@example.com"
    assert len(_contact_calls(emu)) == 1


def test_wix_same_contact_id_on_another_instance_is_asked_of_that_instance(emu, source):
    emu.add_contact(SITE, DANA, "dana.levi@example.com")
    emu.add_contact(OTHER_SITE, DANA, "d.levi@other-shop.example")

    assert source.author_email(_wix_review(emu, SITE)) == "dana.levi@example.com"
    assert source.author_email(_wix_review(emu, OTHER_SITE)) == "d.levi@other-shop.example"
    assert [call.instance_id for call in _contact_calls(emu)] == [SITE, OTHER_SITE]


def test_wix_unknown_contact_is_none_and_is_kept_too(emu, source):
    review = _wix_review(emu, contact_id="0d9e8f7a-2222-4000-8000-00000000dead")

    assert source.author_email(review) is None
    assert source.author_email(review) is None
    assert [call.status for call in _contact_calls(emu)] == [404]


def test_wix_contact_without_any_email_is_none(emu, source):
    emu.add_contact(SITE, DANA, None, first="Dana")

    assert source.author_email(_wix_review(emu)) is None


def test_wix_contact_email_is_asked_again_after_an_hour(emu, clock):
    cache: ExpiringCache[tuple[str, str], str | None] = ExpiringCache(ttl_s=3600, clock=clock)
    source = WixSource(WixWebhookVerifier([emu.public_key_pem], now=clock), _api(emu, clock), contacts=cache)
    emu.add_contact(SITE, DANA, "dana.levi@example.com")
    review = _wix_review(emu)
    assert source.author_email(review) == "dana.levi@example.com"
    emu.delete_contact(SITE, DANA)

    clock.t += 3599
    assert source.author_email(review) == "dana.levi@example.com"
    clock.t += 1
    assert source.author_email(review) is None
    assert len(_contact_calls(emu)) == 2


def test_wix_review_carrying_its_own_email_makes_no_call(emu, source):
    emu.add_contact(SITE, DANA, "dana.levi@example.com")
    review = dataclasses.replace(_wix_review(emu), author_email="  dana@levi-studio.example ")

    assert source.author_email(review) == "dana@levi-studio.example"
    assert _contact_calls(emu) == []


def test_wix_review_without_a_contact_is_none_without_a_call(emu, source):
    review = map_wix_review(SITE, {"id": "8c2f4e1a-0000-4c9e-a1f0-5d6b7c8e9f01", "content": {"rating": 5}})

    assert source.author_email(review) is None
    assert _contact_calls(emu) == []


def test_wix_contacts_429_is_retryable_and_not_kept(emu, clock):
    source = WixSource(
        WixWebhookVerifier([emu.public_key_pem], now=clock), _api(emu, clock, retry=RetryPolicy(attempts=2))
    )
    emu.add_contact(SITE, DANA, "dana.levi@example.com")
    review = _wix_review(emu)
    emu.inject(429, times=2, path_contains="/contacts/v4/")

    with pytest.raises(RetryableTargetError) as caught:
        source.author_email(review)

    assert caught.value.status == 429
    assert source.author_email(review) == "dana.levi@example.com"  # the next try asks Wix again
    assert [call.status for call in _contact_calls(emu)] == [429, 429, 200]


def test_wix_contacts_5xx_once_is_retried_here(emu, source):
    emu.add_contact(SITE, DANA, "dana.levi@example.com")
    emu.inject(503, path_contains="/contacts/v4/")

    assert source.author_email(_wix_review(emu)) == "dana.levi@example.com"


def test_wix_contacts_missing_permission_is_a_config_error_naming_read_contacts(emu, source):
    review = _wix_review(emu)
    emu.inject(403, path_contains="/contacts/v4/")

    with pytest.raises(ConfigError, match="needs the permissions Read Contacts") as caught:
        source.author_email(review)
    assert caught.value.status == 403


def test_wix_contacts_404_without_a_wix_error_body_is_not_taken_for_a_gone_contact(emu, source):
    review = _wix_review(emu)
    emu.inject(404, body="<html>Not Found</html>", path_contains="/contacts/v4/")

    with pytest.raises(FixAndReplayError, match="get contact"):
        source.author_email(review)


def test_wix_contact_lookups_take_a_turn_of_their_instances_rate_limit(emu, clock):
    limiter = RecordingLimiter()
    source = WixSource(WixWebhookVerifier([emu.public_key_pem], now=clock), _api(emu, clock, limiter=limiter))
    emu.add_contact(SITE, DANA, "dana.levi@example.com")
    review = _wix_review(emu)

    source.author_email(review)
    source.author_email(review)

    assert limiter.acquired == [SITE]


def test_wix_author_email_without_the_rest_api_is_a_config_error(emu, clock):
    source = WixSource(WixWebhookVerifier([emu.public_key_pem], now=clock))

    with pytest.raises(ConfigError, match="WIX_APP_ID"):
        source.author_email(_wix_review(emu))


def test_wix_author_email_never_logs_the_email(emu, source, caplog):
    emu.add_contact(SITE, DANA, "dana.levi@example.com")
    caplog.set_level("DEBUG")

    source.author_email(_wix_review(emu))

    assert "dana.levi@example.com" not in caplog.text


# --- Wix: which of a contact's e-mails ----------------------------------------------------------------


def test_wix_contact_email_of_the_documented_answer_is_its_primary_email():
    answer = json.loads((PAYLOADS / "contact_get_answer.json").read_text(encoding="utf-8"))

    assert contact_email(answer["contact"]) == "dana.levi@example.com"


@pytest.mark.parametrize(
    ("contact", "email"),
    [
        (
            {"primaryInfo": {"email": " a@example.com "}, "info": {"emails": {"items": [{"email": "b@example.com"}]}}},
            "a@example.com",
        ),
        (
            {
                "primaryInfo": {},
                "info": {
                    "emails": {"items": [{"email": "b@example.com"}, {"email": "c@example.com", "primary": True}]}
                },
            },
            "c@example.com",
        ),
        (
            {"primaryInfo": {"email": ""}, "info": {"emails": {"items": [{"tag": "WORK", "email": "b@example.com"}]}}},
            "b@example.com",
        ),
        (
            {"info": {"emails": {"items": ["b@example.com", {"email": None}, {"email": "d@example.com"}]}}},
            "d@example.com",
        ),
        ({"id": DANA, "revision": 1, "info": {"emails": {"items": []}}}, None),
        ({"id": DANA, "revision": 1}, None),
        ({"primaryInfo": "a@example.com", "info": []}, None),
    ],
    ids=["primary-info", "primary-item", "first-item", "unreadable-items-skipped", "no-items", "no-info", "odd-shapes"],
)
def test_wix_contact_email_prefers_primary_info_then_the_primary_item_then_the_first(contact, email):
    assert contact_email(contact) == email


# --- Trustoo: the review's own ------------------------------------------------------------------------


@pytest.fixture
def trustoo() -> TrustooSource:
    return TrustooSource(TrustooWebhookVerifier({TRUSTOO_PUBLIC_TOKEN: [TRUSTOO_PRIVATE_TOKEN]}))


def _trustoo_review(**item) -> Review:
    base = {"id": 90817, "product_id": "7712345678901", "rating": 5, "author": "Dana L.", "content": "Lovely mug."}
    return map_trustoo_review(TRUSTOO_PUBLIC_TOKEN, {**base, **item})


def test_trustoo_author_email_is_the_reviews_own(trustoo):
    assert trustoo.author_email(_trustoo_review(author_email="dana.levi@example.com")) == "dana.levi@example.com"


@pytest.mark.parametrize("email", [None, "", "   "])
def test_trustoo_review_without_an_email_has_none(trustoo, email):
    assert trustoo.author_email(_trustoo_review(author_email=email)) is None


def test_trustoo_author_email_is_stripped_even_when_set_by_hand(trustoo):
    review = dataclasses.replace(_trustoo_review(), author_email=" dana.levi@example.com\n")

    assert trustoo.author_email(review) == "dana.levi@example.com"


def test_both_sources_implement_author_emails(trustoo, source):
    assert isinstance(trustoo, AuthorEmails) and isinstance(source, AuthorEmails)
