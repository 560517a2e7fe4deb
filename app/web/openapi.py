"""The HTTP surface as an OpenAPI 3.1 document: `GET /openapi.json`, and `GET /admin/api-docs` as a page.

The admin API's part is generated from its routes' declarations (app/web/admin_api.py: spectree, and the
pydantic models of admin_api_inputs.py and admin_api_answers.py). The rest is `openapi.json`, written by
hand: the webhook, OAuth, health, metrics and admin page routes (HTML forms, declared nowhere else), the
document's info and tags, and the error answers every admin API route shares (401, 404 when the API is
off, 405, 413, 429), whose headers (WWW-Authenticate, Retry-After, Allow) spectree cannot declare.
tests/e2e/test_openapi.py checks that the document is valid and that its paths are exactly the app's
routes. It is put together once, when the blueprint is registered on an app, and served as it is. No
auth: the same routes answer 401 to anyone without the token.

The page lists every operation, its parameters, body and answers, and every schema, rendered on the
server: it runs no script, so the admin page's Content-Security-Policy holds for it as it is. It is a
view of the admin page's blueprint, behind its sign-in like every other page there.
"""

from __future__ import annotations

import copy
import json
from importlib import resources
from typing import Any

from flask import Blueprint, Response, current_app, render_template

from app.web import admin_api
from app.web.admin_page import bp as admin_page

__all__ = ["bp", "document"]

bp = Blueprint("openapi", __name__, template_folder="templates")

_EXTENSION = "reviewbridge.openapi"
_METHODS = ("get", "put", "post", "delete", "patch")
#: Answers every admin API route gives, described once in openapi.json (components/responses).
_SHARED_ANSWERS = {
    "401": "AdminUnauthorized",
    "404": "AdminOff",
    "405": "MethodNotAllowed",
    "429": "AdminTooManyAttempts",
}


@bp.record_once
def _load(state) -> None:
    written = json.loads(resources.files("app.web").joinpath("openapi.json").read_bytes())
    with state.app.app_context():  # spectree reads the routes from the app's url_map
        declared = copy.deepcopy(admin_api.spec.spec)
    whole = _assemble(written, declared)
    state.app.extensions[_EXTENSION] = (whole, json.dumps(whole, ensure_ascii=False, indent=1).encode())


def document() -> dict:
    """The app's document (read only: it is the one served)."""
    return current_app.extensions[_EXTENSION][0]


@bp.get("/openapi.json")
def serve():
    return Response(current_app.extensions[_EXTENSION][1], status=200, mimetype="application/json")


@admin_page.get("/api-docs")
def api_docs():
    whole = document()
    operations = [
        _operation(path, method, item[method]) for path, item in whole["paths"].items() for method in _methods(item)
    ]
    tags = [tag for tag in whole["tags"] if any(tag["name"] in op["tags"] for op in operations)]
    schemas = [_schema_rows(name, schema) for name, schema in whole["components"]["schemas"].items()]
    return render_template("openapi/docs.html", info=whole["info"], tags=tags, operations=operations, schemas=schemas)


# --- putting the document together --------------------------------------------------------------------


def _assemble(written: dict, declared: dict) -> dict:
    """openapi.json with the admin API's declared paths and schemas added, before the admin page's paths."""
    whole = copy.deepcopy(written)
    for item in declared["paths"].values():
        for method in _methods(item):
            _add_shared_answers(item[method], method)
    paths = whole["paths"]
    whole["paths"] = {
        **{path: item for path, item in paths.items() if not path.startswith("/admin")},
        **declared["paths"],
        **{path: item for path, item in paths.items() if path.startswith("/admin")},
    }
    for part in ("schemas", "securitySchemes"):
        ours, theirs = whole["components"].setdefault(part, {}), declared["components"].get(part, {})
        if ours.keys() & theirs.keys():  # one name, one schema: the written part must not shadow a declared one
            raise RuntimeError(f"openapi.json declares {sorted(ours.keys() & theirs.keys())} too: keep one")
        ours.update(theirs)
    return whole


def _add_shared_answers(operation: dict, method: str) -> None:
    responses = operation["responses"]
    if not operation.get("parameters") and "requestBody" not in operation:
        responses.pop("400", None)  # spectree adds its 400 to every route; one that reads nothing has none
    for status, name in _SHARED_ANSWERS.items():
        responses.setdefault(status, {"$ref": f"#/components/responses/{name}"})
    if method == "post":
        responses.setdefault("413", {"$ref": "#/components/responses/TooLarge"})
    operation["responses"] = dict(sorted(responses.items()))
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "path" and parameter["schema"].get("format") == "int32":
            parameter["schema"]["format"] = "int64"  # row ids are BIGINT (Flask's int converter has no bound)


# --- the page -------------------------------------------------------------------------------------------


def _methods(item: dict) -> list[str]:
    return [method for method in _METHODS if method in item]


def _operation(path: str, method: str, operation: dict) -> dict:
    body = _resolve(operation.get("requestBody", {}))
    body_schema = body.get("content", {}).get("application/json", {}).get("schema")
    return {
        "id": operation.get("operationId") or f"{method}-{path}",
        "method": method.upper(),
        "path": path,
        "tags": operation.get("tags", []),
        "summary": operation.get("summary", ""),
        "description": operation.get("description", ""),
        "bearer": bool(operation.get("security")),
        "parameters": [
            {
                "name": p["name"],
                "in": p["in"],
                "type": _type(p.get("schema", {})),
                "required": p.get("required", False),
                "description": p.get("description") or p.get("schema", {}).get("description", ""),
            }
            for p in map(_resolve, operation.get("parameters", []))
        ],
        "body": _type(body_schema) if body_schema else None,
        "answers": [
            {"status": status, "description": answer.get("description", ""), "types": _answer_types(answer)}
            for status, answer in ((status, _resolve(answer)) for status, answer in operation["responses"].items())
        ],
    }


def _answer_types(answer: dict) -> list[str]:
    return [f"{media}: {_type(body.get('schema', {}))}" for media, body in answer.get("content", {}).items()]


def _schema_rows(name: str, schema: dict) -> dict:
    required = set(schema.get("required", []))
    return {
        "name": name,
        "description": schema.get("description", ""),
        "type": None if "properties" in schema else _type(schema),
        "properties": [
            {
                "name": key,
                "type": _type(value),
                "required": key in required,
                "description": value.get("description", ""),
            }
            for key, value in schema.get("properties", {}).items()
        ],
    }


def _resolve(node: dict) -> dict:
    while "$ref" in node:
        target: Any = current_app.extensions[_EXTENSION][0]
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _type(schema: dict) -> str:
    """A schema in a few words: `EventPage`, `integer (1 to 500)`, `list of EventReference`, `string or null`."""
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    for combined in ("oneOf", "anyOf"):
        if combined in schema:
            return " or ".join(_type(part) for part in schema[combined])
    if "allOf" in schema:
        return " and ".join(_type(part) for part in schema["allOf"])
    if "enum" in schema:
        return "one of " + ", ".join(json.dumps(value) for value in schema["enum"])
    if "const" in schema:
        return json.dumps(schema["const"])
    kind = schema.get("type", "any")
    if isinstance(kind, list):
        return " or ".join(_type({**schema, "type": one}) for one in kind)
    if kind == "array":
        return f"list of {_type(schema.get('items', {}))}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"map of {_type(schema['additionalProperties'])}"
    bounds = [schema[key] for key in ("minimum", "maximum") if key in schema]
    if len(bounds) == 2:
        return f"{kind} ({bounds[0]} to {bounds[1]})"
    return f"{kind} ({schema['format']})" if "format" in schema else kind
