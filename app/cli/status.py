"""`reviewbridge status` (the queue at a glance) and `reviewbridge doctor` (what to fix)."""

from __future__ import annotations

import json
import sys

import click
from flask.cli import with_appcontext

from app.cli._table import aligned
from app.core.printable import printable

__all__ = ["doctor", "status"]


@click.command()
@with_appcontext
def doctor() -> None:
    """Check the configuration, the database and each platform; say how to fix what is wrong."""
    from app import bootstrap
    from app.bootstrap import current_services
    from app.core.doctor import run_checks

    services = current_services()
    bootstrap.announce(services.settings)
    checks = run_checks(services)
    width = max(len(check.name) for check in checks)
    for check in checks:
        click.echo(f"{'✓' if check.ok else '✗'} {check.name:{width}}  {check.detail}")
    failed = sum(not check.ok for check in checks)
    click.echo(f"\n{len(checks) - failed} of {len(checks)} checks passed")
    if failed:
        sys.exit(1)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@with_appcontext
def status(as_json: bool) -> None:
    """Events by status and source, oldest pending and retrying ages, dead letters, last errors, rejections."""
    from app.bootstrap import current_services
    from app.core.status import read_status

    services = current_services()
    report = read_status(services.engine, now=services.clock())
    if as_json:
        click.echo(json.dumps(report, indent=2, sort_keys=True))
        return
    click.echo(_status_table(report))


def _status_table(report: dict) -> str:
    statuses = list(report["totals"])
    header = ["source", *statuses]
    rows = [[source, *(str(counts.get(s, 0)) for s in statuses)] for source, counts in sorted(report["events"].items())]
    rows.append(["all", *(str(report["totals"][s]) for s in statuses)])
    lines = aligned([header, *rows])
    lines += [
        "",
        f"oldest pending: {_age(report['oldest_pending_age_s'])}",
        f"oldest retry: {_age(report['oldest_retry_age_s'])}",
        f"dead letters: {report['dead_letters']}",
        f"rejected webhooks: {report['rejected_signatures']}"
        + "".join(f"  {key}={count}" for key, count in sorted(report["rejected_webhooks"].items())),
    ]
    for source, error in sorted(report["last_error"].items()):
        lines.append(f"last error ({source}): {error['error']} [event {error['event_id']}, {error['status']}]")
    return "\n".join(printable(line) for line in lines)  # errors and event ids come from platforms


def _age(seconds: float | None) -> str:
    return "none" if seconds is None else f"{seconds:.0f} s"
