"""The commercetools emulator pinned to the real API's rules (docs/platforms/commercetools.md §1, §2).

Everything runs in-process through httpx.WSGITransport, except one test over real loopback.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.fakes.commercetools import CommercetoolsEmulator, LoggedRequest
from tests.fakes.serving import serve_wsgi

PK = "reviewbridge-test"
CLIENT_ID = "ct-client"
SECRET = "ct-secret-0123456789"
ISO_MS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


class Clock:
    def __init__(self, now: float = 1_780_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


class Api:
    """A thin client: project-relative paths, a Bearer token, and the raw httpx.Client underneath."""

    def __init__(self, http: httpx.Client, token: str):
        self.http = http
        self.headers = {"Authorization": f"Bearer {token}"}

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.http.request(method, f"/{PK}{path}", headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, json=body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)

    def create(self, **fields: Any) -> dict[str, Any]:
        response = self.post("/reviews", fields)
        assert response.status_code == 201, response.text
        return response.json()

    def update(self, review: dict[str, Any], *actions: dict[str, Any]) -> httpx.Response:
        return self.post(f"/reviews/{review['id']}", {"version": review["version"], "actions": list(actions)})


def fetch_token(http: httpx.Client, **form: str) -> httpx.Response:
    return http.post("/oauth/token", auth=(CLIENT_ID, SECRET), data={"grant_type": "client_credentials", **form})


def error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert response.headers["content-type"].startswith("application/json")
    assert body["statusCode"] == response.status_code
    assert body["message"] == body["errors"][0]["message"]
    return body["errors"][0]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def emulator(clock) -> CommercetoolsEmulator:
    return CommercetoolsEmulator(project_key=PK, client_id=CLIENT_ID, client_secret=SECRET, clock=clock)


@pytest.fixture
def http(emulator):
    with httpx.Client(transport=httpx.WSGITransport(app=emulator), base_url="http://ct.test") as client:
        yield client


@pytest.fixture
def api(http) -> Api:
    return Api(http, fetch_token(http).json()["access_token"])


@pytest.fixture
def product(emulator) -> dict[str, Any]:
    return emulator.add_product(key="mug-01")


@pytest.fixture
def setup(emulator, product) -> dict[str, Any]:
    """The tutorial's set-up: a custom type, an initial pending state that leads to an approved one."""
    fields = {
        "sourceId": "String",
        "verified": "Boolean",
        "score": "Number",
        "repliedAt": "DateTime",
        "label": "LocalizedString",
        "tags": "Set<String>",
    }
    return {
        "type": emulator.add_type("review-source", fields),
        "approved": emulator.add_state("approved", initial=False, roles=("ReviewIncludedInStatistics",)),
        "hidden": emulator.add_state("hidden", initial=False),
        "pending": emulator.add_state("pending", initial=True, transitions=["approved"]),
        "published": emulator.add_state("published", initial=True, roles=("ReviewIncludedInStatistics",)),
    }


def draft(**overrides: Any) -> dict[str, Any]:
    body = {
        "key": "acme-rev-12345",
        "uniquenessValue": "acme:12345",
        "locale": "en",
        "authorName": "Jane D.",
        "title": "Great kettle",
        "text": "Boils fast and quietly.",
        "rating": 4,
        "target": {"typeId": "product", "key": "mug-01"},
        "custom": {"type": {"typeId": "type", "key": "review-source"}, "fields": {"sourceId": "12345"}},
    }
    body.update(overrides)
    return {name: value for name, value in body.items() if value is not None}


# --- auth -----------------------------------------------------------------------------------------


def test_commercetools_token_request_returns_bearer_token(http):
    response = fetch_token(http)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "expires_in", "scope", "token_type"}
    assert body["expires_in"] == 172800 and body["token_type"] == "Bearer"
    assert body["scope"] == f"manage_project:{PK}"


def test_commercetools_token_with_scopes_echoes_them(http):
    scope = f"manage_products:{PK} view_types:{PK}"
    assert fetch_token(http, scope=scope).json()["scope"] == scope


def test_commercetools_token_wrong_secret_is_invalid_client(http):
    response = http.post("/oauth/token", auth=(CLIENT_ID, "nope"), data={"grant_type": "client_credentials"})
    assert response.status_code == 401
    body = response.json()
    assert body["error"] == "invalid_client" and body["error_description"]
    assert body["message"] == "Please provide valid client credentials using HTTP Basic Authentication."
    assert body["errors"][0]["code"] == "invalid_client"


def test_commercetools_token_without_credentials_is_invalid_client(http):
    response = http.post("/oauth/token", data={"grant_type": "client_credentials"})
    assert response.status_code == 401 and error(response)["code"] == "invalid_client"


def test_commercetools_token_secret_with_colon_is_accepted(clock):
    emulator = CommercetoolsEmulator(project_key=PK, client_id=CLIENT_ID, client_secret="a:b:c", clock=clock)
    with httpx.Client(transport=httpx.WSGITransport(app=emulator), base_url="http://ct.test") as http:
        ok = http.post("/oauth/token", auth=(CLIENT_ID, "a:b:c"), data={"grant_type": "client_credentials"})
        bad = http.post("/oauth/token", auth=(CLIENT_ID, "a:b"), data={"grant_type": "client_credentials"})
    assert (ok.status_code, bad.status_code) == (200, 401)


def test_commercetools_token_wrong_grant_type_is_unsupported_grant_type(http):
    response = http.post("/oauth/token", auth=(CLIENT_ID, SECRET), data={"grant_type": "password"})
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_commercetools_token_scope_for_other_project_is_invalid_scope(http):
    response = fetch_token(http, scope="manage_products:other-project")
    assert response.status_code == 400 and response.json()["error"] == "invalid_scope"


