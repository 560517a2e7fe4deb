"""GET /openapi.json: the document is valid OpenAPI 3.1 and says what the app really does.

Its admin API part is generated from the routes' declarations (app/web/admin_api.py); the rest is written
by hand (app/web/openapi.json). These tests hold both to the code: the paths and methods are exactly the
app's routes, every admin API path is a declared one, the examples fit their schemas, and real answers
(and refusals of bad input) fit them too. GET /admin/api-docs shows it to a signed-in operator.
"""

from __future__ import annotations

import json
import re
from importlib import resources

import pytest

from app import create_app
from app.bootstrap import build_worker, services_of
from app.core.models import EventStatus
from app.web import openapi
from app.web.security_headers import ADMIN_HEADERS
from connectors.base import EventKind
from connectors.trustoo import TOPICS as TRUSTOO_TOPICS
from connectors.trustoo import TrustooWebhookVerifier
from tests.builders import trustoo_body, trustoo_headers, trustoo_review
from tests.e2e.admin_page_helpers import sign_in
from tests.e2e.conftest import ADMIN_TOKEN as TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}
_AUTOMATIC = {"HEAD", "OPTIONS"}  # Flask adds them to every rule; the document leaves them out
_OPERATIONS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@pytest.fixture
def document(admin_app) -> dict:
    with admin_app.app_context():
        return openapi.document()


@pytest.fixture(scope="module")
def written() -> dict:
    return json.loads(resources.files("app.web").joinpath("openapi.json").read_bytes())


def _openapi_path(flask_rule: str) -> str:
    """`/admin/api/events/<int:event_id>` → `/admin/api/events/{event_id}`."""
    return re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", flask_rule)


def _resolve(document: dict, node: dict) -> dict:
    """An OpenAPI object, following `$ref`s into the document (`#/components/...`)."""
    while isinstance(node, dict) and "$ref" in node:
        target = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _validator(document: dict, schema: dict):
    """A JSON Schema 2020-12 validator (OpenAPI 3.1's dialect) whose `#/components/...` refs reach the document's."""
    from jsonschema import Draft202012Validator

    wrapper = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": document["components"],
        "allOf": [schema],
    }
    return Draft202012Validator(wrapper, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _assert_fits(document: dict, schema: dict, value, where: str) -> None:
    errors = sorted(_validator(document, schema).iter_errors(value), key=lambda e: list(e.absolute_path))
    assert not errors, f"{where}: " + "; ".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])


def _response_doc(document: dict, path: str, method: str, status: int) -> dict:
    responses = document["paths"][path][method]["responses"]
    assert str(status) in responses, f"{method.upper()} {path} answered {status}, which the document does not list"
    return _resolve(document, responses[str(status)])


def _assert_answer_documented(document: dict, path: str, method: str, response) -> None:
    """The answer's status is documented for the operation, and its body fits the documented schema."""
    documented = _response_doc(document, path, method, response.status_code)
    content = documented.get("content")
    if not content:
        assert response.data == b"", f"{method.upper()} {path}: documented without a body, answered {response.data!r}"
        return
    mimetype = response.mimetype
    assert mimetype in content, f"{method.upper()} {path} answered {mimetype}, documented {sorted(content)}"
    if mimetype == "application/json":
        _assert_fits(
            document,
            content[mimetype]["schema"],
            response.get_json(),
            f"{method.upper()} {path} {response.status_code}",
        )


