"""`POST /webhooks/<source>`: raw bytes in, one intake call, the platform's own success answer out."""

from __future__ import annotations

from flask import Blueprint, Response, abort, request

from app.bootstrap import current_services
from app.core import intake
from connectors.trustoo import TOPICS as TRUSTOO_TOPICS

__all__ = ["bp"]

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")

# Trustoo counts any other answer as a failure and delivers again (docs/platforms/trustoo.md §1.7).
TRUSTOO_SUCCESS = b'{"code":0,"message":"success"}'


@bp.post("/trustoo", defaults={"topic": None})
@bp.post("/trustoo/<topic>")
def trustoo(topic: str | None):
    if topic is not None and topic not in TRUSTOO_TOPICS:
        abort(404, description=f"unknown Trustoo topic {topic!r}; use one of {', '.join(TRUSTOO_TOPICS)}")
    services = current_services()
    body = request.get_data(cache=False)  # over WEBHOOK_MAX_BYTES: werkzeug raises 413 here
    source = services.webhook_source("trustoo")
    receipt = intake.receive(
        services.inbox, source, TRUSTOO_TOPICS.get(topic), request.headers, body, now=services.clock()
    )
    services.record_delivery("trustoo", receipt)
    return Response(TRUSTOO_SUCCESS, status=200, mimetype="application/json")


@bp.post("/wix")
def wix():
    """The whole body is a signed JWT (docs/platforms/wix.md §1.1); Wix wants an empty 200 well within 1.25 s."""
    services = current_services()
    body = request.get_data(cache=False)
    receipt = intake.receive(
        services.inbox, services.webhook_source("wix"), None, request.headers, body, now=services.clock()
    )
    services.record_delivery("wix", receipt)
    return Response(b"", status=200)
