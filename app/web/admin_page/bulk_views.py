"""Every event the events filter matches: replay or discard them all after a count, or export them.

GET /events/replay (or /discard) counts what the filter matches and asks; its form POSTs the same
filter with the newest counted id and the count, so the action takes no event received after the
count, and the result says so when the queue moved in between (app/core/bulk.py). The export
streams the matching events as CSV or JSON (app/core/export.py).
"""

from __future__ import annotations

import dataclasses

from flask import Response, abort, flash, redirect, request, stream_with_context, url_for

from app.bootstrap import current_services
from app.core import bulk, events, export
from app.core.bulk import Action, Outcome
from app.core.redaction import secrets_of
from app.web import params
from app.web.admin_page.auth import bp, render

__all__ = ["confirm_discard", "confirm_replay", "discard_matching", "export_events", "replay_matching"]

_MAX_ID = 2**63 - 1
_SAMPLE = 10
_FORMATS = {"csv": "text/csv", "json": "application/json"}


@bp.get("/events/replay")
def confirm_replay():
    return _confirm("replay")


@bp.get("/events/discard")
def confirm_discard():
    return _confirm("discard")


@bp.post("/events/replay")
def replay_matching():
    return _act("replay")


@bp.post("/events/discard")
def discard_matching():
    return _act("discard")


@bp.get("/events/export")
def export_events():
    services = current_services()
    kind = request.args.get("format") or "csv"
    if kind not in _FORMATS:
        abort(400, description=f"format: expected {' or '.join(_FORMATS)}")
    labels = {pair: known.label for pair, known in services.account_labels().items()}
    found = export.rows(
        services.engine, params.event_filter(request.args), labels=labels, secrets=secrets_of(services.settings)
    )
    chunks = export.as_csv(found) if kind == "csv" else export.as_json(found)
    filename = f"reviewbridge-events-{services.clock():%Y%m%dT%H%M%SZ}.{kind}"
    return Response(
        stream_with_context(chunks),
        mimetype=_FORMATS[kind],
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


def _confirm(action: Action):
    services, args = current_services(), request.args
    where = _narrowing(args)
    count = bulk.count(services.engine, where)
    sample = events.find(services.engine, count.where, limit=_SAMPLE)
    return render(
        "bulk.html",
        action=action,
        count=count,
        sample=sample,
        where=where,
        query=params.filter_fields(args),
        accounts=services.account_labels(),
    )


def _act(action: Action):
    services, form = current_services(), request.form
    where = _narrowing(form)
    up_to_id = params.whole(form, "up_to_id", None, 0, _MAX_ID)
    expected = params.whole(form, "expected", None, 0, _MAX_ID)
    if up_to_id is None or expected is None:
        abort(400, description="up_to_id, expected: send the form of the count page, which carries both.")
    reason = (params.text(form, "reason") or "").strip()
    if action == "discard" and not reason:
        abort(400, description="reason: say why these events need nothing more; it is kept with each of them.")
    counted = dataclasses.replace(where, up_to_id=up_to_id)
    outcome = bulk.act(services.engine, action, counted, reason=reason, now=services.clock())
    flash(_said(outcome, expected, reason), "success" if outcome.done else "error")
    return redirect(url_for(".events_page", **params.filter_fields(form)))


def _narrowing(values) -> events.EventFilter:
    """The filter of a bulk action: one criterion at least, as the CLI asks, so that no slip acts on
    the whole inbox."""
    where = params.event_filter(values)
    if where.empty:
        abort(400, description="filter: choose at least a status, source, account, time or text first.")
    return where


def _said(outcome: Outcome, expected: int, reason: str) -> str:
    done = f"{outcome.done} event(s) " + ("queued again" if outcome.action == "replay" else f"discarded ({reason})")
    said = [f"{done}."]
    if outcome.done != expected:
        said.append(
            f"The count said {expected}: the queue changed since (a worker took or settled some of them, "
            f"or someone else acted on them)."
        )
    if outcome.in_flight:
        said.append(f"{outcome.in_flight} event(s) being processed were left to their worker.")
    return " ".join(said)