def _media_examples(document: dict):
    """Every (where, schema, example value) the document holds: media types, parameters and headers."""

    def media(where, media_type):
        schema = media_type.get("schema")
        if schema is None:
            return
        if "example" in media_type:
            yield where, schema, media_type["example"]
        for name, example in media_type.get("examples", {}).items():
            yield f"{where} example {name}", schema, _resolve(document, example)["value"]

    def responses(where, responses_node):
        for status, response in responses_node.items():
            response = _resolve(document, response)
            for media_name, media_type in response.get("content", {}).items():
                yield from media(f"{where} {status} {media_name}", media_type)
            for header_name, header in response.get("headers", {}).items():
                header = _resolve(document, header)
                if "example" in header:
                    yield f"{where} {status} header {header_name}", header["schema"], header["example"]

    for path, item in document["paths"].items():
        for method in _OPERATIONS:
            operation = item.get(method)
            if operation is None:
                continue
            where = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                parameter = _resolve(document, parameter)
                if "example" in parameter:
                    yield f"{where} parameter {parameter['name']}", parameter["schema"], parameter["example"]
            body = _resolve(document, operation.get("requestBody", {}))
            for media_name, media_type in body.get("content", {}).items():
                yield from media(f"{where} body {media_name}", media_type)
            yield from responses(where, operation["responses"])
    yield from responses("components", document["components"].get("responses", {}))


# --- (a) served, and valid ------------------------------------------------------------------------


def test_openapi_document_without_credentials_is_served_as_json_and_is_valid_openapi_3_1(admin, document):
    from openapi_spec_validator import validate
    from openapi_spec_validator.validation import OpenAPIV31SpecValidator

    response = admin.get("/openapi.json")  # no Authorization: the document is public, even with the admin API on
    assert response.status_code == 200
    assert response.content_type == "application/json"
    served = response.get_json()
    assert served == document and served["openapi"].startswith("3.1.")
    validate(served, cls=OpenAPIV31SpecValidator)  # raises with the first problem it finds


def test_openapi_document_is_read_once_per_app(admin_app, monkeypatch):
    served = admin_app.test_client().get("/openapi.json").data
    monkeypatch.setattr(resources, "files", lambda *args: pytest.fail("the document was read again"))
    assert admin_app.test_client().get("/openapi.json").data == served


def test_openapi_examples_fit_their_schemas(document):
    checked = 0
    for where, schema, example in _media_examples(document):
        _assert_fits(document, schema, example, where)
        checked += 1
    assert checked > 50  # the walk found the examples (a broken walk would pass vacuously)


def test_openapi_enums_match_the_code(document):
    [topic] = [p for p in document["paths"]["/webhooks/trustoo/{topic}"]["post"]["parameters"] if p["in"] == "path"]
    assert topic["schema"]["enum"] == list(TRUSTOO_TOPICS)
    schemas = document["components"]["schemas"]
    assert schemas["EventStatus"]["enum"] == [status.value for status in EventStatus]
    declared_kind = _resolve(document, schemas["EventSummary"]["properties"]["kind"])
    assert declared_kind["enum"] == [kind.value for kind in EventKind]
    assert schemas["TrustooDelivery"]["properties"]["event_type"]["enum"] == list(TRUSTOO_TOPICS.values())


def test_openapi_declared_schema_examples_fit_their_schemas(document):
    checked = 0
    for name, schema in document["components"]["schemas"].items():
        for example in schema.get("examples", []):
            _assert_fits(document, {"$ref": f"#/components/schemas/{name}"}, example, f"schema {name}")
            checked += 1
        for field, declared in schema.get("properties", {}).items():
            for example in declared.get("examples", []):
                _assert_fits(document, declared, example, f"schema {name}.{field}")
                checked += 1
    assert checked >= 10  # the models' examples reached the document


@pytest.mark.parametrize("path", ["/webhooks/trustoo/{topic}", "/webhooks/trustoo"])
def test_openapi_trustoo_header_examples_sign_the_body_example_with_the_demo_token(document, path):
    operation = document["paths"][path]["post"]
    headers = {p["name"]: p["example"] for p in operation["parameters"] if p["in"] == "header"}
    body = json.dumps(
        operation["requestBody"]["content"]["application/json"]["examples"]["review_created"]["value"],
        separators=(",", ":"),
    ).encode()
    timestamp = int(headers["Open-Trustoo-Webhook-Timestamp"])
    verifier = TrustooWebhookVerifier({"demo-public-token": ["demo-private-token"]}, now=lambda: timestamp)
    assert verifier.verify(headers, body) == "demo-public-token"


