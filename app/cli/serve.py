"""`reviewbridge serve` (web + worker in one process) and `reviewbridge worker`."""

from __future__ import annotations

import errno
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import click

from app.cli._app import serve_app, worker_app

if TYPE_CHECKING:
    from flask import Flask

    from app.config import KeptSecrets, Settings
    from app.core.services import Services


__all__ = ["serve", "worker"]


@click.command()
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port (default: $PORT or 8000).")
@click.option("--threads", type=click.IntRange(1, 256), default=8, show_default=True, help="Web threads.")
def serve(host: str, port: int | None, threads: int) -> None:
    """Embedded mode: apply migrations, then run web and worker in one process."""
    from app import bootstrap
    from app.bootstrap import services_of
    from app.core import db

    app, kept = serve_app(threads)
    services = services_of(app)
    bootstrap.announce(services.settings)
    db.upgrade(services.engine)
    port = port or services.settings.port
    server = _listen(app, host, port, threads, services.settings.webhook_max_bytes)
    background = bootstrap.build_worker(services)
    try:
        check_targets(services)
    except click.ClickException as exc:
        # Webhooks are still taken in and kept; only processing waits for the fix.
        click.echo(f"worker not started: {exc.message}; events wait in the inbox until it is fixed", err=True)
    else:
        services.on_stored.append(background.wake)
        background.start()
    signal.signal(signal.SIGTERM, _interrupt)  # a PaaS stops with SIGTERM: shut down as on Ctrl-C
    click.echo(f"ReviewBridge serving on http://{host}:{port} (worker {background.id}); Ctrl-C stops")
    # On the operator's terminal, not in the log: a log drain must never collect the admin token.
    for line in _admin_lines(services.settings, kept, _browsable(host, port)):
        click.echo(line)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        background.stop()
        server.close()


def _listen(app: Flask, host: str, port: int, threads: int, webhook_max_bytes: int):
    """waitress, bound to its port (or one line saying why not): only then does `serve` say it serves.

    waitress: a production-grade threaded WSGI server that also runs on any OS. Its I/O loop reads each
    request whole before a thread sees it, so clients that trickle bytes cost no thread; what they can
    exhaust is its connection limit (100 by default: 101 idle sockets stopped it answering for the 120 s
    of its default timeout). poll(), not select(), so that a socket numbered past 1024 is served too."""
    import waitress

    try:
        return waitress.create_server(
            app,
            host=host,
            port=port,
            threads=threads,
            ident="reviewbridge",
            # waitress counts a chunked body's framing against this, so a body of exactly
            # WEBHOOK_MAX_BYTES sent in one-byte chunks (6 bytes each on the wire) must fit; Flask
            # holds every body, dechunked, to WEBHOOK_MAX_BYTES itself (413 past it).
            max_request_body_size=8 * webhook_max_bytes,
            connection_limit=1000,
            channel_timeout=30,
            asyncore_use_poll=True,
        )
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise click.ClickException(
                f"port {port} is in use: stop the other process, or set PORT (or --port) to a free port"
            ) from None
        if exc.errno == errno.EACCES:
            raise click.ClickException(
                f"port {port} needs privileges this user lacks: set PORT (or --port) to a port above 1023"
            ) from None
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; check --host and PORT"
        ) from None


def _browsable(host: str, port: int) -> str:
    """The address to open in a browser: a wildcard host is reached on this machine at loopback."""
    shown = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


def _admin_lines(settings: Settings, kept: KeptSecrets, base: str) -> list[str]:
    """Where the admin page is and how to sign in; the token itself only when `serve` keeps it (one the
    operator set is theirs already, and may be a production secret)."""
    missing = [
        name
        for name, value in (("ADMIN_TOKEN", settings.admin_token), ("SECRET_KEY", settings.secret_key))
        if not value
    ]
    if missing:
        why = "" if kept.path else "; serve keeps its own only beside a SQLite database"
        return [f"admin page: off until {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} set{why}"]
    if "ADMIN_TOKEN" not in kept.used:
        return [f"admin page: {base}/admin (sign in with your ADMIN_TOKEN)"]
    made = "made now" if "ADMIN_TOKEN" in kept.created else "made on the first start"
    return [
        f"admin page: {base}/admin",
        f"admin token: {settings.admin_token}",
        f"  ({made}, kept in {_shown(kept.path)}; set ADMIN_TOKEN to use your own)",
    ]


def _shown(path: Path | None) -> str:
    if path is None:
        return ""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _interrupt(_signum, _frame):
    raise KeyboardInterrupt


@click.command()
@click.option(
    "--metrics-host",
    default="0.0.0.0",
    show_default=True,
    help="Address of the worker's /metrics, served when WORKER_METRICS_PORT is set.",
)
@click.option(
    "--setup-recheck",
    type=click.FloatRange(0.1, 3600),
    default=30.0,
    show_default=True,
    help="Seconds between checks while a target is not set up yet.",
)
def worker(metrics_host: str, setup_recheck: float) -> None:
    """Run the worker: queue drain, due retries and periodic jobs, until SIGTERM."""
    from app import bootstrap
    from app.bootstrap import services_of
    from app.core import db

    services = services_of(worker_app())
    bootstrap.announce(services.settings)
    current, head = db.current_revision(services.engine), db.head_revision(services.engine)
    if current != head:
        raise click.ClickException(f"database is at revision {current}, not {head}: run `reviewbridge db upgrade`")
    if not _wait_for_targets(services, setup_recheck):
        return
    background = bootstrap.build_worker(services)
    port = services.settings.worker_metrics_port
    stop_metrics = None
    if port:
        try:
            stop_metrics = services.metrics.serve(metrics_host, port)
        except OSError as exc:
            raise click.ClickException(
                f"WORKER_METRICS_PORT: cannot listen on {metrics_host}:{port}: {exc.strerror}"
            ) from None
        click.echo(f"worker metrics on http://{metrics_host}:{port}/metrics", err=True)
    try:
        background.run_until_signalled()
    finally:
        if stop_metrics is not None:
            stop_metrics()


def _wait_for_targets(services: Services, recheck_s: float) -> bool:
    """Wait until every target is set up; False when SIGTERM or Ctrl-C came first. On a PaaS the
    worker may start before the release phase (or a person) has run `setup commercetools`: it waits
    and says so, rather than exit and be restarted over and over. Webhooks are taken in meanwhile."""
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    while True:
        try:
            check_targets(services)
            return True
        except click.ClickException as exc:
            click.echo(f"worker waiting: {exc.message} (checking again every {recheck_s:g} s)", err=True)
        if stopping.wait(recheck_s):
            return False


def check_targets(services: Services) -> None:
    """Fail with the target's own advice when one is not set up (ConfigError → ClickException)."""
    from connectors.base import TargetError

    for target in services.targets:
        try:
            target.check()
        except TargetError as exc:
            raise click.ClickException(f"{target.name}: {exc}") from None
