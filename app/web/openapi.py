"""`GET /openapi.json`: the HTTP surface as an OpenAPI 3.1 document.

The document is `app/openapi.json`, written by hand and kept next to the code it describes;
tests/e2e/test_openapi.py checks that it is valid and that its paths are exactly the app's routes.
It is read once, when the blueprint is registered on an app, and served as it is. No auth.
"""

from __future__ import annotations

from importlib import resources

from flask import Blueprint, Response, current_app

__all__ = ["bp"]

bp = Blueprint("openapi", __name__)

_EXTENSION = "reviewbridge.openapi"


@bp.record_once
def _load(state) -> None:
    state.app.extensions[_EXTENSION] = resources.files("app.web").joinpath("openapi.json").read_bytes()


@bp.get("/openapi.json")
def document():
    return Response(current_app.extensions[_EXTENSION], status=200, mimetype="application/json")
