"""`reviewbridge rollback RUN_ID`: put back what one resync run wrote to commercetools."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click
from flask.cli import with_appcontext

from app.cli._runs import run_here

if TYPE_CHECKING:
    from app.core.rollback import RollbackReport

__all__ = ["rollback"]

#: The summary's lines, in this order; a dry run's words stand for the writes it would make.
_ORDER = (
    "deleted",
    "restored",
    "recreated",
    "would_delete",
    "would_restore",
    "would_recreate",
    "in_line",
    "already",
    "skipped",
    "failed",
)


@click.command()
@click.argument("run_id", type=int)
@click.option("--dry-run", is_flag=True, help="Write nothing; print what would be put back.")
@click.option("--force", is_flag=True, help="Also put back reviews that a later write changed.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@with_appcontext
def rollback(run_id: int, dry_run: bool, force: bool, as_json: bool) -> None:
    """Undo resync run RUN_ID in commercetools: delete what it created, restore what it updated,
    create again what it deleted, and the ledger with them. Safe to repeat."""
    from app.bootstrap import current_services
    from app.core import rollback as rolling
    from app.core import runs

    services = current_services()
    try:
        resynced = rolling.plan(services, run_id)
    except runs.Refused as exc:
        raise click.UsageError(str(exc)) from None
    seen: list[RollbackReport] = []
    options = {"of": run_id, "dry_run": dry_run, "force": force}
    run, error = run_here(services, runs.ROLLBACK, resynced.source, resynced.account, options, watch=seen.append)
    if error is not None or not seen:
        raise click.ClickException(f"run {run.id}: {error or 'ended without a report'}")
    report = seen[-1]
    if as_json:
        click.echo(json.dumps(report.as_dict() | {"rollback_run_id": run.id}, indent=2))
    else:
        click.echo(_summary(report, run.id))
    if report.counts["failed"]:
        sys.exit(1)


def _summary(report: RollbackReport, rollback_run_id: int) -> str:
    lines = [f"{'dry run: ' if report.dry_run else ''}rollback of run {report.run_id} (run {rollback_run_id})"]
    lines += [f"  {word.replace('_', ' '):14} {report.counts[word]:>8}" for word in _ORDER if report.counts[word]]
    if not report.reviews:
        lines.append("  the run wrote nothing to commercetools")
    for review in report.reviews:
        if review["action"] in ("skipped", "failed", "recreated"):
            said = f"  {review['action']:9} {review['key']}: {review.get('reason', '')}"
            if review["action"] == "recreated":
                said += f" (was {review.get('old_id')}, now {review.get('new_id')})"
            lines.append(said)
    return "\n".join(lines)
