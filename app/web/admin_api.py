"""The admin JSON API: what `reviewbridge status|replay|discard|resync` do, over HTTP.

Every route needs `Authorization: Bearer <ADMIN_TOKEN>`; without ADMIN_TOKEN the whole API answers 404.
Errors are JSON `{"error": ..., "message": ...}`: 400 names the bad field, 401 comes with
`WWW-Authenticate: Bearer`, 404 for an unknown event, 409 for a resync that is queued or running already,
429 (`too_many_attempts`, with Retry-After) while the client's address waits after wrong tokens.

Each route declares what it reads and answers with spectree (`@spec.validate`, the view's `query`/`json`
annotations, the models of admin_api_inputs.py and admin_api_answers.py): the OpenAPI document's admin
part is generated from these declarations (app/web/openapi.py), and the README's "Admin API" section
says the same in prose. The bearer check runs first, then the declared input is read field by field by
params.py's readers (the first wrong field answers 400), then the view.
"""

from __future__ import annotations

import dataclasses
import hmac
import logging
from typing import Any

from flask import Blueprint, abort, jsonify, request, url_for
from pydantic import ValidationError
from spectree import Response, SpecTree
from spectree.plugins.base import Context
from spectree.plugins.flask_plugin import FlaskPlugin
from sqlalchemy import Engine

from app.bootstrap import current_services
from app.core import bulk, events, queue, runs
from app.core import resync as resyncing
from app.core.models import EventStatus
from app.core.redaction import redact, secrets_of
from app.core.status import read_status
from app.web import params, sign_in_limit
from app.web.admin_api_answers import (
    DeadLetterPage,
    DiscardResult,
    Error,
    EventCount,
    EventDetail,
    EventPage,
    ReplayResult,
    ResyncList,
    ResyncStarted,
    Status,
)
from app.web.admin_api_inputs import (
    MAX_ID,
    CountQuery,
    DeadLettersQuery,
    DiscardByIds,
    DiscardRequest,
    EventFilterBody,
    EventsQuery,
    ReplayByFilter,
    ReplayByIds,
    ReplayRequest,
    ResyncRequest,
    ResyncsQuery,
)

__all__ = ["ReadAsAlways", "bp", "spec"]

bp = Blueprint("admin_api", __name__, url_prefix="/admin/api")
log = logging.getLogger(__name__)


class ReadAsAlways(FlaskPlugin):
    """spectree's Flask plugin, reading requests as the admin API always has and passing answers on as
    the views made them:
    - the query string: the first value of each field (as `request.args.get`), never a list;
    - the body: a JSON object whatever its Content-Type (params.json_object: 400 "body: …" otherwise);
    - answers are not validated again on each request: tests/e2e/test_openapi.py holds them to the models.
    """

    def request_validation(self, request, query, json, form, headers, cookies) -> None:
        request.context = Context(
            query.model_validate(request.args.to_dict()) if query else None,
            json.model_validate(params.json_object(request)) if json else None,
            None,
            None,
            None,
        )

    def validate_response(self, resp, resp_model, skip_validation, force_resp_serialize):
        return super().validate_response(resp, resp_model, True, force_resp_serialize)


def _refused(req, resp, error: ValidationError | None, instance, model_adapter) -> None:
    """A value the readers let through but the declared type refuses (none should): 400 naming the field."""
    if error is not None:
        first = error.errors()[0]
        abort(400, description=f"{'.'.join(str(part) for part in first['loc']) or 'body'}: {first['msg']}")


#: The admin API's declarations: each view's inputs, answers, operation id and tag.
spec = SpecTree(
    backend=ReadAsAlways,
    mode="strict",
    before=_refused,
    validation_error_status=400,
    validation_error_model=Error,
    naming_strategy=lambda model: model.__name__,
    nested_naming_strategy=lambda _parent, child: child,
    security_schemes=[
        {
            "name": "adminBearer",
            "data": {
                "type": "http",
                "scheme": "bearer",
                "description": "`Authorization: Bearer <ADMIN_TOKEN>`, compared in constant time. Without "
                "`ADMIN_TOKEN` set the whole admin API answers 404.",
            },
        }
    ],
)
_BEARER = {"adminBearer": []}
_BAD = (Error, "A field is wrong; the message names it.")
_NO_MATCH = (Error, "No event matches `ids` (or the admin API is off).")