# --- (b) the document's paths are exactly the app's routes ----------------------------------------


def test_openapi_paths_and_methods_match_the_app_routes_both_ways(admin_app, document):
    routes: dict[str, set[str]] = {}
    for rule in admin_app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        routes.setdefault(_openapi_path(rule.rule), set()).update(m.lower() for m in rule.methods - _AUTOMATIC)
    documented = {
        path: {method for method in item if method in _OPERATIONS} for path, item in document["paths"].items()
    }
    assert sorted(routes.keys() - documented.keys()) == [], "routes the document leaves out"
    assert sorted(documented.keys() - routes.keys()) == [], "documented paths the app does not have"
    assert {path: sorted(methods) for path, methods in documented.items()} == {
        path: sorted(methods) for path, methods in routes.items()
    }


def test_openapi_admin_api_paths_are_all_declared_on_the_routes_and_none_is_written_by_hand(admin_app, written):
    from app.web.admin_api import spec

    assert [path for path in written["paths"] if path.startswith("/admin/api/")] == []
    with admin_app.app_context():
        declared = spec.spec["paths"]
    api_routes = {_openapi_path(r.rule) for r in admin_app.url_map.iter_rules() if r.endpoint.startswith("admin_api.")}
    assert set(declared) == api_routes
    for path, item in declared.items():
        for method, operation in item.items():
            assert operation["operationId"].startswith("admin") and operation["summary"], f"{method} {path}"
            assert operation["tags"] == ["admin"], f"{method} {path}"


def test_openapi_admin_limit_bounds_are_the_ones_the_api_enforces(admin, document):
    [limit] = [p for p in document["paths"]["/admin/api/events"]["get"]["parameters"] if p["name"] == "limit"]
    low, high = limit["schema"]["minimum"], limit["schema"]["maximum"]
    for value, status in ((low, 200), (high, 200), (low - 1, 400), (high + 1, 400)):
        response = admin.get(f"/admin/api/events?limit={value}", headers=AUTH)
        assert response.status_code == status, value
        _assert_answer_documented(document, "/admin/api/events", "get", response)
    assert response.get_json()["message"] == f"limit: expected a whole number from {low} to {high}"


