"""A faithful commercetools emulator (auth + Reviews, and the Products, Types and States around them).

A WSGI app: drive it in-process with `httpx.WSGITransport(app=emulator)`, over loopback with
`tests.fakes.serving.serve_wsgi(emulator)`, or alone from a shell::

    python -m tests.fakes.commercetools --port 9001 [--latency-ms 50] [--fail-rate 0.3] [--product mug-01]

Unlike the PyPI mock (docs/platforms/commercetools.md §3) it behaves like the real API (§1, §2):
OAuth client credentials over HTTP Basic, Bearer tokens that expire by the injected clock, scopes,
real error bodies, strict ReviewDraft validation, uniqueness of `key` and `uniquenessValue`, all 11
review update actions, and query predicates. The rules live in `commercetools_model.py`; this module
is the HTTP layer, fault injection (`inject`, `fail_rate`, `latency_s`) and the request log.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import copy
import json
import random
import re
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from werkzeug.wrappers import Request, Response

from tests.fakes.commercetools_model import (
    ApiError,
    Project,
    expand_review,
    invalid_input,
    invalid_json,
    not_found,
    query,
)
from tests.fakes.faults import FaultSchedule

__all__ = ["CommercetoolsEmulator", "LoggedRequest"]

_WRITE_METHODS = ("POST", "DELETE")
_READ_METHODS = ("GET", "HEAD")
#: resource path segment → the scope family it needs (manage_<x> implies view_<x>)
_SCOPE_FAMILY = {
    "reviews": "products",
    "products": "products",
    "types": "types",
    "states": "states",
    "channels": "channels",
}
_ROUTES = {  # resource → (collection methods, item methods)
    "reviews": (("GET", "HEAD", "POST"), ("GET", "HEAD", "POST", "DELETE")),
    "products": (("GET", "HEAD"), ("GET", "HEAD")),
    "channels": (("GET", "HEAD"), ("GET", "HEAD")),
    "types": (("GET", "HEAD", "POST"), ("GET", "HEAD", "POST")),
    "states": (("GET", "HEAD", "POST"), ("GET", "HEAD")),
}
_INVALID_CLIENT = "Please provide valid client credentials using HTTP Basic Authentication."
_FAULT_BODIES = {
    400: ("InvalidInput", "Invalid input."),
    404: ("ResourceNotFound", "The Resource was not found."),
    429: ("TooManyRequests", "Too many requests. Please retry later."),
    500: ("General", "Write operations are temporarily unavailable."),
    502: ("General", "Bad Gateway"),
    503: ("OverCapacity", "The service is currently over capacity. Please retry."),
    504: ("General", "Gateway Timeout"),
}


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    status: int


@dataclass
class _Fault:
    status: int
    times: int
    method: str | None = None
    path_contains: str | None = None
    retry_after: float | str | None = None
    body: Any = None
    after_apply: bool = False
    timeout_s: float = 5.0

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method) and (
            self.path_contains is None or self.path_contains in path
        )


@dataclass
class _Token:
    expires_at: float
    scopes: tuple[str, ...]


class CommercetoolsEmulator:
    def __init__(
        self,
        project_key: str = "reviewbridge-test",
        client_id: str = "ct-client",
        client_secret: str = "ct-secret-0123456789",
        token_ttl_s: float = 172800,
        clock: Callable[[], float] = time.time,
        latency_s: float = 0.0,
        fail_rate: float = 0.0,
        seed: int | None = None,
    ):
        self.project_key = project_key
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_ttl_s = token_ttl_s
        self.clock = clock
        self.latency_s = latency_s
        self.fail_rate = fail_rate
        self._rng = random.Random(seed)
        self._lock = threading.RLock()
        self._project = Project(clock=clock, client_id=client_id)
        self._tokens: dict[str, _Token] = {}
        self._faults: FaultSchedule[_Fault] = FaultSchedule()
        self._writes: Counter[str] = Counter()
        self.requests: list[LoggedRequest] = []

    # --- the Python-side API ------------------------------------------------------------------

    def add_product(self, key: str | None = None, id: str | None = None) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._project.add_product(key, id))

    def add_channel(self, key: str, id: str | None = None) -> dict[str, Any]:
        """A channel, e.g. the one store reviews (no product) are attached to."""
        with self._lock:
            return copy.deepcopy(self._project.add_channel(key, id))

    def add_customer(self, key: str | None = None, id: str | None = None) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._project.add_customer(key, id))

    def add_type(
        self,
        key: str,
        fields: dict[str, str] | list[dict[str, Any]],
        *,
        resource_type_ids: tuple[str, ...] = ("review",),
        name: str | None = None,
    ) -> dict[str, Any]:
        """A Custom Type; `fields` is a TypeDraft's fieldDefinitions, or {name: "String" | "Boolean" | …}."""
        if isinstance(fields, dict):
            fields = [
                {
                    "name": n,
                    "label": {"en": n},
                    "required": False,
                    "type": {"name": "Set", "elementType": {"name": t[4:-1]}} if t.startswith("Set<") else {"name": t},
                }
                for n, t in fields.items()
            ]
        draft = {
            "key": key,
            "name": {"en": name or key},
            "resourceTypeIds": list(resource_type_ids),
            "fieldDefinitions": fields,
        }
        with self._lock:
            return copy.deepcopy(self._project.create_type(draft))

    def add_state(
        self,
        key: str,
        *,
        initial: bool = True,
        roles: tuple[str, ...] = (),
        transitions: list[str] | None = None,
        state_type: str = "ReviewState",
    ) -> dict[str, Any]:
        """A State; `transitions` are the keys of existing States (None: any transition is allowed)."""
        draft: dict[str, Any] = {"key": key, "type": state_type, "initial": initial, "roles": list(roles)}
        if transitions is not None:
            draft["transitions"] = [{"typeId": "state", "key": k} for k in transitions]
        with self._lock:
            return copy.deepcopy(self._project.create_state(draft))

    @property
    def reviews(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._project.reviews)

    @property
    def products(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._project.products)

    @property
    def types(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._project.types)

    @property
    def states(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._project.states)

    def review_by_key(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            return copy.deepcopy(self._project.find("reviews", "key", key))

    def writes_for(self, key: str) -> int:
        """Applied create/update/delete requests that touched the review with this key (before or after)."""
        with self._lock:
            return self._writes[key]

    def inject(
        self,
        status: int = 503,
        *,
        times: int = 1,
        method: str | None = None,
        path_contains: str | None = None,
        retry_after: float | str | None = None,
        body: Any = None,
        after_apply: bool = False,
        timeout_s: float = 5.0,
    ) -> None:
        with self._lock:
            self._faults.add(_Fault(status, times, method, path_contains, retry_after, body, after_apply, timeout_s))

    def issue_token(self, scope: str | None = None) -> str:
        """A valid access token without an HTTP round trip (scope: space-separated, default manage_project)."""
        with self._lock:
            token = secrets.token_urlsafe(24)
            scopes = tuple(scope.split()) if scope else (f"manage_project:{self.project_key}",)
            self._tokens[token] = _Token(self.clock() + self.token_ttl_s, scopes)
            return token

    def expire_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    def reset(self) -> None:
        """Forget all data (reviews, products, types, states, customers), the log and the faults.

        Issued tokens and the settings (credentials, latency_s, fail_rate) stay."""
        with self._lock:
            self._project.clear()
            self._faults.clear()
            self._writes.clear()
            self.requests.clear()

    # --- WSGI -----------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]):
        request = Request(environ)
        raw = request.get_data(cache=True)
        if request.path == "/oauth/token":
            with self._lock:
                response = self._token_endpoint(request, raw)
        elif request.path.startswith("/oauth/"):  # the auth host: no other endpoint is emulated
            error = ApiError(
                404,
                "ResourceNotFound",
                f"The endpoint '{request.path}' does not exist on the auth "
                "host (the token endpoint is exactly /oauth/token).",
            )
            response = _json_response(404, error.body())
        else:
            response = self._api_call(request, raw)
        response.headers["X-Correlation-ID"] = f"projects-{uuid.uuid4()}"
        with self._lock:
            self.requests.append(
                LoggedRequest(
                    request.method,
                    request.path,
                    request.args.to_dict(flat=False),
                    _logged_body(raw),
                    response.status_code,
                )
            )
        return response(environ, start_response)

    def _api_call(self, request: Request, raw: bytes) -> Response:
        if self.latency_s > 0:
            time.sleep(self.latency_s)
        with self._lock:
            fault = self._take_fault(request)
            if fault is None or fault.after_apply:
                response = self._handle(request, raw)  # an after_apply fault's reply is lost below
            if fault is not None:
                response = self._fault_response(fault, request)
        if fault is not None and fault.status == 0:
            time.sleep(fault.timeout_s)  # "hang, then the gateway gives up": outside the lock
        return response

    # --- faults -----------------------------------------------------------------------------------

    def _take_fault(self, request: Request) -> _Fault | None:
        scheduled = self._faults.take(lambda fault: fault.matches(request.method, request.path))
        if scheduled is not None:
            return scheduled
        if self.fail_rate > 0 and self._rng.random() < self.fail_rate:
            status = self._rng.choice((503, 502, 429))
            write = request.method in _WRITE_METHODS
            return _Fault(
                status, 1, retry_after=1 if status == 429 else None, after_apply=write and self._rng.random() < 0.5
            )
        return None

    def _fault_response(self, fault: _Fault, request: Request) -> Response:
        status = fault.status or 504  # 0: a timeout, answered as the gateway's 504
        headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
        if fault.body is not None:
            if isinstance(fault.body, (dict, list)):
                response = _json_response(status, fault.body)
            else:
                response = Response(fault.body, status, content_type="text/html; charset=utf-8")
        else:
            response = _json_response(status, self._fault_error(status, request).body())
        response.headers.update(headers)
        return response

    def _fault_error(self, status: int, request: Request) -> ApiError:
        if status == 401:
            return _invalid_token()
        if status == 403:
            return _insufficient_scope("manage_project")
        if status == 409:
            review = self._review_for_path(request.path)
            version = review["version"] if review else 1
            return ApiError(
                409, "ConcurrentModification", "Version mismatch. Concurrent modification.", currentVersion=version
            )
        code, message = _FAULT_BODIES.get(status, ("General", "An unexpected error occurred."))
        return ApiError(status, code, message)

    def _review_for_path(self, path: str) -> dict[str, Any] | None:
        parts = path.split("/", 3)
        if len(parts) < 4 or parts[2] != "reviews" or not parts[3]:
            return None
        how, value = ("key", parts[3][4:]) if parts[3].startswith("key=") else ("id", parts[3])
        return self._project.find("reviews", how, value)

    # --- OAuth ------------------------------------------------------------------------------------

    def _token_endpoint(self, request: Request, raw: bytes) -> Response:
        try:
            if request.method != "POST":
                raise ApiError(
                    405, "invalid_request", "The token endpoint only accepts POST.", top={"error": "invalid_request"}
                )
            self._check_client(request.headers.get("Authorization", ""))
            form = {**request.args.to_dict(), **{k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}}
            grant_type = form.get("grant_type")
            if not grant_type:
                raise _oauth_error(400, "invalid_request", "Missing required parameter: grant_type.")
            if grant_type != "client_credentials":
                raise _oauth_error(400, "unsupported_grant_type", f"Unsupported grant type '{grant_type}'.")
            scopes = tuple(form.get("scope", "").split())
            pattern = re.compile(rf"[a-z][a-z_]*:{re.escape(self.project_key)}")
            if any(not pattern.fullmatch(scope) for scope in scopes):
                raise _oauth_error(400, "invalid_scope", "Malformed parameter: scope: Invalid scope.")
        except ApiError as error:
            return _json_response(error.status, error.body())
        token = self.issue_token(" ".join(scopes) or None)
        granted = " ".join(self._tokens[token].scopes)
        return _json_response(
            200, {"access_token": token, "expires_in": int(self.token_ttl_s), "scope": granted, "token_type": "Bearer"}
        )

    def _check_client(self, header: str) -> None:
        scheme, _, encoded = header.partition(" ")
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        client_id, colon, secret = decoded.partition(":")  # the first colon only: secrets may hold ':'
        if scheme.lower() != "basic" or not colon or (client_id, secret) != (self.client_id, self.client_secret):
            raise _oauth_error(401, "invalid_client", _INVALID_CLIENT)

    def _scopes(self, request: Request) -> tuple[str, ...]:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        found = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if found is None or self.clock() >= found.expires_at:
            raise _invalid_token()
        return found.scopes

    # --- API routing ------------------------------------------------------------------------------

    def _handle(self, request: Request, raw: bytes) -> Response:
        """One API request → its response; successful writes are counted for writes_for()."""
        try:
            scopes = self._scopes(request)
            parts = request.path.split("/", 3)  # "", projectKey, resource, rest (the key may hold '/')
            if len(parts) < 3 or parts[2] not in _ROUTES:
                raise ApiError(404, "ResourceNotFound", f"The endpoint '{request.path}' does not exist.")
            if parts[1] != self.project_key:
                raise _insufficient_scope(f"view_products:{parts[1]}")
            resource, rest = parts[2], (parts[3] if len(parts) > 3 else "")
            allowed = _ROUTES[resource][1 if rest else 0]
            if request.method not in allowed:
                raise ApiError(
                    405,
                    "MethodNotAllowed",
                    f"Method {request.method} is not allowed on {request.path} (allowed: {', '.join(allowed)}).",
                )
            self._check_scope(scopes, resource, request.method)
            status, body, touched = self._dispatch(request, raw, resource, rest)
        except ApiError as error:
            return _json_response(error.status, error.body())
        for key in touched:
            self._writes[key] += 1
        if request.method == "HEAD":
            return Response(b"", status, content_type="application/json; charset=utf-8")
        return _json_response(status, body)

    def _check_scope(self, scopes: tuple[str, ...], resource: str, method: str) -> None:
        family = _SCOPE_FAMILY[resource]
        names = {scope.rpartition(":")[0] for scope in scopes if scope.endswith(f":{self.project_key}")}
        acceptable = {"manage_project", f"manage_{family}"}
        if method in _READ_METHODS:
            acceptable.add(f"view_{family}")
        if not names & acceptable:
            wanted = f"view_{family}" if method in _READ_METHODS else f"manage_{family}"
            raise _insufficient_scope(wanted)

    def _dispatch(self, request: Request, raw: bytes, resource: str, rest: str) -> tuple[int, Any, set[str]]:
        project = self._project
        method = request.method
        params = request.args.to_dict(flat=False)
        if not rest:
            if method == "POST":
                draft = _json_body(raw)
                if resource == "reviews":
                    review = project.create_review(draft)
                    return 201, copy.deepcopy(review), {review.get("key")} - {None}
                created = project.create_type(draft) if resource == "types" else project.create_state(draft)
                return 201, copy.deepcopy(created), set()
            render = self._renderer(resource, params)
            page = query(project, resource, params, render)
            if method == "HEAD" and not page["results"]:
                raise ApiError(404, "ResourceNotFound", "No resource matches the query.")
            return 200, page, set()
        how, value = ("key", rest[4:]) if rest.startswith("key=") else ("id", rest)
        if not value:
            raise not_found(how, value)
        found = project.get(resource, how, value)
        if method in _READ_METHODS:
            return 200, self._renderer(resource, params)(found), set()
        if method == "POST" and resource == "types":
            return 200, copy.deepcopy(project.update_type(found, _json_body(raw))), set()
        if method == "POST":
            before = found.get("key")
            updated = project.update_review(found, _json_body(raw))
            return 200, copy.deepcopy(updated), {before, updated.get("key")} - {None}
        deleted = project.delete_review(found, _version_param(params))
        return 200, copy.deepcopy(deleted), {deleted.get("key")} - {None}

    def _renderer(self, resource: str, params: dict[str, list[str]]) -> Callable[[dict[str, Any]], dict[str, Any]]:
        if resource == "products":
            return self._project.product_json
        if resource == "reviews":
            expand = params.get("expand") or []
            return lambda review: expand_review(self._project, review, expand)
        return copy.deepcopy


# --- helpers --------------------------------------------------------------------------------------


def _json_response(status: int, body: Any) -> Response:
    return Response(json.dumps(body), status, content_type="application/json; charset=utf-8")


def _oauth_error(status: int, code: str, description: str) -> ApiError:
    return ApiError(status, code, description, top={"error": code, "error_description": description})


def _invalid_token() -> ApiError:
    return ApiError(401, "invalid_token", "invalid_token", top={"error": "invalid_token"})


def _insufficient_scope(scope: str) -> ApiError:
    message = f"Insufficient scope. One of the following scopes is missing: {scope}"
    return ApiError(
        403, "insufficient_scope", message, top={"error": "insufficient_scope", "error_description": message}
    )


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _json_body(raw: bytes) -> Any:
    if not raw.strip():
        raise invalid_json("No content to map due to end-of-input (the request body is empty).")
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as error:
        raise invalid_json(f"Malformed JSON: {error}.") from None


def _version_param(params: dict[str, list[str]]) -> int:
    raw = (params.get("version") or [None])[-1]
    if raw is None:
        raise ApiError(400, "InvalidInput", "Missing required query parameter 'version'.")
    if not re.fullmatch(r"-?\d+", raw):
        raise invalid_input(f"Malformed parameter: version: '{raw}' is not an integer.")
    return int(raw)


def _logged_body(raw: bytes) -> Any:
    if not raw:
        return None
    text = raw.decode("utf-8", "replace")
    try:
        return json.loads(text)
    except ValueError:
        pass
    form = parse_qs(text, keep_blank_values=True)
    if form and all(re.fullmatch(r"[\w.\-]+", name) for name in form):
        return {name: values[-1] for name, values in form.items()}
    return text


# --- CLI ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.commercetools", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--project-key", default="reviewbridge-test")
    parser.add_argument("--client-id", default="ct-client")
    parser.add_argument("--client-secret", default="ct-secret-0123456789")
    parser.add_argument("--token-ttl-s", type=float, default=172800)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--product", action="append", default=[], metavar="KEY", help="create a product with this key (repeatable)"
    )
    args = parser.parse_args(argv)

    from tests.fakes.serving import serve_wsgi

    emulator = CommercetoolsEmulator(
        project_key=args.project_key,
        client_id=args.client_id,
        client_secret=args.client_secret,
        token_ttl_s=args.token_ttl_s,
        latency_s=args.latency_ms / 1000,
        fail_rate=args.fail_rate,
        seed=args.seed,
    )
    for key in args.product:
        emulator.add_product(key=key)
    with serve_wsgi(emulator, port=args.port, log_requests=True) as url:
        print(f"commercetools emulator on {url} (project {args.project_key}); Ctrl-C to stop", flush=True)
        print(f"export CTP_PROJECT_KEY={args.project_key}")
        print(f"export CTP_CLIENT_ID={args.client_id}")
        print(f"export CTP_CLIENT_SECRET={args.client_secret}")
        print(f"export CTP_API_URL={url}")
        print(f"export CTP_AUTH_URL={url}")
        print(f"export CTP_SCOPES=manage_project:{args.project_key}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopped", flush=True)


if __name__ == "__main__":
    main()
