"""The admin JSON API: what `reviewbridge status|replay|discard|resync` do, over HTTP.

Every route needs `Authorization: Bearer <ADMIN_TOKEN>`; without ADMIN_TOKEN the whole API answers 404.
Errors are JSON `{"error": ..., "message": ...}`: 400 names the bad field, 401 comes with
`WWW-Authenticate: Bearer`, 404 for an unknown event, 409 for a resync that is queued or running already,
429 (`too_many_attempts`, with Retry-After) while the client's address waits after wrong tokens.
Paths are under `/admin/api`:

| Route                  | Input                                               | Answer                                |
|------------------------|-----------------------------------------------------|---------------------------------------|
| `GET /status`          |                                                     | as `reviewbridge status --json`       |
| `GET /events`          | ?status source account since until q limit before   | `{events, next_before}`               |
| `GET /events/count`    | ?status source account since until q                | `{matching, by_status, up_to_id, …}`  |
| `GET /events/<id>`     |                                                     | the event, its attempts and ledger    |
| `GET /dead-letters`    | ?source limit before                                | as `/events`, plus `by_reason`        |
| `POST /events/replay`  | `{ids}`, `{dead: true, source, since, error}` or `{filter, up_to_id}` | `{replayed: n}`     |
| `POST /events/discard` | `{ids, reason}` or `{filter, up_to_id, reason}`     | `{discarded: n}`                      |
| `POST /resyncs`        | `{source, account, since, until, dry_run, restart}` | 202 `{started, progress}`             |
| `GET /resyncs`         | ?source account                                     | `{resyncs: [...]}`                    |

- Lists are newest first. `limit` is 1-500 (default 50); for the next page pass `before=<next_before>`,
  which is null on the last page. `since`/`until` are ISO 8601 (a naive time is UTC). `q` searches the
  event id, the review or order id, the topic and the last error.
- `by_reason` counts every dead letter (of `source`, if given) by the first 120 characters of its error.
- `ids` holds row ids (the numbers lists show) or platform event ids; 404 when none matches. Replaying is
  safe: a done event changes nothing unless the target drifted. A discard needs a reason, which is kept.
- Bulk, as the admin page does it: `GET /events/count` says how many events the filter matches, by
  status, how many a replay or a discard would move (`replayable`, `discardable`; those `in_flight`
  are left to their worker) and `up_to_id`, the newest of them. `{filter: {status, source, account,
  since, until, q}, up_to_id}` then replays or discards those events and no later one (without
  `up_to_id`: every event matching now); the filter needs one field at least, and the answer adds
  `in_flight`. A `replayed`/`discarded` below the count means the queue moved in between.
- `POST /resyncs` queues a resync of `account`, or of every account of `source` (one run each, all or none),
  and answers at once; a worker process executes it (`reviewbridge worker`, or the one `serve` embeds).
  `progress` is the `GET /resyncs` URL to poll. Only `source` is required.
- `GET /resyncs` lists the resync checkpoints, each as `{source, account, running, state, dry_run, position,
  counts, requested_at, started_at, updated_at, finished_at, error, run_id}`; `counts` is `{"counts": {...},
  "parked": {...}}`. The newest resync run of a pair (started from any process) is the newest word on it:
  `state` is queued, running, abandoned (its worker stopped beating; another takes it over), done or failed,
  `running` is true until it is done or failed, `error` says why it failed, and `counts` and the times come
  from it (a dry run writes no checkpoint). A pair with only a checkpoint (a CLI resync) has `state` null.
"""

from __future__ import annotations

import dataclasses
import hmac
import logging
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, abort, jsonify, request, url_for
from sqlalchemy import Engine

from app.bootstrap import current_services
from app.core import bulk, events, queue, runs
from app.core import resync as resyncing
from app.core.models import EventStatus
from app.core.redaction import redact, secrets_of
from app.core.status import read_status
from app.web import sign_in_limit
from app.web.params import FILTER_FIELDS
from app.web.params import event_filter as _event_filter
from app.web.params import flag as _flag
from app.web.params import search as _search
from app.web.params import text as _text
from app.web.params import when as _when
from app.web.params import whole as _whole

__all__ = ["bp"]

bp = Blueprint("admin_api", __name__, url_prefix="/admin/api")
log = logging.getLogger(__name__)

_MAX_LIMIT = 500
_MAX_IDS = 1000
_MAX_ID = 2**63 - 1  # BIGINT: no row has a larger id, and both databases refuse one in a query


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
def status():
    services = current_services()
    return jsonify(read_status(services.engine, now=services.clock()))


@bp.get("/events")
def list_events():
    return jsonify(_page(_event_filter(request.args)))


@bp.get("/events/count")
def count_events():
    count = bulk.count(current_services().engine, _event_filter(request.args))
    return jsonify(
        matching=count.matching,
        by_status=count.by_status,
        up_to_id=count.where.up_to_id,
        replayable=count.replayable,
        discardable=count.discardable,
        in_flight=count.in_flight,
    )


@bp.get("/events/<int:event_id>")
def show_event(event_id: int):
    services = current_services()
    event = events.get(services.engine, event_id) if event_id <= _MAX_ID else None
    if event is None:
        abort(404, description=f"no event with id {event_id}")
    return jsonify(redact(event, secrets_of(services.settings)))  # as the admin page and the CLI show it


@bp.get("/dead-letters")
def dead_letters():
    source = _text(request.args, "source")
    page = _page(events.EventFilter(status=EventStatus.DEAD.value, source=source))
    return jsonify(page | {"by_reason": events.dead_by_reason(current_services().engine, source)})


