"""The admin JSON API: what `reviewbridge status|replay|discard|resync` do, over HTTP.

Every route needs `Authorization: Bearer <ADMIN_TOKEN>`; without ADMIN_TOKEN the whole API answers 404.
Errors are JSON `{"error": ..., "message": ...}`: 400 names the bad field, 401 comes with
`WWW-Authenticate: Bearer`, 404 for an unknown event, 409 for a resync that is running already.
Paths are under `/admin/api`:

| Route                  | Input                                               | Answer                                |
|------------------------|-----------------------------------------------------|---------------------------------------|
| `GET /status`          |                                                     | as `reviewbridge status --json`       |
| `GET /events`          | ?status source account since until q limit before   | `{events, next_before}`               |
| `GET /events/<id>`     |                                                     | the event, its attempts and ledger    |
| `GET /dead-letters`    | ?source limit before                                | as `/events`, plus `by_reason`        |
| `POST /events/replay`  | `{ids}` or `{dead: true, source, since, error}`     | `{replayed: n}`                       |
| `POST /events/discard` | `{ids, reason}`                                     | `{discarded: n}`                      |
| `POST /resyncs`        | `{source, account, since, until, dry_run, restart}` | 202 `{started, progress}`             |
| `GET /resyncs`         | ?source account                                     | `{resyncs: [...]}`                    |

- Lists are newest first. `limit` is 1-500 (default 50); for the next page pass `before=<next_before>`,
  which is null on the last page. `since`/`until` are ISO 8601 (a naive time is UTC). `q` searches the
  event id, the review or order id, the topic and the last error.
- `by_reason` counts every dead letter (of `source`, if given) by the first 120 characters of its error.
- `ids` holds row ids (the numbers lists show) or platform event ids; 404 when none matches. Replaying is
  safe: a done event changes nothing unless the target drifted. A discard needs a reason, which is kept.
- `POST /resyncs` resyncs `account`, or every account of `source`, each in a background thread of this
  process (not across processes); `progress` is the `GET /resyncs` URL to poll. Only `source` is required.
- `GET /resyncs` lists the resync checkpoints, each as `{source, account, running, dry_run, position, counts,
  started_at, updated_at, finished_at, error}`; `counts` is `{"counts": {...}, "parked": {...}}`. A run this
  process started is the newest word on its pair: `running` and `error` (why it failed) come from it, and so
  do `counts` and the times (a dry run writes no checkpoint). A run of another process shows `running: false`.
"""

from __future__ import annotations

import hmac
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from flask import Blueprint, abort, current_app, jsonify, request, url_for
from sqlalchemy import Engine

from app import events
from app import resync as resyncing
from app.cli import build_worker
from app.models import EventStatus
from app.pipeline import Collaborators
from app.resync import ResyncReport, resync
from app.runtime import runtime
from app.status import read_status
from connectors.base import ReviewBridgeError, ReviewSource

__all__ = ["bp"]

bp = Blueprint("admin_api", __name__, url_prefix="/admin/api")
log = logging.getLogger(__name__)

_MAX_LIMIT = 500
_MAX_IDS = 1000
_MAX_ID = 2**63 - 1  # BIGINT: no row has a larger id, and both databases refuse one in a query
_STATUSES = tuple(status.value for status in EventStatus)
_RESYNCS_EXTENSION = "reviewbridge.admin_resyncs"


@bp.before_request
def _authorize():
    expected = runtime().settings.admin_token
    if not expected:
        abort(404, description="the admin API is off: set ADMIN_TOKEN")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # compare_digest on bytes: constant time, and no TypeError on non-ASCII input.
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected.encode()):
        return None
    log.warning("admin API: refused %s %s (%s)", request.method, request.path,
                "wrong token" if scheme.lower() == "bearer" else "no bearer token")
    response = jsonify(error="unauthorized", message="send the header Authorization: Bearer <ADMIN_TOKEN>")
    return response, 401, {"WWW-Authenticate": "Bearer"}


# --- views ----------------------------------------------------------------------------------------


@bp.get("/status")
def status():
    rt = runtime()
    return jsonify(read_status(rt.engine, now=rt.clock()))


@bp.get("/events")
def list_events():
    where = events.EventFilter(status=_status(request.args.get("status")), source=_text(request.args, "source"),
                               account=_text(request.args, "account"), since=_when(request.args, "since"),
                               until=_when(request.args, "until"), text=_text(request.args, "q"))
    return jsonify(_page(where))


