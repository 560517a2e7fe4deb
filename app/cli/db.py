"""`reviewbridge db upgrade|current|prune`: the schema (Alembic migrations shipped with the package) and
retention."""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup

__all__ = ["db_group"]


@click.group("db", cls=AppGroup)
def db_group() -> None:
    """Database schema (Alembic migrations) and retention (prune)."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION."""
    from app.bootstrap import current_services
    from app.core import db

    services = current_services()
    db.upgrade(services.engine, revision)
    click.echo(f"database at revision {db.current_revision(services.engine)}")


@db_group.command("current")
def db_current() -> None:
    """Show the database's revision and the newest one."""
    from app.bootstrap import current_services
    from app.core import db

    services = current_services()
    click.echo(f"current: {db.current_revision(services.engine)}  head: {db.head_revision(services.engine)}")


@db_group.command("prune")
@click.option(
    "--older-than",
    "days",
    type=click.IntRange(1, 36500),
    default=None,
    help="Age in days of what goes (default: RETENTION_DAYS, 30).",
)
@click.option("--dry-run", is_flag=True, help="Count what would go; delete nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
def db_prune(days: int | None, dry_run: bool, as_json: bool) -> None:
    """Delete finished events (done, ignored, discarded) with their attempts, and finished runs, older
    than RETENTION_DAYS, and ended admin sessions. Events that still need work and the ledger are
    never deleted."""
    from app.bootstrap import current_services
    from app.core import retention

    services = current_services()
    older_than = days or services.settings.retention_days
    report = retention.prune(services.engine, now=services.clock(), older_than_days=older_than, dry_run=dry_run)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
        return
    verb = "would delete" if dry_run else "deleted"
    click.echo(
        f"{verb} {report.events} finished event(s), {report.attempts} attempt(s) and {report.runs} run(s) "
        f"(with {report.journal_entries} journaled write(s)) "
        f"older than {report.cutoff.isoformat(timespec='seconds')} ({older_than} days), "
        f"{report.admin_sessions} ended admin session(s) and {report.sign_in_failures} old sign-in failure record(s)"
    )