@bp.post("/events/replay")
def replay():
    services, body = current_services(), _body()
    dead = _flag(body, "dead")
    if dead + ("ids" in body) + ("filter" in body) != 1:
        abort(400, description='ids, dead, filter: name the events in ids, send {"dead": true}, or a filter (one)')
    if "filter" in body:
        outcome = bulk.act(services.engine, "replay", _bulk_filter(services.engine, body), now=services.clock())
        return jsonify(replayed=outcome.done, in_flight=outcome.in_flight)
    if dead:
        where = events.EventFilter(
            status=EventStatus.DEAD.value,
            source=_text(body, "source"),
            since=_when(body, "since"),
            error=_search(body, "error"),
        )
        return jsonify(replayed=queue.replay_matching(services.engine, where, now=services.clock()))
    return jsonify(replayed=queue.replay(services.engine, _event_ids(services.engine, body), now=services.clock()))


@bp.post("/events/discard")
def discard():
    services, body = current_services(), _body()
    if ("ids" in body) == ("filter" in body):
        abort(400, description="ids, filter: name the events in ids, or send a filter (not both)")
    reason = _text(body, "reason")
    if reason is None or not reason.strip():
        abort(400, description="reason: say why these events need nothing more")
    if "filter" in body:
        where = _bulk_filter(services.engine, body)
        outcome = bulk.act(services.engine, "discard", where, reason=reason, now=services.clock())
        return jsonify(discarded=outcome.done, in_flight=outcome.in_flight)
    return jsonify(
        discarded=queue.discard(services.engine, _event_ids(services.engine, body), reason, now=services.clock())
    )


@bp.post("/resyncs")
def start_resyncs():
    services, body = current_services(), _body()
    source, account = _text(body, "source"), _text(body, "account")
    try:
        _, accounts = runs.resync_plan(services, source, account)
    except runs.Refused as exc:
        abort(400, description=str(exc))
    options = {
        "since": _when(body, "since"),
        "until": _when(body, "until"),
        "dry_run": _flag(body, "dry_run"),
        "restart": _flag(body, "restart"),
    }
    try:
        runs.request(services.engine, runs.RESYNC, source, accounts, options, now=services.clock())
    except runs.Busy as exc:
        abort(409, description=f"a resync of {source} {', '.join(exc.accounts)} is queued or running already")
    return jsonify(
        started=[{"source": source, "account": name} for name in accounts],
        progress=url_for(".list_resyncs", source=source),
    ), 202


@bp.get("/resyncs")
def list_resyncs():
    source, account = _text(request.args, "source"), _text(request.args, "account")
    services = current_services()
    rows = resyncing.checkpoints(services.engine, source=source, account=account)
    return jsonify(
        resyncs=runs.describe_resyncs(services.engine, rows, source=source, account=account, now=services.clock())
    )


# --- input ----------------------------------------------------------------------------------------


def _page(where: events.EventFilter) -> dict:
    """One page, newest first: one row more than asked says whether another page follows."""
    limit, before = _whole(request.args, "limit", 50, 1, _MAX_LIMIT), _whole(request.args, "before", None, 1, _MAX_ID)
    rows = events.find(current_services().engine, where, limit=limit + 1, before_id=before)
    return {"events": rows[:limit], "next_before": rows[limit - 1]["id"] if len(rows) > limit else None}


def _body() -> dict:
    try:
        body = request.get_json(force=True, silent=True)  # any Content-Type: curl users forget it
    except RecursionError:
        abort(400, description="body: nested too deeply")
    if not isinstance(body, dict):
        abort(400, description="body: send a JSON object")
    return body


def _bulk_filter(engine: Engine, body: Mapping[str, Any]) -> events.EventFilter:
    """The events a bulk replay or discard takes: those `filter` matches (one field at least, and no
    field it does not know: a misspelt one would widen it), up to `up_to_id` or the newest now."""
    given = body.get("filter")
    if not isinstance(given, dict) or not given.keys() <= set(FILTER_FIELDS):
        abort(400, description=f"filter: expected an object with some of {', '.join(FILTER_FIELDS)}")
    where = _event_filter(given)
    if where.empty:
        abort(400, description=f"filter: name at least one of {', '.join(FILTER_FIELDS)}")
    up_to_id = body.get("up_to_id")
    if up_to_id is None:
        return bulk.count(engine, where).where
    if not isinstance(up_to_id, int) or isinstance(up_to_id, bool) or not 0 <= up_to_id <= _MAX_ID:
        abort(400, description=f"up_to_id: expected a whole number from 0 to {_MAX_ID} (as /events/count gave it)")
    return dataclasses.replace(where, up_to_id=up_to_id)


def _event_ids(engine: Engine, body: Mapping[str, Any]) -> list[int]:
    """Row ids from the body's `ids`: row ids (numbers) or platform event ids (text)."""
    ids = body.get("ids")
    if not isinstance(ids, list) or not ids or len(ids) > _MAX_IDS:
        abort(400, description=f"ids: expected a list of 1 to {_MAX_IDS} event ids")
    references = [_reference(item) for item in ids]
    if None in references:
        abort(400, description="ids: each must be a row id (a positive number) or a platform event id (text)")
    found = events.resolve_ids(engine, references)
    if not found:
        abort(404, description="ids: no event matches")
    return found


def _reference(item: Any) -> str | None:
    """What resolve_ids reads: digits are a row id (so they must fit one), other text a platform event id."""
    if isinstance(item, int) and not isinstance(item, bool):
        return str(item) if 0 < item <= _MAX_ID else None
    if not isinstance(item, str) or not item.strip() or "\x00" in item:
        return None
    text = item.strip()
    if text.isdigit() and not (text.isascii() and int(text) <= _MAX_ID):
        return None
    return text