@bp.get("/events/<int:event_id>")
def show_event(event_id: int):
    event = events.get(runtime().engine, event_id) if event_id <= _MAX_ID else None
    if event is None:
        abort(404, description=f"no event with id {event_id}")
    return jsonify(event)


@bp.get("/dead-letters")
def dead_letters():
    source = _text(request.args, "source")
    page = _page(events.EventFilter(status=EventStatus.DEAD.value, source=source))
    return jsonify(page | {"by_reason": events.dead_by_reason(runtime().engine, source)})


@bp.post("/events/replay")
def replay():
    rt, body = runtime(), _body()
    dead = _flag(body, "dead")
    if dead == ("ids" in body):
        abort(400, description='ids, dead: name the events in ids, or send {"dead": true} (not both)')
    if dead:
        where = events.EventFilter(status=EventStatus.DEAD.value, source=_text(body, "source"),
                                   since=_when(body, "since"), text=_text(body, "error"))
        return jsonify(replayed=events.replay_matching(rt.engine, where, now=rt.clock()))
    return jsonify(replayed=events.replay(rt.engine, _event_ids(rt.engine, body), now=rt.clock()))


@bp.post("/events/discard")
def discard():
    rt, body = runtime(), _body()
    reason = _text(body, "reason")
    if reason is None or not reason.strip():
        abort(400, description="reason: say why these events need nothing more")
    return jsonify(discarded=events.discard(rt.engine, _event_ids(rt.engine, body), reason, now=rt.clock()))


@bp.post("/resyncs")
def start_resyncs():
    rt, body = runtime(), _body()
    source = _text(body, "source")
    if source is None:
        abort(400, description="source: name the platform to read reviews from, e.g. trustoo")
    connector = rt.sources.get(source)
    if connector is None or not hasattr(connector, "iter_pages"):
        abort(400, description=f"source: cannot read reviews from {source!r}; sources: {', '.join(sorted(rt.sources))}")
    account = _text(body, "account")
    accounts = [account] if account else rt.accounts_of(source)
    if not accounts:
        abort(400, description=f"account: no {source} account is configured")
    options = {"since": _when(body, "since"), "until": _when(body, "until"), "dry_run": _flag(body, "dry_run"),
               "restart": _flag(body, "restart")}
    try:
        _resyncs().start(build_worker(rt).deps, connector, accounts, **options)
    except _Busy as exc:
        abort(409, description=f"a resync of {source} {', '.join(exc.accounts)} is running already")
    return jsonify(started=[{"source": source, "account": name} for name in accounts],
                   progress=url_for(".list_resyncs", source=source)), 202


@bp.get("/resyncs")
def list_resyncs():
    source, account = _text(request.args, "source"), _text(request.args, "account")
    rows = resyncing.checkpoints(runtime().engine, source=source, account=account)
    return jsonify(resyncs=_resyncs().describe(rows, source=source, account=account))


# --- input ----------------------------------------------------------------------------------------


def _page(where: events.EventFilter) -> dict:
    """One page, newest first: one row more than asked says whether another page follows."""
    limit, before = _whole(request.args, "limit", 50, 1, _MAX_LIMIT), _whole(request.args, "before", None, 1, _MAX_ID)
    rows = events.find(runtime().engine, where, limit=limit + 1, before_id=before)
    return {"events": rows[:limit], "next_before": rows[limit - 1]["id"] if len(rows) > limit else None}


def _body() -> dict:
    try:
        body = request.get_json(force=True, silent=True)  # any Content-Type: curl users forget it
    except RecursionError:
        abort(400, description="body: nested too deeply")
    if not isinstance(body, dict):
        abort(400, description="body: send a JSON object")
    return body


def _whole(args: Mapping[str, Any], name: str, default: int | None, low: int, high: int) -> int | None:
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        abort(400, description=f"{name}: expected a whole number from {low} to {high}")
    return value


def _when(values: Mapping[str, Any], name: str) -> datetime | None:
    raw = values.get(name)
    if raw is None or raw == "":
        return None
    try:
        when = datetime.fromisoformat(raw)
        return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)
    except (TypeError, ValueError, OverflowError):  # not text, not a time, or past the year 9999 in UTC
        abort(400, description=f"{name}: expected an ISO 8601 date or time, e.g. 2026-11-20T09:15:00Z")


