"""Events: the filtered list, one event (replay, discard), dead letters by reason, events waiting for a product."""

from __future__ import annotations

import json

from flask import abort, flash, redirect, request, url_for

from app.bootstrap import current_services
from app.core import events, products, queue
from app.core.redaction import redact, secrets_of
from app.web import params
from app.web.admin_page.auth import bp, render

__all__ = ["dead_letters", "discard", "event", "events_page", "map_product", "replay", "replay_dead", "waiting"]

_PAGE = 50
_MAX_ID = 2**63 - 1  # BIGINT: no row has a larger id


@bp.get("/events")
def events_page():
    services, args = current_services(), request.args
    where = params.event_filter(args)
    before = params.whole(args, "before", None, 1, _MAX_ID)
    rows = events.find(services.engine, where, limit=_PAGE + 1, before_id=before)
    query = params.filter_fields(args)
    next_url = url_for(".events_page", **query, before=rows[_PAGE - 1]["id"]) if len(rows) > _PAGE else None
    return render(
        "events.html",
        events=rows[:_PAGE],
        filters=args,
        query=query,
        filtered=not where.empty,
        statuses=params.STATUSES,
        accounts=services.account_labels(),
        next_url=next_url,
    )


@bp.get("/events/<int:event_id>")
def event(event_id: int):
    services = current_services()
    found = events.get(services.engine, event_id) if event_id <= _MAX_ID else None
    if found is None:
        abort(404, description=f"There is no event with id {event_id}.")
    shown = redact(found, secrets_of(services.settings))
    payload = (
        json.dumps(shown["payload"], indent=2, ensure_ascii=False, sort_keys=True)
        if not isinstance(shown["payload"], str)
        else shown["payload"]
    )
    return render(
        "event.html",
        event=shown,
        payload=payload,
        key=events.commercetools_key(found),
        accounts=services.account_labels(),
    )


@bp.post("/events/<int:event_id>/replay")
def replay(event_id: int):
    services = current_services()
    if queue.replay(services.engine, [event_id], now=services.clock()):
        flash(f"Event {event_id} is queued again: the worker will process it shortly.", "success")
    else:
        flash(f"Event {event_id} was not replayed: it does not exist or a worker is processing it now.", "error")
    return redirect(url_for(".event", event_id=event_id))


@bp.post("/events/<int:event_id>/discard")
def discard(event_id: int):
    services = current_services()
    reason = params.text(request.form, "reason")
    if reason is None or not reason.strip():
        abort(400, description="reason: say why this event needs nothing more; it is kept with the event.")
    if queue.discard(services.engine, [event_id], reason, now=services.clock()):
        flash(f"Event {event_id} is discarded: {reason.strip()}", "success")
    else:
        flash(f"Event {event_id} was not discarded: it does not exist or a worker is processing it now.", "error")
    return redirect(url_for(".event", event_id=event_id))


@bp.get("/dead-letters")
def dead_letters():
    services = current_services()
    groups = events.dead_letter_groups(services.engine)
    return render("dead_letters.html", groups=groups, accounts=services.account_labels())


@bp.post("/dead-letters/replay")
def replay_dead():
    services = current_services()
    reason = params.text(request.form, "reason")
    if reason is None:
        abort(400, description="reason: name the group of dead letters to replay.")
    replayed = queue.replay_dead_by_reason(services.engine, reason, now=services.clock())
    flash(f"{replayed} dead letter(s) queued again.", "success" if replayed else "error")
    return redirect(url_for(".dead_letters"))


@bp.get("/waiting")
def waiting():
    services = current_services()
    groups = events.waiting_by_product(services.engine)
    return render("waiting.html", groups=groups, accounts=services.account_labels())


@bp.post("/waiting/map")
def map_product():
    services, form = current_services(), request.form
    fields = {
        name: params.text(form, name)
        for name in ("source", "account", "source_product_id", "product_key", "product_id")
    }
    try:
        released = products.map_one(services.engine, **fields, now=services.clock())
    except products.MappingError as exc:
        abort(400, description=f"{exc}.")
    target = fields["product_key"] or fields["product_id"]
    flash(
        f"Mapped {fields['source']} product {fields['source_product_id']} to commercetools product {target}: "
        f"{released} waiting event(s) released.",
        "success",
    )
    return redirect(url_for(".waiting"))