def test_openapi_admin_operations_need_the_bearer_token_and_no_others_do(document):
    scheme = document["components"]["securitySchemes"]["adminBearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for path, item in document["paths"].items():
        for method in (m for m in item if m in _OPERATIONS):
            security = item[method].get("security", document.get("security"))
            if path.startswith("/admin/api/"):
                assert security == [{"adminBearer": []}], f"{method.upper()} {path}"
                assert "401" in item[method]["responses"], f"{method.upper()} {path}"
            else:
                assert not security, f"{method.upper()} {path} is not behind the admin token"


# --- (c) real answers are the documented ones ------------------------------------------------------


@pytest.mark.parametrize("path", ["/webhooks/trustoo/{topic}", "/webhooks/trustoo"])
def test_openapi_signed_trustoo_delivery_answer_matches_the_documented_example(admin, document, path):
    operation = document["paths"][path]["post"]
    body_doc = operation["requestBody"]["content"]["application/json"]
    body = json.dumps(body_doc["examples"]["review_created"]["value"], separators=(",", ":")).encode()
    headers = trustoo_headers(body)
    documented_headers = {p["name"].lower() for p in operation["parameters"] if p["in"] == "header"}
    assert documented_headers == {name.lower() for name in headers} - {"content-type"}
    url = path.replace("{topic}", "review-created")

    response = admin.post(url, data=body, headers=headers)

    documented = operation["responses"]["200"]["content"]
    assert response.status_code == 200
    assert list(documented) == [response.mimetype] == ["application/json"]
    example = documented["application/json"]["example"]
    assert response.data == json.dumps(example, separators=(",", ":")).encode() == b'{"code":0,"message":"success"}'
    _assert_fits(document, documented["application/json"]["schema"], response.get_json(), f"POST {path} 200")


@pytest.mark.parametrize(
    ("path", "url", "headers", "status"),
    [
        ("/webhooks/trustoo/{topic}", "/webhooks/trustoo/review-created", {}, 401),
        ("/webhooks/trustoo/{topic}", "/webhooks/trustoo/review-moved", {}, 404),
        ("/webhooks/trustoo", "/webhooks/trustoo", {"Open-Trustoo-Webhook-Sign": "0" * 64}, 401),
        ("/webhooks/wix", "/webhooks/wix", {"Content-Type": "text/plain"}, 401),
    ],
)
def test_openapi_refused_webhook_answer_fits_the_documented_error(admin, document, path, url, headers, status):
    response = admin.post(url, data=b'{"list":[{"id":1}]}', headers=headers)
    assert response.status_code == status
    _assert_answer_documented(document, path, "post", response)


def test_openapi_webhook_too_large_and_wrong_method_fit_the_documented_errors(admin, admin_app, document):
    too_large = admin.post("/webhooks/trustoo/review-created", data=b"x" * (admin_app.config["MAX_CONTENT_LENGTH"] + 1))
    assert too_large.status_code == 413
    _assert_answer_documented(document, "/webhooks/trustoo/{topic}", "post", too_large)
    wrong_method = admin.get("/webhooks/trustoo/review-created")
    assert wrong_method.status_code == 405 and "POST" in wrong_method.headers["Allow"]
    _assert_answer_documented(document, "/webhooks/trustoo/{topic}", "post", wrong_method)


def test_openapi_operational_answers_fit_their_documented_schemas(admin, document):
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        response = admin.get(path)
        assert response.status_code == 200, path
        _assert_answer_documented(document, path, "get", response)
    off = admin.get("/oauth/trustoo/callback?code=x&state=y")  # OAuth platform mode is off in this app
    assert off.status_code == 404
    _assert_answer_documented(document, "/oauth/trustoo/callback", "get", off)


@pytest.mark.parametrize("query", ["error=access_denied", "code=x&state=forged", "code=x"])
def test_openapi_refused_oauth_callback_fits_the_documented_error(environ, document, query):
    platform = {k: v for k, v in environ.items() if k != "TRUSTOO_PUBLIC_TOKEN" and k != "TRUSTOO_PRIVATE_TOKEN"}
    app = create_app(
        platform | {"TRUSTOO_CLIENT_ID": "rb-platform-client", "TRUSTOO_CLIENT_SECRET": "rb-platform-secret-0123"}
    )
    try:
        response = app.test_client().get(f"/oauth/trustoo/callback?{query}")  # refused before Trustoo is called
    finally:
        services_of(app).engine.dispose()
    assert response.status_code == 400
    _assert_answer_documented(document, "/oauth/trustoo/callback", "get", response)


def test_openapi_admin_answers_fit_their_documented_schemas(admin, admin_app, document):
    review = trustoo_review()
    body = trustoo_body(review)
    assert admin.post("/webhooks/trustoo/review-created", data=body, headers=trustoo_headers(body)).status_code == 200
    build_worker(services_of(admin_app)).drain()
    [listed] = admin.get("/admin/api/events", headers=AUTH).get_json()["events"]

    calls = [
        ("get", "/admin/api/status", "/admin/api/status", None, AUTH, 200),
        ("get", "/admin/api/events", "/admin/api/events?status=done&source=trustoo&limit=1", None, AUTH, 200),
        ("get", "/admin/api/events/{event_id}", f"/admin/api/events/{listed['id']}", None, AUTH, 200),
        ("get", "/admin/api/events/{event_id}", "/admin/api/events/999999", None, AUTH, 404),
        ("get", "/admin/api/dead-letters", "/admin/api/dead-letters?source=trustoo", None, AUTH, 200),
        ("get", "/admin/api/events", "/admin/api/events?limit=0", None, AUTH, 400),
        ("get", "/admin/api/status", "/admin/api/status", None, {}, 401),
        ("post", "/admin/api/events/replay", "/admin/api/events/replay", {"ids": [listed["id"]]}, AUTH, 200),
        ("post", "/admin/api/events/replay", "/admin/api/events/replay", {"ids": ["no-such-event"]}, AUTH, 404),
        (
            "post",
            "/admin/api/events/discard",
            "/admin/api/events/discard",
            {"ids": [listed["event_id"]], "reason": "a test review"},
            AUTH,
            200,
        ),
        ("post", "/admin/api/events/discard", "/admin/api/events/discard", {"ids": [listed["id"]]}, AUTH, 400),
        ("get", "/admin/api/events/count", "/admin/api/events/count?source=trustoo", None, AUTH, 200),
        ("get", "/admin/api/events/count", "/admin/api/events/count?until=soon", None, AUTH, 400),
        (
            "post",
            "/admin/api/events/replay",
            "/admin/api/events/replay",
            {"filter": {"status": "discarded"}, "up_to_id": listed["id"]},
            AUTH,
            200,
        ),
        ("post", "/admin/api/events/replay", "/admin/api/events/replay", {"filter": {}}, AUTH, 400),
        (
            "post",
            "/admin/api/events/discard",
            "/admin/api/events/discard",
            {"filter": {"source": "trustoo"}, "reason": "a test shop"},
            AUTH,
            200,
        ),
        ("post", "/admin/api/resyncs", "/admin/api/resyncs", {}, AUTH, 400),
        ("post", "/admin/api/resyncs", "/admin/api/resyncs", {"source": "trustoo", "dry_run": True}, AUTH, 202),
    ]
    for method, path, url, payload, headers, status in calls:
        response = (
            getattr(admin, method)(url, json=payload, headers=headers)
            if payload is not None
            else getattr(admin, method)(url, headers=headers)
        )
        assert response.status_code == status, (method, url, response.get_json())
        _assert_answer_documented(document, path, method, response)
        if status == 401:
            assert response.headers["WWW-Authenticate"] == "Bearer"

    queued = admin.get("/admin/api/resyncs?source=trustoo", headers=AUTH)
    _assert_answer_documented(document, "/admin/api/resyncs", "get", queued)
    build_worker(services_of(admin_app)).run_queued_runs()
    response = admin.get("/admin/api/resyncs?source=trustoo", headers=AUTH)
    _assert_answer_documented(document, "/admin/api/resyncs", "get", response)
    assert [entry["state"] for entry in response.get_json()["resyncs"]] == ["done"], "the finished dry run is listed"


def test_openapi_admin_api_off_answers_fit_the_documented_error(client, document):
    response = client.get("/admin/api/events", headers=AUTH)  # the `client` app has no ADMIN_TOKEN
    assert response.status_code == 404
    _assert_answer_documented(document, "/admin/api/events", "get", response)


# --- (d) the page ----------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, AUTH])
def test_openapi_docs_page_without_an_admin_session_redirects_to_the_sign_in(admin, headers):
    response = admin.get("/admin/api-docs", headers=headers)  # the API's bearer token is no page session
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/login?next=/admin/api-docs"
    assert response.headers["Content-Security-Policy"] == ADMIN_HEADERS["Content-Security-Policy"]


def test_openapi_docs_page_signed_in_lists_every_operation_and_runs_no_script(admin, admin_app, document):
    sign_in(admin)

    response = admin.get("/admin/api-docs")

    assert response.status_code == 200 and response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"] == ADMIN_HEADERS["Content-Security-Policy"]
    page = response.get_data(as_text=True)
    assert "<script" not in page and " style=" not in page  # the policy would refuse both
    for path, item in document["paths"].items():
        for method in (m for m in item if m in _OPERATIONS):
            assert f"<code>{method.upper()} {path}</code>" in page, f"{method.upper()} {path}"
            assert f'id="{item[method]["operationId"]}"' in page
    for name in document["components"]["schemas"]:
        assert f'id="schema-{name}"' in page
    assert 'href="/openapi.json"' in page
