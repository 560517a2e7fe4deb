"""`/healthz` (the process answers), `/readyz` (database reachable, schema at head), `/metrics`."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError

from app.bootstrap import current_services
from app.core import db

__all__ = ["bp"]

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    services = current_services()
    try:
        current = db.current_revision(services.engine)
    except SQLAlchemyError as exc:
        log.warning("readiness: database unreachable: %s", type(exc).__name__)
        return jsonify(status="unavailable", reason="database unreachable"), 503
    head = db.head_revision(services.engine)
    if current != head:
        return jsonify(
            status="unavailable", reason="migrations pending: run `reviewbridge db upgrade`", current=current, head=head
        ), 503
    return jsonify(status="ready", revision=current)


@bp.get("/metrics")
def metrics():
    return Response(generate_latest(current_services().metrics.registry), content_type=CONTENT_TYPE_LATEST)
