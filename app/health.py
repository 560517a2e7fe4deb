"""`/healthz` (the process answers), `/readyz` (database reachable, schema at head), `/metrics`."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError

from app import db
from app.runtime import runtime

__all__ = ["bp"]

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    rt = runtime()
    try:
        current = db.current_revision(rt.engine)
    except SQLAlchemyError as exc:
        log.warning("readiness: database unreachable: %s", type(exc).__name__)
        return jsonify(status="unavailable", reason="database unreachable"), 503
    head = db.head_revision(rt.engine)
    if current != head:
        return jsonify(
            status="unavailable", reason="migrations pending: run `reviewbridge db upgrade`", current=current, head=head
        ), 503
    return jsonify(status="ready", revision=current)


@bp.get("/metrics")
def metrics():
    return Response(generate_latest(runtime().metrics.registry), content_type=CONTENT_TYPE_LATEST)