def _status(raw: str | None) -> str | None:
    if raw and raw not in _STATUSES:
        abort(400, description=f"status: expected one of {', '.join(_STATUSES)}")
    return raw or None


def _text(values: Mapping[str, Any], name: str) -> str | None:
    value = values.get(name)
    if value is not None and (not isinstance(value, str) or "\x00" in value):  # PostgreSQL refuses NUL
        abort(400, description=f"{name}: expected text (without NUL characters)")
    return value or None


def _flag(body: Mapping[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        abort(400, description=f"{name}: expected true or false")
    return value


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


# --- background resyncs ---------------------------------------------------------------------------


class _Busy(Exception):
    def __init__(self, accounts: list[str]):
        super().__init__(", ".join(accounts))
        self.accounts = accounts


@dataclass
class _Run:
    source: str
    account: str
    dry_run: bool
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None
    counts: dict | None = None  # a snapshot taken by the resync's own thread after each page
    error: str | None = None

    @property
    def running(self) -> bool:
        return self.finished_at is None


class _Resyncs:
    """This process's background resyncs: at most one at a time per (source, account)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[tuple[str, str], _Run] = {}

    def start(self, deps: Collaborators, connector: ReviewSource, accounts: list[str], **options: Any) -> None:
        """Start one thread per account, or none when any of them runs already (_Busy)."""
        now = deps.clock()
        with self._lock:
            busy = [a for a in accounts if (run := self._runs.get((connector.name, a))) and run.running]
            if busy:
                raise _Busy(busy)
            runs = [_Run(connector.name, account, options["dry_run"], now, now) for account in accounts]
            self._runs.update({(run.source, run.account): run for run in runs})
        for run in runs:
            threading.Thread(target=self._run, args=(run, deps, connector, options), daemon=True,
                             name=f"resync-{run.source}").start()

    @staticmethod
    def _run(run: _Run, deps: Collaborators, connector: ReviewSource, options: dict) -> None:
        def progress(report: ResyncReport) -> None:
            run.counts, run.updated_at = _counts(report), deps.clock()

        try:
            progress(resync(deps, connector, run.account, progress=progress, **options))
        except ReviewBridgeError as exc:  # ours carry no secret: show the reason
            log.warning("admin API: resync of %s %s failed: %s", run.source, run.account, exc)
            run.error = str(exc)
        except Exception as exc:  # this thread's outer loop: keep the reason for GET /resyncs
            log.exception("admin API: resync of %s %s failed", run.source, run.account)
            run.error = f"{type(exc).__name__} (details in the service log)"
        finally:
            run.finished_at = deps.clock()

    def describe(self, rows: list[dict], *, source: str | None, account: str | None) -> list[dict]:
        """The resync checkpoints and this process's runs, one entry per (source, account). A run here is
        the newest word on its pair: its counts and times replace the row's (a dry run writes no row)."""
        with self._lock:
            runs = {key: run for key, run in self._runs.items()
                    if (source is None or key[0] == source) and (account is None or key[1] == account)}
        saved = {(row["source"], row["account"]): row for row in rows}
        described = []
        for key in sorted(saved.keys() | runs.keys()):
            entry = saved.get(key) or {"source": key[0], "account": key[1], "position": None}
            run = runs.get(key)
            if run is not None:
                entry = entry | {"counts": run.counts, "started_at": run.started_at, "updated_at": run.updated_at,
                                 "finished_at": run.finished_at}
                entry["position"] = None if run.dry_run else entry["position"]
            described.append(entry | {
                "started_at": _iso(entry["started_at"]), "updated_at": _iso(entry["updated_at"]),
                "finished_at": _iso(entry["finished_at"]), "running": bool(run and run.running),
                "dry_run": bool(run and run.dry_run), "error": run.error if run else None})
        return described


def _resyncs() -> _Resyncs:
    return current_app.extensions.setdefault(_RESYNCS_EXTENSION, _Resyncs())


def _counts(report: ResyncReport) -> dict:
    return {"counts": dict(report.counts), "parked": dict(report.parked)}  # the checkpoint's shape


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# --- readings not (yet) in app/events.py and app/resync.py ------------------------------------------
