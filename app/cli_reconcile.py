"""`reviewbridge reconcile …`: report (and with --fix, correct) drift between sources and commercetools."""

from __future__ import annotations

import csv
import json
import sys

import click
from flask.cli import with_appcontext

from app import reconcile as reconciling
from app.runtime import runtime
from connectors.base import TargetError

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
    rt = runtime()
    target = next((t for t in rt.targets if t.name == "commercetools"), None)
    if target is None:
        raise click.ClickException(
            "commercetools is not configured: set CTP_PROJECT_KEY, CTP_CLIENT_ID and CTP_CLIENT_SECRET"
        )
    names = [source] if source else [name for name, s in rt.sources.items() if hasattr(s, "iter_pages")]
    reports = []
    try:
        for name in names:
            connector = rt.sources.get(name)
            if connector is None:
                raise click.UsageError(f"unknown source {name!r}; sources: {', '.join(sorted(rt.sources))}")
            for one in [account] if account else rt.accounts_of(name):
                reports.append(reconciling.reconcile(rt.engine, connector, one, target, fix=fix, now=rt.clock()))
    except TargetError as exc:
        raise click.ClickException(str(exc)) from None
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
    return "\n".join(lines)
