"""`reviewbridge events list|show`, `reviewbridge replay …` and `reviewbridge discard …`: find events,
and settle by hand what the worker could not, one by one or every event a filter matches."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click
from flask.cli import AppGroup, with_appcontext

from app.cli._table import echo_rows
from app.cli._types import SEARCH_TEXT, UTC_DATETIME

if TYPE_CHECKING:
    from app.core.events import EventFilter

__all__ = ["discard", "events_group", "replay"]

_STATUSES = (
    "pending",
    "processing",
    "retry",
    "done",
    "dead",
    "quarantined",
    "waiting_for_product",
    "ignored",
    "discarded",
)
_LIST_COLUMNS = [
    ("id", "id"),
    ("source", "source"),
    ("account", "account"),
    ("status", "status"),
    ("topic", "topic"),
    ("review/order", "subject_id"),
    ("outcome", "outcome"),
    ("attempts", "attempts"),
    ("received", "received_at"),
    ("last error", "last_error"),
]


def _filter_options(command: Callable) -> Callable:
    """The filters every event command takes, as the admin API names them."""
    options = [
        click.option("--status", type=click.Choice(_STATUSES), default=None, help="Only events in this status."),
        click.option("--source", default=None, help="Only this platform's (trustoo, wix)."),
        click.option("--account", default=None, help="Only this account's (shop public token, Wix instance)."),
        click.option("--since", type=UTC_DATETIME, default=None, help="Received at or after (UTC)."),
        click.option("--until", type=UTC_DATETIME, default=None, help="Received before (UTC)."),
        click.option(
            "--q", "text", type=SEARCH_TEXT, default=None, help="Text, any case, in the ids, topic, error or payload."
        ),
    ]
    return functools.reduce(lambda wrapped, option: option(wrapped), reversed(options), command)


def _where(status=None, source=None, account=None, since=None, until=None, text=None, error=None) -> EventFilter:
    from app.core.events import EventFilter

    return EventFilter(status=status, source=source, account=account, since=since, until=until, text=text, error=error)


@click.group("events", cls=AppGroup)
def events_group() -> None:
    """The inbox: every event received, newest first."""


@events_group.command("list")
@_filter_options
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the events as JSON.")
def events_list(limit: int, as_json: bool, **filters: Any) -> None:
    """Events matching the filters, newest first."""
    from app.bootstrap import current_services
    from app.core import events

    found = events.find(current_services().engine, _where(**filters), limit=limit)
    if not as_json:
        for event in found:
            event["last_error"] = (event["last_error"] or "")[:60]
    echo_rows(found, _LIST_COLUMNS, as_json=as_json)


@events_group.command("show")
@click.argument("event_id")
@click.option("--json", "as_json", is_flag=True, help="Print the event as JSON.")
def events_show(event_id: str, as_json: bool) -> None:
    """One event (by row id or platform event id): its payload with secrets hidden, attempts and ledger."""
    from app.bootstrap import current_services
    from app.core import events
    from app.core.printable import printable
    from app.core.redaction import redact, secrets_of

    services = current_services()
    [pk, *_] = _ids(services.engine, (event_id,))
    found = events.get(services.engine, pk)
    if found is None:
        raise click.ClickException(f"no event matches {event_id}")
    shown = redact(found, secrets_of(services.settings))
    if as_json:
        click.echo(json.dumps(shown, indent=2, default=str))
        return
    for name in ("id", "source", "account", "event_id", "topic", "subject_id", "status", "outcome", "last_error"):
        click.echo(f"{name:12} {printable(str(shown[name])) if shown.get(name) is not None else ''}")
    click.echo("attempts")
    echo_rows(
        shown["attempt_history"],
        [("number", "number"), ("worker", "worker_id"), ("status", "status"), ("finished", "finished_at")],
        as_json=False,
    )
    click.echo("payload")
    click.echo(json.dumps(shown["payload"], indent=2, default=str))


@click.command()
@click.argument("event_ids", nargs=-1)
@click.option("--dead", is_flag=True, help="Replay dead letters (the same as --status dead).")
@click.option("--error", type=SEARCH_TEXT, default=None, help="Text the last error mentions (any case).")
@_filter_options
@with_appcontext
def replay(event_ids: tuple[str, ...], dead: bool, **filters: Any) -> None:
    """Process events again: by id (the number `status` and the admin API show, or the platform's event
    id), or every event the filters match (--dead for the dead letters). Safe for done events: the
    ledger makes it a no-op unless the target drifted."""
    from app.bootstrap import current_services
    from app.core import queue

    services = current_services()
    if dead:
        filters["status"] = "dead"
    by_filter = any(value is not None for value in filters.values())
    if by_filter == bool(event_ids):
        raise click.UsageError("name event ids, or filter them (--dead, --status, --source …), not both")
    if by_filter:
        count = queue.replay_matching(services.engine, _where(**filters), now=services.clock())
    else:
        count = queue.replay(services.engine, _ids(services.engine, event_ids), now=services.clock())
    click.echo(f"{count} event(s) queued again")


@click.command()
@click.argument("event_ids", nargs=-1)
@click.option("--reason", required=True, help="Why these events need nothing more (kept with them).")
@_filter_options
@click.option("--yes", is_flag=True, help="Discard every event the filters match without asking.")
@with_appcontext
def discard(event_ids: tuple[str, ...], reason: str, yes: bool, **filters: Any) -> None:
    """Settle events that need nothing more, with the reason: by id, or every event the filters match
    (their number is shown first). A discarded event can still be replayed; one in flight is left alone."""
    from app.bootstrap import current_services
    from app.core import bulk, queue

    services = current_services()
    by_filter = any(value is not None for value in filters.values())
    if by_filter == bool(event_ids):
        raise click.UsageError("name event ids, or filter them (--status, --source …), not both")
    try:
        if by_filter:  # as the admin page does: what was counted (and asked about), and no later event
            counted = bulk.count(services.engine, _where(**filters))
            if not yes:
                click.confirm(f"discard {counted.discardable} event(s)?", abort=True)
            count = bulk.act(services.engine, "discard", counted.where, reason=reason, now=services.clock()).done
        else:
            count = queue.discard(services.engine, _ids(services.engine, event_ids), reason, now=services.clock())
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(f"{count} event(s) discarded")


def _ids(engine, references: tuple[str, ...]) -> list[int]:
    from app.core import events

    ids = events.resolve_ids(engine, list(references))
    if not ids:
        raise click.ClickException(f"no event matches {', '.join(references)}")
    return ids