def _declare(operation_id: str, **answers: Any):
    return spec.validate(resp=Response(**answers), tags=["admin"], security=_BEARER, operation_id=operation_id)


@bp.before_request
def _authorize():
    services = current_services()
    expected = services.settings.admin_token
    if not expected:
        abort(404, description="the admin API is off: set ADMIN_TOKEN")
    try:
        standing = sign_in_limit.admit(services)
    except sign_in_limit.TooManyAttempts as exc:
        return jsonify(error="too_many_attempts", message=str(exc)), 429, {"Retry-After": exc.retry_after}
    sent = request.headers.get("Authorization", "")
    scheme, _, given = sent.partition(" ")
    # compare_digest on bytes: constant time, and no TypeError on non-ASCII input.
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected.encode()):
        sign_in_limit.succeeded(services, standing)
        return None
    if sent:  # a credential, and a wrong one: it counts towards the sign-in limit (a missing one does not)
        sign_in_limit.failed(services)
    log.warning(
        "admin API: refused %s %s (%s)",
        request.method,
        request.path,
        "wrong token" if scheme.lower() == "bearer" else "no bearer token",
    )
    response = jsonify(error="unauthorized", message="send the header Authorization: Bearer <ADMIN_TOKEN>")
    return response, 401, {"WWW-Authenticate": "Bearer"}


# --- views ----------------------------------------------------------------------------------------


@bp.get("/status")
@_declare("adminStatus", HTTP_200=(Status, "The status."))
def status():
    """Queue and ledger at a glance (as `reviewbridge status --json`)"""
    services = current_services()
    return jsonify(read_status(services.engine, now=services.clock()))


@bp.get("/events")
@_declare("adminListEvents", HTTP_200=(EventPage, "One page."), HTTP_400=_BAD)
def list_events(query: EventsQuery):
    """Find events, newest first"""
    return jsonify(_page(query.where(), query.limit, query.before))


@bp.get("/events/count")
@_declare("adminCountEvents", HTTP_200=(EventCount, "The count."), HTTP_400=_BAD)
def count_events(query: CountQuery):
    """Count the events a filter matches, before a bulk replay or discard

    Pass `up_to_id` with the same filter to `POST /events/replay` or `/events/discard` to act on these
    events and no later one.
    """
    count = bulk.count(current_services().engine, query.where())
    return jsonify(
        matching=count.matching,
        by_status=count.by_status,
        up_to_id=count.where.up_to_id,
        replayable=count.replayable,
        discardable=count.discardable,
        in_flight=count.in_flight,
    )


@bp.get("/events/<int:event_id>")
@_declare(
    "adminShowEvent", HTTP_200=(EventDetail, "The event."), HTTP_404=(Error, "No such event (or the admin API is off).")
)
def show_event(event_id: int):
    """One event with its payload, attempts and ledger"""
    services = current_services()
    event = events.get(services.engine, event_id) if event_id <= MAX_ID else None
    if event is None:
        abort(404, description=f"no event with id {event_id}")
    return jsonify(redact(event, secrets_of(services.settings)))  # as the admin page and the CLI show it


@bp.get("/dead-letters")
@_declare(
    "adminDeadLetters",
    HTTP_200=(DeadLetterPage, "One page, and the counts of every dead letter by reason."),
    HTTP_400=_BAD,
)
def dead_letters(query: DeadLettersQuery):
    """Dead letters, newest first, counted by reason"""
    page = _page(events.EventFilter(status=EventStatus.DEAD.value, source=query.source), query.limit, query.before)
    return jsonify(page | {"by_reason": events.dead_by_reason(current_services().engine, query.source)})


