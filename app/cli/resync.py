"""`reviewbridge resync …`: stream a source's reviews through the pipeline, with progress and a summary."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import TYPE_CHECKING

import click
from flask.cli import with_appcontext

from app.cli._progress import progress_bar
from app.cli._runs import run_here
from app.cli._types import UTC_DATETIME

if TYPE_CHECKING:
    from app.core import resync as resyncing

__all__ = ["resync"]

#: The summary's lines: the resync's own counts around the outcomes (app/core/ledger.py's Outcome). A
#: run writes and a dry run says what it would write: each shows its own words, even at 0.
_ORDER = (
    "seen",
    "created",
    "updated",
    "would_create",
    "would_update",
    "merged",
    "would_merge",
    "unchanged",
    "deleted",
    "would_delete",
    "hidden",
    "tombstoned",
    "stale",
    "echo",
    "failed",
)
_ALWAYS = ("seen", "created", "updated", "unchanged", "failed")
_ALWAYS_IN_DRY_RUN = ("seen", "would_create", "would_update", "unchanged", "failed")


@click.command()
@click.argument("source")
@click.option("--account", default=None, help="One account (shop public token, Wix instance); default: all.")
@click.option("--since", type=UTC_DATETIME, default=None, help="Only reviews written since (UTC).")
@click.option("--until", type=UTC_DATETIME, default=None, help="Only reviews written before (UTC).")
@click.option("--dry-run", is_flag=True, help="Write nothing anywhere; print what would be done.")
@click.option("--restart", is_flag=True, help="Ignore the checkpoint of an interrupted run.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@with_appcontext
def resync(
    source: str,
    account: str | None,
    since: datetime | None,
    until: datetime | None,
    dry_run: bool,
    restart: bool,
    as_json: bool,
) -> None:
    """Bring the targets in line with SOURCE's reviews (trustoo, wix); an interrupted run resumes."""
    from app.bootstrap import current_services
    from app.core import runs

    services = current_services()
    try:
        connector, accounts = runs.resync_plan(services, source, account)
    except runs.Refused as exc:
        raise click.UsageError(str(exc)) from None
    reports = [
        _run_one(services, connector, name, quiet=as_json, since=since, until=until, dry_run=dry_run, restart=restart)
        for name in accounts
    ]
    if as_json:
        click.echo(json.dumps([report.as_dict() | {"run_id": run_id} for run_id, report in reports], indent=2))
    else:
        for run_id, report in reports:
            click.echo(_summary(report, run_id, dry_run=dry_run))
    if any(report.counts["failed"] for _, report in reports):
        sys.exit(1)


def _run_one(services, connector, account: str, *, quiet: bool, **options) -> tuple[int, resyncing.ResyncReport]:
    """One account's resync as a run of its own (its id is what `reviewbridge rollback` takes)."""
    from app.core import runs

    seen: list[resyncing.ResyncReport] = []
    with progress_bar(f"{connector.name} {account[:24]}", quiet=quiet) as update:

        def watch(report: resyncing.ResyncReport) -> None:
            seen[:] = [report]
            update(report.seen, report.total)

        run, error = run_here(services, runs.RESYNC, connector.name, account, options, watch=watch)
    if error is not None or not seen:
        raise click.ClickException(f"run {run.id}: {error or 'ended without a report'}")
    return run.id, seen[0]


def _summary(report: resyncing.ResyncReport, run_id: int, *, dry_run: bool) -> str:
    lines = [
        f"{'dry run: ' if dry_run else ''}{report.source} {report.account} (run {run_id})"
        + (f" (resumed at page {report.resumed_from})" if report.resumed_from else "")
    ]
    always = _ALWAYS_IN_DRY_RUN if dry_run else _ALWAYS
    for word in _ORDER:
        if report.counts[word] or word in always:
            lines.append(f"  {word.replace('_', ' '):14} {report.counts[word]:>8}")
    for reason, count in report.parked.most_common():  # waiting as the events page says: for a product
        lines.append(f"  {'waiting':14} {count:>8}  {reason}")
    lines += [f"  ! {failure}" for failure in report.failures]
    return "\n".join(lines)
