"""The `reviewbridge` command (also `flask --app app <command>`): thin wrappers around the
service's own functions.

    reviewbridge serve [--host H] [--port N]   migrations, then web + worker in one process
    reviewbridge worker                        the worker process (SIGTERM: clean stop)
    reviewbridge db upgrade|current            Alembic migrations
    reviewbridge status [--json]               queue, dead letters, last errors, rejections
    reviewbridge doctor                        configuration, database and platforms: ✓ or ✗ with the fix
    reviewbridge setup commercetools           create the Custom Type and States (idempotent)
    reviewbridge products import FILE|list     product mappings; an import releases waiting events
    reviewbridge accounts add|list|remove      platform accounts kept in the database (secrets encrypted)
    reviewbridge trustoo webhooks|authorize-url  Trustoo webhook registration and OAuth platform mode
    reviewbridge wix review-requests list      the review requests made for fulfilled orders
    reviewbridge replay ID…|--dead, discard ID… --reason TEXT   settle what the worker could not
    reviewbridge resync SOURCE, reconcile [--fix]  recover what webhooks missed; report and fix drift
"""

from __future__ import annotations

import functools
import json
import logging
import signal
import sys

import click
from flask import Flask
from flask.cli import AppGroup, FlaskGroup, with_appcontext

from app import db
from app.pipeline import Collaborators
from app.poll import poll_all
from app.runtime import Runtime, runtime
from app.status import read_status
from app.worker import Worker
from connectors.base import TargetError

__all__ = ["init_app", "main"]

log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    from app.cli_events import discard, replay
    from app.cli_platforms import accounts_group, trustoo_group, wix_group
    from app.cli_reconcile import reconcile
    from app.cli_resync import resync
    from app.cli_targets import products_group, setup_group

    for command in (
        serve,
        worker,
        db_group,
        status,
        doctor,
        setup_group,
        products_group,
        accounts_group,
        trustoo_group,
        replay,
        discard,
        resync,
        reconcile,
        wix_group,
    ):
        app.cli.add_command(command)


def main() -> None:
    from app import create_app

    FlaskGroup(
        create_app=create_app,
        add_version_option=False,
        load_dotenv=False,
        help="ReviewBridge: product reviews in step across Trustoo, Wix and commercetools.",
    )()


def build_worker(rt: Runtime) -> Worker:
    settings = rt.settings
    deps = Collaborators(
        engine=rt.engine,
        sources=rt.sources,
        targets=rt.targets,
        clock=rt.clock,
        metrics=rt.metrics,
        routes=settings.routes_by_source(),
        review_requests=rt.review_requests,
        review_request_delay_s=settings.wix_review_request_delay_s,
        max_attempts=settings.max_attempts,
        retry_base_s=settings.retry_base_s,
        retry_cap_s=settings.retry_cap_s,
    )
    poll = functools.partial(poll_all, deps, rt.sources, rt.accounts_of, interval_s=settings.poll_interval_s)
    return Worker(
        deps,
        concurrency=settings.worker_concurrency,
        lease_s=settings.lease_s,
        drain_interval_s=settings.drain_interval_s,
        recheck_waiting_s=settings.product_recheck_s,
        poll=lambda holder: poll(holder=holder),
        poll_interval_s=settings.poll_interval_s,
    )


def check_targets(rt: Runtime) -> None:
    """Fail with the target's own advice when one is not set up (ConfigError → ClickException)."""
    for target in rt.targets:
        try:
            target.check()
        except TargetError as exc:
            raise click.ClickException(f"{target.name}: {exc}") from None


@click.command()
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port (default: $PORT or 8000).")
@click.option("--threads", type=click.IntRange(1, 256), default=8, show_default=True, help="Web threads.")
@with_appcontext
def serve(host: str, port: int | None, threads: int) -> None:
    """Embedded mode: apply migrations, then run web and worker in one process."""
    import waitress
    from flask import current_app

    rt = runtime()
    db.upgrade(rt.engine)
    background = build_worker(rt)
    try:
        check_targets(rt)
    except click.ClickException as exc:
        # Webhooks are still taken in and kept; only processing waits for the fix.
        click.echo(f"worker not started: {exc.message}; events wait in the inbox until it is fixed", err=True)
    else:
        rt.on_stored.append(background.wake)
        background.start()
    port = port or rt.settings.port
    signal.signal(signal.SIGTERM, _interrupt)  # a PaaS stops with SIGTERM: shut down as on Ctrl-C
    click.echo(f"ReviewBridge serving on http://{host}:{port} (worker {background.id}); Ctrl-C stops")
    try:
        # waitress: a production-grade threaded WSGI server that also runs on any OS.
        waitress.serve(
            current_app._get_current_object(),
            host=host,
            port=port,
            threads=threads,
            ident="reviewbridge",
            max_request_body_size=rt.settings.webhook_max_bytes + 1,
        )
    except KeyboardInterrupt:
        pass
    finally:
        background.stop()


def _interrupt(_signum, _frame):
    raise KeyboardInterrupt


@click.command()
@with_appcontext
def worker() -> None:
    """Run the worker: queue drain, due retries and periodic jobs, until SIGTERM."""
    rt = runtime()
    current, head = db.current_revision(rt.engine), db.head_revision(rt.engine)
    if current != head:
        raise click.ClickException(f"database is at revision {current}, not {head}: run `reviewbridge db upgrade`")
    check_targets(rt)
    build_worker(rt).run_until_signalled()


@click.group("db", cls=AppGroup)
def db_group() -> None:
    """Database schema (Alembic migrations in migrations/)."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION."""
    rt = runtime()
    db.upgrade(rt.engine, revision)
    click.echo(f"database at revision {db.current_revision(rt.engine)}")


@db_group.command("current")
def db_current() -> None:
    """Show the database's revision and the newest one."""
    rt = runtime()
    click.echo(f"current: {db.current_revision(rt.engine)}  head: {db.head_revision(rt.engine)}")


@click.command()
@with_appcontext
def doctor() -> None:
    """Check the configuration, the database and each platform; say how to fix what is wrong."""
    from app.doctor import run_checks

    checks = run_checks(runtime())
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
    """Events by status and source, oldest pending age, dead letters, last errors, rejections."""
    rt = runtime()
    report = read_status(rt.engine, now=rt.clock())
    if as_json:
        click.echo(json.dumps(report, indent=2, sort_keys=True))
        return
    click.echo(_status_table(report))


def _status_table(report: dict) -> str:
    statuses = list(report["totals"])
    header = ["source", *statuses]
    rows = [[source, *(str(counts.get(s, 0)) for s in statuses)] for source, counts in sorted(report["events"].items())]
    rows.append(["all", *(str(report["totals"][s]) for s in statuses)])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in [header, *rows]]
    age = report["oldest_pending_age_s"]
    lines += [
        "",
        f"oldest pending: {'none' if age is None else f'{age:.0f} s'}",
        f"dead letters: {report['dead_letters']}",
        f"rejected webhooks: {report['rejected_signatures']}"
        + "".join(f"  {key}={count}" for key, count in sorted(report["rejected_webhooks"].items())),
    ]
    for source, error in sorted(report["last_error"].items()):
        lines.append(f"last error ({source}): {error['error']} [event {error['event_id']}, {error['status']}]")
    return "\n".join(lines)
