"""`reviewbridge reconcile …`: report (and with --fix, correct) drift between sources and commercetools."""

from __future__ import annotations

import csv
import json
import sys
from typing import TYPE_CHECKING

import click
from flask.cli import with_appcontext

from app.cli._progress import progress_bar
from app.core.printable import printable

if TYPE_CHECKING:
    from app.core import reconcile as reconciling

__all__ = ["reconcile"]

_KINDS = ("missing", "stale", "orphaned", "unmatched")


@click.command()
@click.option("--source", default=None, help="Only this source (trustoo, wix); default: every configured one.")
@click.option("--account", default=None, help="Only this account.")
@click.option("--fix", is_flag=True, help="Queue a correction for each missing, stale or orphaned review.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--csv", "csv_file", type=click.File("w"), default=None, help="Write every drift to this CSV file.")
@with_appcontext
def reconcile(source: str | None, account: str | None, fix: bool, as_json: bool, csv_file) -> None:
    """Compare each source with commercetools: missing, stale, orphaned and unmatched reviews."""
    from app.bootstrap import current_services
    from app.core import runs

    services = current_services()
    # Without --source: every readable source that has an account to compare.
    names = [source] if source else [n for n in services.review_sources() if account or services.accounts_of(n)]
    try:
        plans = [runs.reconcile_plan(services, name, account) for name in names]
    except runs.Refused as exc:
        raise click.UsageError(str(exc)) from None
    reports = [
        _reconcile_one(services, connector, one, target, fix=fix, quiet=as_json)
        for connector, accounts, target in plans
        for one in accounts
    ]
    if csv_file is not None:
        writer = csv.writer(csv_file)
        writer.writerow(["kind", "source", "account", "source_review_id", "key", "detail"])
        for report in reports:
            writer.writerows([d.kind, d.source, d.account, d.source_id, d.key, d.detail] for d in report.drifts)
    if as_json:
        click.echo(json.dumps([report.as_dict() for report in reports], indent=2))
    else:
        click.echo(_table(reports, fixed=fix))
    if fix is False and any(report.counts for report in reports):
        sys.exit(3)  # drift found: scripts can tell agreement (0) from drift (3)


def _reconcile_one(services, connector, account: str, target, *, fix: bool, quiet: bool) -> reconciling.DriftReport:
    from app.core import reconcile as reconciling
    from connectors.base import TargetError

    try:
        with progress_bar(f"{connector.name} {account[:24]}", quiet=quiet) as update:
            return reconciling.reconcile(
                services.engine,
                connector,
                account,
                target,
                fix=fix,
                now=services.clock(),
                progress=lambda report: update(report.compared, None),
            )
    except TargetError as exc:
        raise click.ClickException(str(exc)) from None


def _table(reports: list[reconciling.DriftReport], *, fixed: bool) -> str:
    lines = [
        f"{'source':8} {'account':28} {'compared':>8} "
        + " ".join(f"{k:>9}" for k in _KINDS)
        + (f" {'queued':>7}" if fixed else "")
    ]
    for report in reports:
        lines.append(
            f"{report.source:8} {report.account[:28]:28} {report.compared:>8} "
            + " ".join(f"{report.counts[k]:>9}" for k in _KINDS)
            + (f" {report.fixed:>7}" if fixed else "")
        )
    for report in reports:
        for kind in _KINDS:
            for drift in report.examples(kind):
                lines.append(f"  {kind:9} {drift.source} {drift.source_id} {drift.key} {drift.detail}".rstrip())
    if not any(report.counts for report in reports):
        lines.append("no drift: commercetools matches the sources")
    return "\n".join(printable(line) for line in lines)  # ids and details come from platforms
