"""`reviewbridge reconcile …`: report (and with --fix, correct) drift between sources and commercetools."""

from __future__ import annotations

import csv
import json
import sys
from typing import TYPE_CHECKING

import click
from flask.cli import with_appcontext

from app.cli._progress import progress_bar
from app.cli._table import aligned
from app.core.printable import printable

if TYPE_CHECKING:
    from app.core import reconcile as reconciling
    from connectors.base import RatingStatistics

__all__ = ["reconcile"]

_KINDS = ("missing", "stale", "orphaned", "unmatched")


@click.command()
@click.argument("source_name", metavar="[SOURCE]", required=False)
@click.option("--source", default=None, help="Only this source (trustoo, wix); default: every configured one.")
@click.option("--account", default=None, help="Only this account.")
@click.option("--fix", is_flag=True, help="Queue a correction for each missing, stale or orphaned review.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--csv", "csv_file", type=click.File("w"), default=None, help="Write every drift to this CSV file.")
@with_appcontext
def reconcile(
    source_name: str | None, source: str | None, account: str | None, fix: bool, as_json: bool, csv_file
) -> None:
    """Compare each source with commercetools: missing, stale, orphaned and unmatched reviews, and
    each product's rating statistics (SOURCE is --source)."""
    from app.bootstrap import current_services
    from app.core import runs

    if source_name and source and source_name != source:
        raise click.UsageError(f"SOURCE {source_name!r} and --source {source!r} differ: name one")
    source = source or source_name
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
    if fix is False and any(report.drifted for report in reports):
        sys.exit(3)  # drift found: scripts can tell agreement (0) from drift (3)


def _reconcile_one(services, connector, account: str, target, *, fix: bool, quiet: bool) -> reconciling.DriftReport:
    from app.core import merging
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
                precedence=merging.precedence(services),
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
    lines += _statistics_lines(reports)
    if not any(report.drifted for report in reports):
        lines.append("no drift: commercetools matches the sources")
    return "\n".join(printable(line) for line in lines)  # ids and details come from platforms


def _statistics_lines(reports: list[reconciling.DriftReport]) -> list[str]:
    """Each product's rating statistics under a header row, the disagreeing ones first."""
    order = {"drift": 0, "settling": 1, "agrees": 2}
    entries = sorted(
        ((report, entry) for report in reports for entry in report.statistics), key=lambda pair: order[pair[1].state]
    )
    if not entries:
        return []
    settling = sum(report.statistics_settling for report in reports)
    table = [["", "source", "product", "commercetools key", "source says", "commercetools says", "note"]]
    for report, entry in entries:
        note = entry.error or (f"others {sum(entry.others.values()):+d}" if entry.others else "")
        if entry.state == "settling":
            note = "written in the last minute: run again shortly"
        table.append(
            [
                entry.state,
                report.source,
                printable(entry.source_product_id, tab=False),
                printable(entry.key or "-", tab=False),
                _figures(entry.source) if entry.source is not None else "unreadable",
                _figures(entry.target),
                printable(note, tab=False),
            ]
        )
    return [
        f"rating statistics: {sum(r.statistics_drift for r in reports)} of {len(entries)} products disagree"
        + (f", {settling} settling" if settling else "")
        + " (count · average · ratings)",
        *("  " + line for line in aligned(table)),
    ]


def _figures(stats: RatingStatistics) -> str:
    """`3 · 4.3 · 4★2 5★1`: count, average as the platform gives it, and how many of each rating."""
    from app.core.rating_statistics import figures

    shown = figures(stats)
    average = "-" if shown["average"] is None else str(shown["average"])
    ratings = " ".join(f"{rating}★{n}" for rating, n in shown["distribution"].items())
    return f"{shown['count']} · {average} · {ratings or '-'}"
