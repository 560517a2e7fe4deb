"""`reviewbridge replay …` and `reviewbridge discard …`: a person settles what the worker could not."""

from __future__ import annotations

from datetime import UTC, datetime

import click
from flask.cli import with_appcontext

__all__ = ["discard", "replay"]


@click.command()
@click.argument("event_ids", nargs=-1)
@click.option("--dead", is_flag=True, help="Replay dead letters (narrowed by the options below).")
@click.option("--source", default=None, help="With --dead: only this platform's.")
@click.option("--since", type=click.DateTime(), default=None, help="With --dead: received since (UTC).")
@click.option("--error", "error_text", default=None, help="With --dead: whose error mentions this text.")
@with_appcontext
def replay(
    event_ids: tuple[str, ...], dead: bool, source: str | None, since: datetime | None, error_text: str | None
) -> None:
    """Process events again: by id (the number `status` and the admin API show, or the platform's event
    id), or every dead letter matching --source, --since and --error. Safe for done events: the ledger
    makes it a no-op unless the target drifted."""
    from app.bootstrap import current_services
    from app.core import events, queue
    from app.core.models import EventStatus

    services = current_services()
    if dead == bool(event_ids):
        raise click.UsageError("name event ids, or use --dead (not both)")
    if dead:
        where = events.EventFilter(status=EventStatus.DEAD.value, source=source, text=error_text, since=_utc(since))
        count = queue.replay_matching(services.engine, where, now=services.clock())
    else:
        ids = _ids(services.engine, event_ids)
        count = queue.replay(services.engine, ids, now=services.clock())
    click.echo(f"{count} event(s) queued again")


@click.command()
@click.argument("event_ids", nargs=-1, required=True)
@click.option("--reason", required=True, help="Why these events need nothing more (kept with them).")
@with_appcontext
def discard(event_ids: tuple[str, ...], reason: str) -> None:
    """Settle events that need nothing more, with the reason; a discarded event can still be replayed."""
    from app.bootstrap import current_services
    from app.core import queue

    services = current_services()
    try:
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


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value
