"""How errors become answers: JSON everywhere, 401 for rejected webhooks, never a 500 for input."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException, InternalServerError

from app.bootstrap import current_services
from app.core import queue_store
from connectors.base import StaleRequest, TargetError, UnknownKey, WebhookRejected

__all__ = ["init_app"]

log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    app.register_error_handler(WebhookRejected, _webhook_rejected)
    app.register_error_handler(TargetError, _platform_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)


def _webhook_rejected(exc: WebhookRejected):
    reason = "stale" if isinstance(exc, StaleRequest) else "unknown_key" if isinstance(exc, UnknownKey) else "signature"
    services = current_services()
    services.metrics.webhooks.labels(exc.source, "rejected").inc()
    queue_store.count_rejection(services.engine, exc.source, reason, now=services.clock())
    log.warning("rejected %s webhook: %s", exc.source, exc.reason)
    return jsonify(error="unauthorized", message=exc.reason), 401


def _platform_error(exc: TargetError):
    """A platform call made while answering (an OAuth code exchange) failed: say so, as a gateway would."""
    log.warning("platform call failed while answering: %s", exc)
    return jsonify(error="platform_error", message=str(exc)), 502


def _http_error(exc: HTTPException):
    if exc.code == 413:
        current_services().metrics.webhooks.labels("any", "too_large").inc()
    response = jsonify(error=(exc.name or "error").lower().replace(" ", "_"), message=exc.description)
    response.status_code = exc.code or 500
    for name in ("Allow", "Retry-After"):
        value = exc.get_response().headers.get(name)
        if value:
            response.headers[name] = value
    return response


def _unexpected(exc: Exception):
    log.exception("unexpected error while answering a request")
    return _http_error(InternalServerError())
