"""Reliability scenarios (R1-R6 and the secrets check): fixtures and the few helpers they share.

Sizes come from RELIABILITY_SCALE: unset (what `make test` runs) gives a reduced size that runs in
seconds; `RELIABILITY_SCALE=full` gives the issue's sizes. Every scenario prints what it measured
(run with `-s` to see it). All traffic stays on loopback: the platforms are the emulators in
tests/fakes, served by `serve_wsgi` in this process.

Every test here also checks, at teardown, that no configured secret reached a captured log line or
any text a test handed to `leaks.scan` (subprocess output, CLI output, admin API answers).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app import create_app
from app.bootstrap import build_worker, services_of
from app.core.db import transaction
from app.core.models import InboxEvent
from connectors.commercetools_mapping import review_key
from tests.builders import (
    TRUSTOO_OLD_PRIVATE_TOKEN,
    TRUSTOO_PRIVATE_TOKEN,
    TRUSTOO_PUBLIC_TOKEN,
    trustoo_body,
    trustoo_headers,
)
from tests.cli import cli_runner
from tests.fakes.commercetools import CommercetoolsEmulator
from tests.fakes.serving import serve_wsgi

FULL = os.environ.get("RELIABILITY_SCALE", "").strip().lower() == "full"
PRODUCT = "7982301249581"  # the builders' Trustoo product id, also a commercetools product key
CT_PROJECT, CT_CLIENT, CT_SECRET = "reviewbridge-test", "ct-client", "ct-secret-rel-5f2a9c7e41d0"
ADMIN_TOKEN = "admin-token-rel-0c1d2e3f4a5b6c7d"
SECRET_KEY = "secret-key-rel-8e9f0a1b2c3d4e5f"
WIX_APP_SECRET = "wix-app-secret-rel-77aa88bb99cc"
#: The shops beyond the environment's, as `reviewbridge accounts add trustoo` adds them (fleet.shops).
MORE_SHOPS = tuple((f"rel-shop-{n:02d}-public", f"trustoo-private-rel-shop-{n:02d}-5e6f7a8b") for n in range(2, 21))
#: Every secret any scenario configures; none may show up in logs, errors or answers.
SECRETS = (
    *(private for _, private in MORE_SHOPS),
    TRUSTOO_PRIVATE_TOKEN,
    TRUSTOO_OLD_PRIVATE_TOKEN,
    CT_SECRET,
    ADMIN_TOKEN,
    SECRET_KEY,
    WIX_APP_SECRET,
    "test-secret-key-0123456789abcdef",
)
OPEN = ("pending", "retry", "processing")
REVIEWBRIDGE = str(Path(sys.executable).parent / "reviewbridge")
ROOT = Path(__file__).resolve().parents[2]


def scale(reduced, full):
    """The issue's size under RELIABILITY_SCALE=full, the reduced one otherwise."""
    return full if FULL else reduced


def report(scenario: str, **figures) -> None:
    """One line of measured figures per scenario (shown with `pytest -s`)."""
    shown = "  ".join(
        f"{name}={value:.3g}" if isinstance(value, float) else f"{name}={value}" for name, value in figures.items()
    )
    print(f"\n[{scenario}] scale={'full' if FULL else 'reduced'}  {shown}", flush=True)


