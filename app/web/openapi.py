"""`GET /openapi.json`: the HTTP surface as an OpenAPI 3.1 document.

The admin API's part is generated from its routes' declarations (app/web/admin_api.py: spectree, and the
pydantic models of admin_api_inputs.py and admin_api_answers.py). The rest is `openapi.json`, written by
hand: the webhook, OAuth, health, metrics and admin page routes (HTML forms, declared nowhere else), the
document's info and tags, and the error answers every admin API route shares (401, 404 when the API is
off, 405, 413, 429), whose headers (WWW-Authenticate, Retry-After, Allow) spectree cannot declare.
tests/e2e/test_openapi.py checks that the document is valid and that its paths are exactly the app's
routes. It is put together once, when the blueprint is registered on an app, and served as it is. No
auth: the same routes answer 401 to anyone without the token.
"""

from __future__ import annotations

import copy
import json
from importlib import resources

from flask import Blueprint, Response, current_app

from app.web import admin_api

__all__ = ["bp", "document"]

bp = Blueprint("openapi", __name__)

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


def _methods(item: dict) -> list[str]:
    return [method for method in _METHODS if method in item]