def test_commercetools_token_path_other_than_exact_is_not_found(http):
    response = http.post("/oauth/token/", auth=(CLIENT_ID, SECRET), data={"grant_type": "client_credentials"})
    assert response.status_code == 404 and error(response)["code"] == "ResourceNotFound"


def test_commercetools_api_call_without_token_is_invalid_token(http, product):
    response = http.get(f"/{PK}/products/key=mug-01")
    assert response.status_code == 401
    assert response.json() == {
        "statusCode": 401,
        "message": "invalid_token",
        "errors": [{"code": "invalid_token", "message": "invalid_token"}],
        "error": "invalid_token",
    }


def test_commercetools_garbage_token_is_invalid_token(http, product):
    response = http.get(f"/{PK}/products/key=mug-01", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401 and error(response)["code"] == "invalid_token"


def test_commercetools_token_past_its_lifetime_is_invalid_token(api, clock, product):
    assert api.get("/products/key=mug-01").status_code == 200
    clock.now += 172800
    assert api.get("/products/key=mug-01").status_code == 401


def test_commercetools_expire_tokens_invalidates_every_token(api, emulator, product):
    emulator.expire_tokens()
    assert api.get("/products/key=mug-01").status_code == 401


def test_commercetools_wrong_project_key_is_insufficient_scope(api, http, product):
    response = http.get("/other-project/products/key=mug-01", headers=api.headers)
    assert response.status_code == 403
    assert error(response)["code"] == "insufficient_scope"
    assert response.json()["error"] == "insufficient_scope"


def test_commercetools_view_scope_reads_but_cannot_write(http, setup):
    api = Api(http, fetch_token(http, scope=f"view_products:{PK}").json()["access_token"])
    assert api.get("/reviews").status_code == 200
    response = api.post("/reviews", draft())
    assert response.status_code == 403 and "manage_products" in error(response)["message"]


# --- create -----------------------------------------------------------------------------------------


def test_commercetools_create_from_spec_draft_returns_201_review(api, setup, product):
    response = api.post("/reviews", draft())
    assert response.status_code == 201
    review = response.json()
    assert str(uuid.UUID(review["id"], version=4)) == review["id"]
    assert review["version"] == 1
    assert ISO_MS.fullmatch(review["createdAt"]) and review["lastModifiedAt"] == review["createdAt"]
    assert review["target"] == {"typeId": "product", "id": product["id"]}  # created by key, returned by id
    assert review["custom"] == {"type": {"typeId": "type", "id": setup["type"]["id"]}, "fields": {"sourceId": "12345"}}
    assert review["includedInStatistics"] is True and "state" not in review
    for field in ("key", "uniquenessValue", "locale", "authorName", "title", "text", "rating"):
        assert review[field] == draft()[field]


def test_commercetools_create_is_stored_as_returned(api, emulator, setup):
    review = api.create(**draft())
    assert emulator.reviews == {review["id"]: review}
    assert emulator.review_by_key("acme-rev-12345") == review
    assert api.get("/reviews/key=acme-rev-12345").json() == review


def test_commercetools_create_with_unknown_field_is_invalid_json_input(api, setup):
    response = api.post("/reviews", draft(stars=5))
    assert response.status_code == 400
    problem = error(response)
    assert problem["code"] == "InvalidJsonInput" and "stars" in problem["detailedErrorMessage"]


@pytest.mark.parametrize("field, value", [("rating", "4"), ("title", 7), ("key", ["k"]), ("target", "mug-01")])
def test_commercetools_create_with_wrong_json_type_is_invalid_json_input(api, setup, field, value):
    response = api.post("/reviews", draft(**{field: value}))
    assert response.status_code == 400
    problem = error(response)
    assert problem["code"] == "InvalidJsonInput" and field in problem["detailedErrorMessage"]


def test_commercetools_create_with_broken_json_is_invalid_json_input(api):
    response = api.request("POST", "/reviews", content=b'{"key": ', headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and error(response)["code"] == "InvalidJsonInput"


@pytest.mark.parametrize("rating", [101, -101, 500, 4.5])
def test_commercetools_create_with_rating_out_of_range_is_invalid_field(api, setup, rating):
    response = api.post("/reviews", draft(rating=rating))
    assert response.status_code == 400
    problem = error(response)
    assert (problem["code"], problem["field"], problem["invalidValue"]) == ("InvalidField", "rating", rating)


@pytest.mark.parametrize("rating", [-100, 0, 100])
def test_commercetools_create_with_rating_at_bounds_succeeds(api, setup, rating):
    assert api.create(**draft(rating=rating))["rating"] == rating


def test_commercetools_create_with_duplicate_key_is_duplicate_field(api, setup):
    api.create(**draft())
    response = api.post("/reviews", draft(uniquenessValue="other"))
    assert response.status_code == 400
    message = "A duplicate value '\"acme-rev-12345\"' exists for field 'key'."
    assert response.json() == {
        "statusCode": 400,
        "message": message,
        "errors": [{"code": "DuplicateField", "message": message, "field": "key", "duplicateValue": "acme-rev-12345"}],
    }


def test_commercetools_create_with_duplicate_uniqueness_value_is_duplicate_field_as_in_spec(api, setup):
    api.create(**draft())
    response = api.post("/reviews", draft(key="another-key"))
    assert response.status_code == 400
    assert response.json() == {
        "statusCode": 400,
        "message": "A duplicate value '\"acme:12345\"' exists for field 'uniquenessValue'.",
        "errors": [
            {
                "code": "DuplicateField",
                "message": "A duplicate value '\"acme:12345\"' exists for field 'uniquenessValue'.",
                "field": "uniquenessValue",
                "duplicateValue": "acme:12345",
            }
        ],
    }


def test_commercetools_keys_are_case_sensitive_so_other_case_is_not_duplicate(api, setup):
    api.create(**draft())
    assert api.post("/reviews", draft(key="ACME-REV-12345", uniquenessValue="ACME:12345")).status_code == 201


def test_commercetools_review_without_key_does_not_break_key_lookups(api, setup):
    api.create(**draft(key=None, uniquenessValue=None))
    assert api.get("/reviews/key=missing").status_code == 404
    assert api.post("/reviews", draft()).status_code == 201


@pytest.mark.parametrize(
    "target, how, value",
    [
        ({"typeId": "product", "key": "no-such-product"}, "key", "no-such-product"),
        (
            {"typeId": "product", "id": "00000000-0000-4000-8000-000000000000"},
            "id",
            "00000000-0000-4000-8000-000000000000",
        ),
        ({"typeId": "channel", "key": "web"}, "key", "web"),
    ],
)
def test_commercetools_create_with_missing_target_is_referenced_resource_not_found(api, setup, target, how, value):
    response = api.post("/reviews", draft(target=target))
    assert response.status_code == 400
    problem = error(response)
    assert problem["code"] == "ReferencedResourceNotFound"
    assert problem["typeId"] == target["typeId"] and problem[how] == value


def test_commercetools_create_with_target_by_id_returns_reference(api, setup, product):
    review = api.create(**draft(target={"typeId": "product", "id": product["id"]}))
    assert review["target"] == {"typeId": "product", "id": product["id"]}


def test_commercetools_create_in_initial_state_without_role_is_excluded_from_statistics(api, setup):
    review = api.create(**draft(state={"typeId": "state", "key": "pending"}))
    assert review["state"] == {"typeId": "state", "id": setup["pending"]["id"]}
    assert review["includedInStatistics"] is False


def test_commercetools_create_in_initial_state_with_role_is_included_in_statistics(api, setup):
    review = api.create(**draft(state={"typeId": "state", "id": setup["published"]["id"]}))
    assert review["includedInStatistics"] is True


def test_commercetools_create_in_non_initial_state_is_invalid_operation(api, setup):
    response = api.post("/reviews", draft(state={"typeId": "state", "key": "approved"}))
    assert response.status_code == 400 and error(response)["code"] == "InvalidOperation"


def test_commercetools_create_in_non_review_state_is_invalid_operation(api, emulator, setup):
    emulator.add_state("order-open", state_type="OrderState")
    response = api.post("/reviews", draft(state={"typeId": "state", "key": "order-open"}))
    assert response.status_code == 400 and error(response)["code"] == "InvalidOperation"


def test_commercetools_create_in_missing_state_is_referenced_resource_not_found(api, setup):
    response = api.post("/reviews", draft(state={"typeId": "state", "key": "nope"}))
    problem = error(response)
    assert (problem["code"], problem["typeId"], problem["key"]) == ("ReferencedResourceNotFound", "state", "nope")


def test_commercetools_create_with_every_custom_field_type_returns_fields_as_given(api, setup):
    fields = {
        "sourceId": "1",
        "verified": True,
        "score": 4.5,
        "repliedAt": "2026-01-02T03:04:05.000Z",
        "label": {"en": "Hi", "de": "Hallo"},
        "tags": ["a", "b"],
    }
    review = api.create(**draft(custom={"type": {"typeId": "type", "key": "review-source"}, "fields": fields}))
    assert review["custom"]["fields"] == fields


@pytest.mark.parametrize(
    "name, value",
    [
        ("sourceId", 12345),
        ("verified", "yes"),
        ("score", "4"),
        ("repliedAt", "yesterday"),
        ("repliedAt", "2026-13-40T00:00:00Z"),
        ("label", "Hi"),
        ("tags", ["a", 1]),
        ("tags", "a"),
    ],
)
def test_commercetools_create_with_wrong_custom_field_value_is_invalid_field(api, setup, name, value):
    custom = {"type": {"typeId": "type", "key": "review-source"}, "fields": {name: value}}
    problem = error(api.post("/reviews", draft(custom=custom)))
    assert (problem["code"], problem["field"], problem["invalidValue"]) == ("InvalidField", name, value)


def test_commercetools_create_with_undeclared_custom_field_is_invalid_field(api, setup):
    custom = {"type": {"typeId": "type", "key": "review-source"}, "fields": {"nope": "x"}}
    problem = error(api.post("/reviews", draft(custom=custom)))
    assert (problem["code"], problem["field"]) == ("InvalidField", "nope")


def test_commercetools_create_with_missing_custom_type_is_referenced_resource_not_found(api, setup):
    custom = {"type": {"typeId": "type", "key": "nope"}, "fields": {}}
    problem = error(api.post("/reviews", draft(custom=custom)))
    assert (problem["code"], problem["typeId"], problem["key"]) == ("ReferencedResourceNotFound", "type", "nope")


def test_commercetools_create_with_type_for_other_resources_is_referenced_resource_not_found(api, emulator, setup):
    emulator.add_type("order-extras", {"note": "String"}, resource_type_ids=("order",))
    custom = {"type": {"typeId": "type", "key": "order-extras"}, "fields": {}}
    assert error(api.post("/reviews", draft(custom=custom)))["code"] == "ReferencedResourceNotFound"


def test_commercetools_create_without_required_custom_field_is_required_field(api, emulator, setup):
    emulator.add_type("strict", [{"name": "must", "label": {"en": "m"}, "required": True, "type": {"name": "String"}}])
    custom = {"type": {"typeId": "type", "key": "strict"}, "fields": {}}
    problem = error(api.post("/reviews", draft(custom=custom)))
    assert (problem["code"], problem["field"]) == ("RequiredField", "must")


def test_commercetools_create_with_unknown_customer_is_referenced_resource_not_found(api, emulator, setup):
    response = api.post("/reviews", draft(customer={"typeId": "customer", "key": "ghost"}))
    assert error(response)["code"] == "ReferencedResourceNotFound"
    customer = emulator.add_customer(key="c1")
    review = api.create(**draft(customer={"typeId": "customer", "key": "c1"}))
    assert review["customer"] == {"typeId": "customer", "id": customer["id"]}


# --- read ---------------------------------------------------------------------------------------------


def test_commercetools_get_by_url_encoded_key_finds_review(api, setup):
    review = api.create(**draft(key="a b/c+d"))
    assert api.get("/reviews/key=a%20b%2Fc%2Bd").json() == review
    assert api.get(f"/reviews/{review['id']}").json() == review


def test_commercetools_get_missing_review_is_resource_not_found_json(api):
    for path in ("/reviews/key=nope", "/reviews/00000000-0000-4000-8000-000000000000", "/reviews/not-a-uuid"):
        response = api.get(path)
        assert response.status_code == 404 and error(response)["code"] == "ResourceNotFound"


def test_commercetools_head_answers_200_or_404_without_body(api, setup):
    review = api.create(**draft())
    found = api.request("HEAD", "/reviews/key=acme-rev-12345")
    by_id = api.request("HEAD", f"/reviews/{review['id']}")
    missing = api.request("HEAD", "/reviews/key=nope")
    matching = api.request("HEAD", "/reviews", params={"where": 'key = "acme-rev-12345"'})
    none = api.request("HEAD", "/reviews", params={"where": 'key = "nope"'})
    assert [r.status_code for r in (found, by_id, missing, matching, none)] == [200, 200, 404, 200, 404]
    assert all(r.content == b"" for r in (found, missing))


def test_commercetools_expand_state_inlines_the_state(api, setup):
    review = api.create(**draft(state={"typeId": "state", "key": "pending"}))
    expanded = api.get(f"/reviews/{review['id']}", params={"expand": "state"}).json()
    assert expanded["state"]["obj"]["key"] == "pending"


# --- update -----------------------------------------------------------------------------------------


def test_commercetools_update_without_version_is_invalid_json_input(api, setup):
    review = api.create(**draft())
    response = api.post(f"/reviews/{review['id']}", {"actions": [{"action": "setRating", "rating": 5}]})
    assert response.status_code == 400
    assert error(response)["code"] == "InvalidJsonInput" and "version" in error(response)["detailedErrorMessage"]


def test_commercetools_update_with_stale_version_is_concurrent_modification(api, setup):
    review = api.create(**draft())
    api.update(review, {"action": "setRating", "rating": 5})
    response = api.update(review, {"action": "setRating", "rating": 3})
    assert response.status_code == 409
    message = f"Object {review['id']} has a different version than expected. Expected: 1 - Actual: 2."
    assert response.json() == {
        "statusCode": 409,
        "message": message,
        "errors": [{"code": "ConcurrentModification", "message": message, "currentVersion": 2}],
    }


def test_commercetools_update_bumps_version_and_last_modified(api, clock, setup):
    review = api.create(**draft())
    clock.now += 61.5
    updated = api.update(review, {"action": "setTitle", "title": "New"}).json()
    assert updated["version"] == 2 and updated["title"] == "New"
    assert updated["lastModifiedAt"] > updated["createdAt"] == review["createdAt"]


def test_commercetools_update_with_empty_actions_does_not_bump(api, clock, setup):
    review = api.create(**draft())
    clock.now += 10
    response = api.update(review)
    assert response.status_code == 200 and response.json() == review


@pytest.mark.parametrize(
    "action, field, value",
    [
        ("setKey", "key", "new-key"),
        ("setAuthorName", "authorName", "Joe"),
        ("setRating", "rating", -3),
        ("setText", "text", "Meh."),
        ("setTitle", "title", "Okay"),
        ("setLocale", "locale", "de"),
    ],
)
def test_commercetools_simple_action_sets_then_removes_field(api, setup, action, field, value):
    review = api.create(**draft())
    updated = api.update(review, {"action": action, field: value}).json()
    assert updated[field] == value
    removed = api.update(updated, {"action": action}).json()
    assert field not in removed and removed["version"] == 3


def test_commercetools_set_rating_out_of_range_is_invalid_field(api, setup):
    review = api.create(**draft())
    problem = error(api.update(review, {"action": "setRating", "rating": 101}))
    assert (problem["code"], problem["field"], problem["invalidValue"]) == ("InvalidField", "rating", 101)


def test_commercetools_set_key_to_taken_key_is_duplicate_field(api, setup):
    api.create(**draft())
    other = api.create(**draft(key="other", uniquenessValue="other"))
    problem = error(api.update(other, {"action": "setKey", "key": "acme-rev-12345"}))
    assert (problem["code"], problem["field"], problem["duplicateValue"]) == ("DuplicateField", "key", "acme-rev-12345")


def test_commercetools_set_key_frees_old_key(api, setup):
    review = api.create(**draft())
    api.update(review, {"action": "setKey", "key": "renamed"})
    assert api.get("/reviews/key=acme-rev-12345").status_code == 404
    assert api.get("/reviews/key=renamed").json()["id"] == review["id"]
    assert api.post("/reviews", draft(uniquenessValue="fresh")).status_code == 201


def test_commercetools_set_target_checks_existence(api, emulator, setup):
    review = api.create(**draft())
    other = emulator.add_product(key="kettle-01")
    missing = api.update(review, {"action": "setTarget", "target": {"typeId": "product", "key": "nope"}})
    assert error(missing)["code"] == "ReferencedResourceNotFound"
    moved = api.update(review, {"action": "setTarget", "target": {"typeId": "product", "key": "kettle-01"}}).json()
    assert moved["target"] == {"typeId": "product", "id": other["id"]}


def test_commercetools_set_customer_sets_and_removes_reference(api, emulator, setup):
    customer = emulator.add_customer(key="c1")
    review = api.create(**draft())
    updated = api.update(review, {"action": "setCustomer", "customer": {"typeId": "customer", "id": customer["id"]}})
    assert updated.json()["customer"] == {"typeId": "customer", "id": customer["id"]}
    assert "customer" not in api.update(updated.json(), {"action": "setCustomer"}).json()


def test_commercetools_transition_from_no_state_to_non_initial_needs_force(api, setup):
    review = api.create(**draft())
    to_approved = {"action": "transitionState", "state": {"typeId": "state", "key": "approved"}}
    assert error(api.update(review, to_approved))["code"] == "InvalidOperation"
    forced = api.update(review, {**to_approved, "force": True}).json()
    assert forced["state"]["id"] == setup["approved"]["id"] and forced["includedInStatistics"] is True


def test_commercetools_transition_follows_declared_transitions(api, setup):
    review = api.create(**draft(state={"typeId": "state", "key": "pending"}))
    to_hidden = {"action": "transitionState", "state": {"typeId": "state", "key": "hidden"}}
    assert error(api.update(review, to_hidden))["code"] == "InvalidOperation"
    approved = api.update(review, {"action": "transitionState", "state": {"typeId": "state", "key": "approved"}})
    assert approved.status_code == 200 and approved.json()["includedInStatistics"] is True
    # "approved" declares no transitions, so anything goes from there
    hidden = api.update(approved.json(), to_hidden).json()
    assert hidden["state"]["id"] == setup["hidden"]["id"] and hidden["includedInStatistics"] is False


def test_commercetools_transition_to_missing_state_is_referenced_resource_not_found(api, setup):
    review = api.create(**draft())
    response = api.update(
        review, {"action": "transitionState", "state": {"typeId": "state", "key": "nope"}, "force": True}
    )
    assert error(response)["code"] == "ReferencedResourceNotFound"


def test_commercetools_set_custom_type_replaces_or_removes_custom(api, emulator, setup):
    other = emulator.add_type("other-type", {"note": "String"})
    review = api.create(**draft())
    replaced = api.update(
        review, {"action": "setCustomType", "type": {"typeId": "type", "key": "other-type"}, "fields": {"note": "n"}}
    ).json()
    assert replaced["custom"] == {"type": {"typeId": "type", "id": other["id"]}, "fields": {"note": "n"}}
    assert "custom" not in api.update(replaced, {"action": "setCustomType"}).json()


def test_commercetools_set_custom_field_sets_and_removes(api, setup):
    review = api.create(**draft())
    updated = api.update(review, {"action": "setCustomField", "name": "verified", "value": True}).json()
    assert updated["custom"]["fields"] == {"sourceId": "12345", "verified": True}
    removed = api.update(updated, {"action": "setCustomField", "name": "sourceId"}).json()
    assert removed["custom"]["fields"] == {"verified": True}


def test_commercetools_set_custom_field_removing_absent_field_is_invalid_operation(api, setup):
    review = api.create(**draft())
    assert error(api.update(review, {"action": "setCustomField", "name": "verified"}))["code"] == "InvalidOperation"


def test_commercetools_set_custom_field_unknown_or_wrong_value_is_invalid_field(api, setup):
    review = api.create(**draft())
    unknown = error(api.update(review, {"action": "setCustomField", "name": "nope", "value": "x"}))
    wrong = error(api.update(review, {"action": "setCustomField", "name": "verified", "value": "yes"}))
    assert (unknown["code"], unknown["field"]) == ("InvalidField", "nope")
    assert (wrong["code"], wrong["field"]) == ("InvalidField", "verified")


def test_commercetools_set_custom_field_without_custom_type_is_invalid_operation(api, setup):
    review = api.create(**draft(custom=None))
    response = api.update(review, {"action": "setCustomField", "name": "verified", "value": True})
    assert error(response)["code"] == "InvalidOperation"


def test_commercetools_unknown_action_is_invalid_json_input(api, setup):
    review = api.create(**draft())
    for action in ({"action": "setUniquenessValue", "uniquenessValue": "x"}, {"action": "setRating", "stars": 5}):
        assert error(api.update(review, action))["code"] == "InvalidJsonInput"


def test_commercetools_update_with_one_bad_action_applies_nothing(api, setup):
    review = api.create(**draft())
    response = api.update(review, {"action": "setTitle", "title": "changed"}, {"action": "setRating", "rating": 999})
    assert response.status_code == 400
    assert api.get(f"/reviews/{review['id']}").json() == review


def test_commercetools_update_by_key_applies_spec_example(api, setup):
    api.create(**draft())
    body = {
        "version": 1,
        "actions": [
            {"action": "setRating", "rating": 5},
            {"action": "setTitle", "title": "Great kettle"},
            {"action": "setText", "text": "Boils fast, quiet, solid lid."},
            {"action": "setAuthorName", "authorName": "J."},
            {"action": "setLocale", "locale": "en"},
            {"action": "transitionState", "state": {"typeId": "state", "key": "approved"}, "force": True},
        ],
    }
    updated = api.post("/reviews/key=acme-rev-12345", body).json()
    assert (updated["version"], updated["rating"], updated["authorName"]) == (2, 5, "J.")
    assert updated["state"] == {"typeId": "state", "id": setup["approved"]["id"]}


# --- delete -----------------------------------------------------------------------------------------


def test_commercetools_delete_without_version_is_invalid_input(api, setup):
    api.create(**draft())
    response = api.delete("/reviews/key=acme-rev-12345")
    assert response.status_code == 400 and error(response)["code"] == "InvalidInput"


def test_commercetools_delete_with_stale_version_is_concurrent_modification(api, setup):
    review = api.create(**draft())
    problem = error(api.delete(f"/reviews/{review['id']}", params={"version": 7}))
    assert (problem["code"], problem["currentVersion"]) == ("ConcurrentModification", 1)


def test_commercetools_delete_returns_review_and_frees_key_and_uniqueness_value(api, emulator, setup):
    review = api.create(**draft())
    response = api.delete("/reviews/key=acme-rev-12345", params={"version": 1})
    assert response.status_code == 200 and response.json() == review
    assert emulator.reviews == {} and api.get(f"/reviews/{review['id']}").status_code == 404
    assert api.post("/reviews", draft()).status_code == 201


# --- query ------------------------------------------------------------------------------------------


def make_reviews(api: Api, count: int, clock: Clock | None = None) -> list[dict[str, Any]]:
    made = []
    for index in range(count):
        if clock is not None:
            clock.now += 1
        made.append(
            api.create(
                key=f"rev-{index:03d}",
                uniquenessValue=f"u-{index:03d}",
                rating=index % 5,
                target={"typeId": "product", "key": "mug-01"},
            )
        )
    return made


def test_commercetools_query_defaults_to_20_with_total(api, product):
    reviews = make_reviews(api, 25)
    page = api.get("/reviews").json()
    assert (page["limit"], page["offset"], page["count"], page["total"]) == (20, 0, 20, 25)
    assert [r["id"] for r in page["results"]] == sorted(r["id"] for r in reviews)[:20]


def test_commercetools_query_without_total_omits_total(api, product):
    make_reviews(api, 3)
    page = api.get("/reviews", params={"withTotal": "false", "limit": "2", "offset": "1"}).json()
    assert page.keys() == {"limit", "offset", "count", "results"} and page["count"] == 2


@pytest.mark.parametrize(
    "params", [{"limit": "501"}, {"limit": "-1"}, {"limit": "x"}, {"offset": "10001"}, {"withTotal": "maybe"}]
)
def test_commercetools_query_with_bad_paging_is_invalid_input(api, params):
    response = api.get("/reviews", params=params)
    assert response.status_code == 400 and error(response)["code"] == "InvalidInput"


def test_commercetools_query_limit_bounds_are_accepted(api):
    assert api.get("/reviews", params={"limit": "0"}).json()["count"] == 0
    assert api.get("/reviews", params={"limit": "500", "offset": "10000"}).status_code == 200


def keys_for(api: Api, *where: str, **params: str) -> list[str]:
    response = api.get("/reviews", params=[*(("where", w) for w in where), *params.items()])
    assert response.status_code == 200, response.text
    return [review["key"] for review in response.json()["results"]]


def test_commercetools_query_predicates_filter_like_the_api(api, clock, emulator, product):
    reviews = make_reviews(api, 5, clock)
    other = emulator.add_product(key="kettle-01")
    api.update(reviews[4], {"action": "setTarget", "target": {"typeId": "product", "id": other["id"]}})
    ids = sorted(r["id"] for r in reviews)
    assert keys_for(api, 'key = "rev-001"') == ["rev-001"]
    assert keys_for(api, 'key = "REV-001"') == []  # case-sensitive
    assert sorted(keys_for(api, 'key in ("rev-001", "rev-003", "nope")')) == ["rev-001", "rev-003"]
    assert keys_for(api, 'uniquenessValue = "u-002"') == ["rev-002"]
    assert keys_for(api, f'id = "{reviews[0]["id"]}"') == ["rev-000"]
    assert len(keys_for(api, f'id > "{ids[1]}"')) == 3
    assert keys_for(api, f'target(id = "{other["id"]}")') == ["rev-004"]
    assert sorted(keys_for(api, f'lastModifiedAt > "{reviews[2]["lastModifiedAt"]}"')) == ["rev-003", "rev-004"]
    assert keys_for(api, 'key in ("rev-001", "rev-002")', 'uniquenessValue = "u-002"') == ["rev-002"]
    assert keys_for(api, 'key in ("rev-001", "rev-002") and uniquenessValue = "u-001"') == ["rev-001"]
    assert keys_for(api, "key in :keys", **{"var.keys": "rev-003"}) == ["rev-003"]


@pytest.mark.parametrize(
    "where", ['key ~ "x"', "key = x", 'custom(fields(a = "b"))', 'nope = "x"', 'key = "x" and', 'rating = "high"']
)
def test_commercetools_query_with_unsupported_predicate_is_invalid_input(api, where):
    response = api.get("/reviews", params={"where": where})
    assert response.status_code == 400 and error(response)["code"] == "InvalidInput"


def test_commercetools_query_sorts_by_requested_field(api, clock, product):
    reviews = make_reviews(api, 4, clock)
    by_id = sorted(r["id"] for r in reviews)
    assert [r["id"] for r in api.get("/reviews", params={"sort": "id desc"}).json()["results"]] == by_id[::-1]
    created = api.get("/reviews", params={"sort": "createdAt desc"}).json()["results"]
    assert [r["key"] for r in created] == ["rev-003", "rev-002", "rev-001", "rev-000"]
    assert error(api.get("/reviews", params={"sort": "rating asc"}))["code"] == "InvalidInput"


def test_commercetools_keyset_paging_by_id_visits_every_review_once(api, product):
    reviews = make_reviews(api, 12)
    seen, last = [], None
    while True:
        where = [f'id > "{last}"'] if last else []
        page = api.get(
            "/reviews",
            params=[("sort", "id asc"), ("limit", "5"), ("withTotal", "false"), *(("where", w) for w in where)],
        ).json()["results"]
        seen += [r["id"] for r in page]
        if len(page) < 5:
            break
        last = page[-1]["id"]
    assert seen == sorted(r["id"] for r in reviews)


# --- products, types, states --------------------------------------------------------------------------


def test_commercetools_product_lookup_by_key_or_id(api, product, emulator):
    by_key = api.get("/products/key=mug-01").json()
    assert by_key["id"] == product["id"] and by_key["masterData"]["current"]["name"] == {"en": "mug-01"}
    assert api.get(f"/products/{product['id']}").json()["key"] == "mug-01"
    assert error(api.get("/products/key=nope"))["code"] == "ResourceNotFound"
    assert emulator.add_product(key="fixed", id="p-1")["id"] == "p-1"


def test_commercetools_product_rating_statistics_count_included_reviews(api, setup):
    api.create(**draft(rating=4, state={"typeId": "state", "key": "published"}))
    api.create(**draft(key="k2", uniquenessValue="u2", rating=2))
    api.create(**draft(key="k3", uniquenessValue="u3", rating=1, state={"typeId": "state", "key": "pending"}))
    statistics = api.get("/products/key=mug-01").json()["reviewRatingStatistics"]
    assert statistics == {
        "averageRating": 3.0,
        "highestRating": 4,
        "lowestRating": 2,
        "count": 2,
        "ratingsDistribution": {"2": 1, "4": 1},
    }


def test_commercetools_types_create_read_and_reject_duplicates(api):
    body = {
        "key": "review-source",
        "name": {"en": "Source"},
        "resourceTypeIds": ["review"],
        "fieldDefinitions": [
            {
                "name": "sourceId",
                "label": {"en": "Source id"},
                "required": False,
                "type": {"name": "String"},
                "inputHint": "SingleLine",
            }
        ],
    }
    created = api.post("/types", body)
    assert created.status_code == 201 and created.json()["fieldDefinitions"] == body["fieldDefinitions"]
    assert api.get("/types/key=review-source").json()["id"] == created.json()["id"]
    assert api.get(f"/types/{created.json()['id']}").status_code == 200
    assert api.get("/types", params={"where": 'key = "review-source"'}).json()["count"] == 1
    problem = error(api.post("/types", body))
    assert (problem["code"], problem["field"], problem["duplicateValue"]) == ("DuplicateField", "key", "review-source")


def test_commercetools_types_with_bad_field_type_is_invalid_json_input(api):
    body = {
        "key": "t1",
        "name": {"en": "T"},
        "resourceTypeIds": ["review"],
        "fieldDefinitions": [{"name": "x1", "label": {"en": "x"}, "required": False, "type": {"name": "Blob"}}],
    }
    assert error(api.post("/types", body))["code"] == "InvalidJsonInput"


def test_commercetools_states_create_read_and_reject_duplicates(api):
    body = {"key": "published", "type": "ReviewState", "roles": ["ReviewIncludedInStatistics"]}
    created = api.post("/states", body)
    assert created.status_code == 201
    state = created.json()
    assert (state["initial"], state["roles"], state["type"]) == (True, ["ReviewIncludedInStatistics"], "ReviewState")
    assert api.get("/states/key=published").json()["id"] == state["id"]
    assert api.get("/states", params={"where": 'key = "published"'}).json()["results"] == [state]
    assert error(api.post("/states", body))["field"] == "key"
    assert (
        error(api.post("/states", {"key": "x1", "type": "ReviewState", "roles": ["Approved"]}))["code"]
        == "InvalidJsonInput"
    )


# --- Python-side helpers --------------------------------------------------------------------------------


def test_commercetools_writes_for_counts_applied_writes_per_key(api, emulator, setup):
    review = api.create(**draft())
    updated = api.update(review, {"action": "setKey", "key": "renamed"}).json()
    api.update(updated, {"action": "setTitle", "title": "x"})  # stale version: 409, not counted
    api.get("/reviews/key=renamed")
    api.delete("/reviews/key=renamed", params={"version": 2})
    assert (emulator.writes_for("acme-rev-12345"), emulator.writes_for("renamed")) == (2, 2)
    assert emulator.writes_for("never") == 0


def test_commercetools_requests_log_every_call_with_final_status(api, emulator, setup):
    emulator.requests.clear()
    api.post("/reviews", draft())
    api.get("/reviews", params={"where": 'key = "acme-rev-12345"'})
    first, second = emulator.requests
    assert isinstance(first, LoggedRequest)
    assert (first.method, first.path, first.status, first.body["key"]) == (
        "POST",
        f"/{PK}/reviews",
        201,
        "acme-rev-12345",
    )
    assert (second.query, second.status) == ({"where": ['key = "acme-rev-12345"']}, 200)


def test_commercetools_token_requests_are_logged(http, emulator):
    fetch_token(http)
    logged = emulator.requests[-1]
    assert (logged.path, logged.status, logged.body) == ("/oauth/token", 200, {"grant_type": "client_credentials"})


def test_commercetools_reset_clears_everything(api, emulator, setup):
    api.create(**draft())
    emulator.inject(503)
    emulator.reset()
    assert emulator.reviews == {} and emulator.requests == [] and emulator.writes_for("acme-rev-12345") == 0
    assert api.get("/products/key=mug-01").status_code == 404  # products, types and states are gone too
    assert api.get("/states/key=pending").status_code == 404


# --- faults -------------------------------------------------------------------------------------------


def test_commercetools_injected_503_answers_once_then_recovers(api, emulator, product):
    emulator.inject(503, retry_after=2)
    first = api.get("/products/key=mug-01")
    assert first.status_code == 503 and first.headers["Retry-After"] == "2"
    assert error(first)["code"] == "OverCapacity"
    assert api.get("/products/key=mug-01").status_code == 200
    assert [r.status for r in emulator.requests[-2:]] == [503, 200]


def test_commercetools_injected_fault_matches_method_and_path(api, emulator, setup):
    emulator.inject(502, times=2, method="POST", path_contains="/reviews")
    assert api.get("/reviews").status_code == 200
    assert api.post("/reviews", draft()).status_code == 502
    assert api.post("/reviews", draft()).status_code == 502
    assert emulator.reviews == {}
    assert api.post("/reviews", draft()).status_code == 201


def test_commercetools_injected_fault_does_not_touch_token_endpoint(http, emulator):
    emulator.inject(503)
    assert fetch_token(http).status_code == 200


def test_commercetools_fault_after_apply_applies_write_but_loses_reply(api, emulator, setup):
    emulator.inject(503, method="POST", after_apply=True)
    assert api.post("/reviews", draft()).status_code == 503
    assert emulator.review_by_key("acme-rev-12345") is not None
    assert emulator.writes_for("acme-rev-12345") == 1
    retry = api.post("/reviews", draft())
    assert error(retry)["code"] == "DuplicateField"


def test_commercetools_fault_with_custom_body_is_sent_verbatim(api, emulator):
    emulator.inject(502, body="<html>bad gateway</html>")
    response = api.get("/reviews")
    assert response.status_code == 502 and response.text == "<html>bad gateway</html>"


def test_commercetools_injected_409_carries_current_version(api, emulator, setup):
    review = api.create(**draft())
    emulator.inject(409, path_contains="key=")
    problem = error(api.post("/reviews/key=acme-rev-12345", {"version": 1, "actions": []}))
    assert (problem["code"], problem["currentVersion"]) == ("ConcurrentModification", review["version"])


def test_commercetools_status_zero_hangs_then_answers_504(api, emulator):
    emulator.inject(0, timeout_s=0.05)
    started = time.monotonic()
    response = api.get("/reviews")
    assert response.status_code == 504 and time.monotonic() - started >= 0.05
    assert emulator.requests[-1].status == 504


def test_commercetools_fail_rate_picks_retryable_statuses(clock, product):
    emulator = CommercetoolsEmulator(
        project_key=PK, client_id=CLIENT_ID, client_secret=SECRET, clock=clock, fail_rate=1.0, seed=7
    )
    emulator.add_product(key="mug-01")
    with httpx.Client(transport=httpx.WSGITransport(app=emulator), base_url="http://ct.test") as http:
        api = Api(http, fetch_token(http).json()["access_token"])  # token calls are never faulted
        responses = [api.get("/products/key=mug-01") for _ in range(30)]
    assert {r.status_code for r in responses} == {429, 502, 503}
    assert all(r.headers["Retry-After"] == "1" for r in responses if r.status_code == 429)
    emulator.fail_rate = 0.0
    assert emulator.requests[0].status == 200


def test_commercetools_latency_is_added_to_api_calls(api, emulator):
    emulator.latency_s = 0.05
    started = time.monotonic()
    api.get("/reviews")
    assert time.monotonic() - started >= 0.05


def test_commercetools_unknown_endpoint_is_resource_not_found(api):
    assert error(api.get("/carts"))["code"] == "ResourceNotFound"
    assert api.request("DELETE", "/types/key=x").status_code == 405


# --- over real loopback ---------------------------------------------------------------------------


def test_commercetools_over_loopback_concurrent_creates_make_one_review(emulator, setup):
    emulator.latency_s = 0.01
    with serve_wsgi(emulator) as base_url:
        assert base_url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=base_url, timeout=10) as http:
            api = Api(http, fetch_token(http).json()["access_token"])
            barrier = threading.Barrier(8)

            def create(_: int) -> int:
                barrier.wait()
                return api.post("/reviews", draft()).status_code

            with ThreadPoolExecutor(max_workers=8) as pool:
                statuses = sorted(pool.map(create, range(8)))
    assert statuses == [201] + [400] * 7
    assert len(emulator.reviews) == 1 and emulator.writes_for("acme-rev-12345") == 1


# --- reviewRatingStatistics (§1.2, §1.8): computed from the reviews included in statistics ------------


def _numbered(n: int, **fields: Any) -> dict[str, Any]:
    return draft(key=f"rev-{n}", uniquenessValue=f"u-{n}", **fields)


def test_commercetools_product_without_counted_reviews_has_no_rating_statistics(api, setup):
    api.create(**_numbered(1, state={"typeId": "state", "key": "pending"}))  # a state without the role
    product = api.get("/products/key=mug-01").json()
    assert "reviewRatingStatistics" not in product


def test_commercetools_rating_statistics_count_only_reviews_included_in_statistics(api, emulator, setup, product):
    emulator.add_product(key="kettle-01")
    for n, rating in enumerate((5, 4, 4)):
        api.create(**_numbered(n, rating=rating))  # no state: counted by default
    api.create(**_numbered(3, rating=1, state={"typeId": "state", "key": "pending"}))
    api.create(**_numbered(4, rating=2, target={"typeId": "product", "key": "kettle-01"}))  # another product
    by_key = api.get("/products/key=mug-01").json()
    by_id = api.get(f"/products/{product['id']}").json()
    assert by_key["reviewRatingStatistics"] == by_id["reviewRatingStatistics"]
    assert by_key["reviewRatingStatistics"] == {
        "averageRating": 4.33333,  # rounded to 5 decimals
        "highestRating": 5,
        "lowestRating": 4,
        "count": 3,
        "ratingsDistribution": {"4": 2, "5": 1},  # only the ratings used
    }


def test_commercetools_rating_statistics_follow_rating_edits_and_state_transitions(api, setup):
    review = api.create(**_numbered(1, rating=5))
    other = api.create(**_numbered(2, rating=3))
    api.update(review, {"action": "setRating", "rating": 2})
    api.update(other, {"action": "transitionState", "state": {"typeId": "state", "key": "hidden"}, "force": True})
    stats = api.get("/products/key=mug-01").json()["reviewRatingStatistics"]
    assert (stats["count"], stats["averageRating"], stats["ratingsDistribution"]) == (1, 2, {"2": 1})