def require_postgres(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("several worker processes need PostgreSQL (SKIP LOCKED); SQLite serves one machine")


# --- secrets ------------------------------------------------------------------------------------


class Leaks:
    """Collects text a scenario produced; `check` fails naming the secret and where it was seen."""

    def __init__(self):
        self.found: list[str] = []

    def scan(self, text: str | bytes | None, where: str) -> None:
        if text is None:
            return
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        for secret in SECRETS:
            if secret in text:
                at = text.index(secret)
                self.found.append(f"{where}: …{text[max(at - 80, 0) : at + len(secret) + 20]!r}…")

    def scan_records(self, records: Iterable, where: str = "log") -> None:
        for record in records:
            try:
                message = record.getMessage()
            except Exception:  # a record whose args do not format: its raw parts are what would leak
                message = f"{record.msg} {record.args}"
            self.scan(f"{message} {record.exc_text or ''}", f"{where} {record.name}:{record.levelname}")


@pytest.fixture(autouse=True)
def leaks(caplog):
    found = Leaks()
    yield found
    found.scan_records(caplog.records)
    found.scan(caplog.text, "captured log text")
    assert not found.found, "a configured secret leaked:\n" + "\n".join(found.found[:10])


# --- the commercetools emulator and an app pointed at it ------------------------------------------


@pytest.fixture
def ct():
    """The commercetools emulator on loopback: (emulator, base URL), with the builders' product."""
    emulator = CommercetoolsEmulator(project_key=CT_PROJECT, client_id=CT_CLIENT, client_secret=CT_SECRET, seed=1)
    emulator.add_product(key=PRODUCT)
    with serve_wsgi(emulator) as url:
        yield emulator, url


@pytest.fixture
def ct_environ(environ, ct):
    _, url = ct
    return environ | {
        "CTP_PROJECT_KEY": CT_PROJECT,
        "CTP_CLIENT_ID": CT_CLIENT,
        "CTP_CLIENT_SECRET": CT_SECRET,
        "CTP_API_URL": url,
        "CTP_AUTH_URL": url,
        "TRUSTOO_RATE_LIMIT": "100",
        "SECRET_KEY": SECRET_KEY,
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "LOG_LEVEL": "WARNING",
    }


def make_app(environ: dict[str, str]):
    """An app with commercetools set up (`reviewbridge setup commercetools`)."""
    app = create_app(environ)
    result = cli_runner(app).invoke(args=["setup", "commercetools"])
    assert result.exit_code == 0, result.output
    return app


@pytest.fixture
def ct_app(ct_environ):
    app = make_app(ct_environ)
    yield app
    services_of(app).engine.dispose()


# --- delivering and draining ----------------------------------------------------------------------


def trustoo_key(review_id, shop: str = TRUSTOO_PUBLIC_TOKEN) -> str:
    return review_key("trustoo", shop, str(review_id))


def signed_trustoo(
    items: list[dict],
    timestamp: int,
    request_id: str = "r",
    *,
    shop: tuple[str, str] = (TRUSTOO_PUBLIC_TOKEN, TRUSTOO_PRIVATE_TOKEN),
) -> tuple[bytes, dict[str, str]]:
    """A delivery of `items`, signed as Trustoo signs for `shop` (public token, private token)."""
    body = trustoo_body(*items)
    public, private = shop
    headers = trustoo_headers(
        body, timestamp=timestamp, request_id=request_id, public_token=public, private_token=private
    )
    return body, headers


def post_trustoo(client, topic: str, body: bytes, headers: dict[str, str]) -> None:
    response = client.post(f"/webhooks/trustoo/{topic}", data=body, headers=headers)
    assert response.status_code == 200, (response.status_code, response.data[:300])


def inbox_counts(app) -> Counter:
    engine = services_of(app).engine
    with transaction(engine) as session:
        rows = session.execute(select(InboxEvent.status, func.count()).group_by(InboxEvent.status)).all()
    return Counter(dict(rows))


def drain_until_settled(app, *, timeout_s: float, threads: int = 1, pause_s: float = 0.02) -> int:
    """Drain with `threads` workers until no event is open; returns the rounds it took.

    Retries come due after their backoff (RETRY_BASE_S is small), so the loop pauses briefly
    between rounds; the deadline bounds it."""
    import concurrent.futures

    services = services_of(app)
    workers = [build_worker(services) for _ in range(threads)]
    deadline = time.monotonic() + timeout_s
    rounds = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as pool:
        while time.monotonic() < deadline:
            rounds += 1
            list(pool.map(lambda worker: worker.drain(), workers))
            if not any(inbox_counts(app).get(status, 0) for status in OPEN):
                return rounds
            time.sleep(pause_s)
    raise AssertionError(f"events did not settle within {timeout_s} s: {dict(inbox_counts(app))}")


# --- worker processes -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_environ(environ: dict[str, str], **extra: str) -> dict[str, str]:
    """The process environment for `reviewbridge` subprocesses: the test's settings, nothing inherited
    that could point elsewhere (no TRUSTOO_/CTP_/WIX_/DATABASE_URL from the shell)."""
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TRUSTOO_", "CTP_", "WIX_", "DATABASE_URL", "ADMIN_TOKEN", "SECRET_KEY"))
    }
    return keep | {"NO_PROXY": "127.0.0.1,localhost"} | dict(environ) | extra


def start_worker(env: dict[str, str], log_path: Path) -> subprocess.Popen:
    with open(log_path, "ab") as handle:  # the child holds its own copy of the file
        return subprocess.Popen([REVIEWBRIDGE, "worker"], cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)


# --- Wix ------------------------------------------------------------------------------------------


@pytest.fixture
def wix():
    """The Wix emulator on loopback: (emulator, base URL, instance id)."""
    from tests.fakes.wix import WixEmulator

    emulator = WixEmulator(app_secret=WIX_APP_SECRET, seed=2)
    with serve_wsgi(emulator) as url:
        yield emulator, url, emulator.add_instance()


@pytest.fixture
def wix_environ(ct_environ, wix):
    emulator, url, _ = wix
    return ct_environ | {
        "WIX_APP_ID": emulator.app_id,
        "WIX_APP_SECRET": emulator.app_secret,
        "WIX_API_URL": url,
        "WIX_PUBLIC_KEY": emulator.public_key_pem.replace("\n", "\\n"),
    }


@pytest.fixture
def wix_app(wix_environ):
    app = make_app(wix_environ)
    yield app
    services_of(app).engine.dispose()


def post_wix(client, body: bytes) -> None:
    response = client.post("/webhooks/wix", data=body, headers={"Content-Type": "text/plain; charset=utf-8"})
    assert response.status_code == 200, (response.status_code, response.data[:300])