@bp.post("/events/replay")
@_declare(
    "adminReplay",
    HTTP_200=(ReplayResult, "How many events are due again (and, by filter, how many were in flight)."),
    HTTP_400=_BAD,
    HTTP_404=_NO_MATCH,
)
def replay(json: ReplayRequest):
    """Process events again

    Safe: a done event changes nothing unless the target drifted. Events in flight are left alone.
    """
    services, body = current_services(), json.root
    if isinstance(body, ReplayByFilter):
        where = _bulk_filter(services.engine, body.filter, body.up_to_id)
        outcome = bulk.act(services.engine, "replay", where, now=services.clock())
        return jsonify(replayed=outcome.done, in_flight=outcome.in_flight)
    if isinstance(body, ReplayByIds):
        ids = _event_ids(services.engine, body.ids)
        return jsonify(replayed=queue.replay(services.engine, ids, now=services.clock()))
    where = events.EventFilter(status=EventStatus.DEAD.value, source=body.source, since=body.since, error=body.error)
    return jsonify(replayed=queue.replay_matching(services.engine, where, now=services.clock()))


@bp.post("/events/discard")
@_declare(
    "adminDiscard",
    HTTP_200=(DiscardResult, "How many events were discarded (those in flight are not; by filter, how many)."),
    HTTP_400=_BAD,
    HTTP_404=_NO_MATCH,
)
def discard(json: DiscardRequest):
    """Settle events that need nothing more, keeping the reason"""
    services, body = current_services(), json.root
    if isinstance(body, DiscardByIds):
        ids = _event_ids(services.engine, body.ids)
        return jsonify(discarded=queue.discard(services.engine, ids, body.reason, now=services.clock()))
    where = _bulk_filter(services.engine, body.filter, body.up_to_id)
    outcome = bulk.act(services.engine, "discard", where, reason=body.reason, now=services.clock())
    return jsonify(discarded=outcome.done, in_flight=outcome.in_flight)


@bp.post("/resyncs")
@_declare(
    "adminStartResyncs",
    HTTP_202=(ResyncStarted, "Queued."),
    HTTP_400=_BAD,
    HTTP_409=(Error, "A resync of one of these accounts is queued or running already (started from any process)."),
)
def start_resyncs(json: ResyncRequest):
    """Queue a resync of an account, or of every account of a source, for the worker

    One run per account, all or none, stored in the database; a worker process executes it. Answers at
    once; poll `progress`.
    """
    services, source = current_services(), json.source
    try:
        _, accounts = runs.resync_plan(services, source, json.account)
    except runs.Refused as exc:
        abort(400, description=str(exc))
    options = {"since": json.since, "until": json.until, "dry_run": json.dry_run, "restart": json.restart}
    try:
        runs.request(services.engine, runs.RESYNC, source, accounts, options, now=services.clock())
    except runs.Busy as exc:
        abort(409, description=f"a resync of {source} {', '.join(exc.accounts)} is queued or running already")
    return jsonify(
        started=[{"source": source, "account": name} for name in accounts],
        progress=url_for(".list_resyncs", source=source),
    ), 202


@bp.get("/resyncs")
@_declare("adminListResyncs", HTTP_200=(ResyncList, "One entry per (source, account)."))
def list_resyncs(query: ResyncsQuery):
    """Resync checkpoints and resync runs"""
    services = current_services()
    rows = resyncing.checkpoints(services.engine, source=query.source, account=query.account)
    described = runs.describe_resyncs(
        services.engine, rows, source=query.source, account=query.account, now=services.clock()
    )
    return jsonify(resyncs=described)


# --- what needs the database --------------------------------------------------------------------


def _page(where: events.EventFilter, limit: int, before: int | None) -> dict:
    """One page, newest first: one row more than asked says whether another page follows."""
    rows = events.find(current_services().engine, where, limit=limit + 1, before_id=before)
    return {"events": rows[:limit], "next_before": rows[limit - 1]["id"] if len(rows) > limit else None}


def _bulk_filter(engine: Engine, given: EventFilterBody, up_to_id: int | None) -> events.EventFilter:
    """The events a bulk replay or discard takes: those the filter matches, up to `up_to_id` or the newest now."""
    where = given.where()
    if up_to_id is None:
        return bulk.count(engine, where).where
    return dataclasses.replace(where, up_to_id=up_to_id)


def _event_ids(engine: Engine, references: list[Any]) -> list[int]:
    """Row ids of the references (row ids, or platform event ids); 404 when none matches."""
    found = events.resolve_ids(engine, [str(reference) for reference in references])
    if not found:
        abort(404, description="ids: no event matches")
    return found
