"""Signed Trustoo webhooks → inbox → worker → the commercetools emulator over loopback."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from app import create_app
from app.bootstrap import build_worker, services_of
from app.core.db import transaction
from app.core.models import InboxEvent
from connectors.commercetools_mapping import review_key
from tests.builders import TRUSTOO_PUBLIC_TOKEN, trustoo_body, trustoo_headers, trustoo_review
from tests.cli import cli_runner
from tests.e2e.conftest import PRODUCT

REVIEWBRIDGE = str(Path(sys.executable).parent / "reviewbridge")


@pytest.fixture
def emulator(ct):
    return ct[0]


@pytest.fixture
def ct_url(ct):
    return ct[1]


def _app(environ, ct_url, **extra):
    app = create_app(
        environ
        | {
            "CTP_PROJECT_KEY": "reviewbridge-test",
            "CTP_CLIENT_ID": "ct-client",
            "CTP_CLIENT_SECRET": "ct-secret-0123456789",
            "CTP_API_URL": ct_url,
            "CTP_AUTH_URL": ct_url,
        }
        | extra
    )
    return app


@pytest.fixture
def ct_app(environ, ct_url):
    app = _app(environ, ct_url)
    assert cli_runner(app).invoke(args=["setup", "commercetools"]).exit_code == 0
    yield app
    services_of(app).engine.dispose()


def _deliver(app, topic: str, *items):
    body = trustoo_body(*items)
    response = app.test_client().post(f"/webhooks/trustoo/{topic}", data=body, headers=trustoo_headers(body))
    assert response.status_code == 200


def _drain(app) -> None:
    build_worker(services_of(app)).drain()


def _key(item) -> str:
    return review_key("trustoo", TRUSTOO_PUBLIC_TOKEN, str(item["id"]))


def _inbox(app) -> list[InboxEvent]:
    with transaction(services_of(app).engine) as session:
        return list(session.execute(select(InboxEvent).order_by(InboxEvent.id)).scalars())


def test_setup_commercetools_reports_created_then_found(ct_app):
    output = cli_runner(ct_app).invoke(args=["setup", "commercetools"]).output
    assert output.count(": present\n") == 3 and "created" not in output


def test_setup_commercetools_says_what_it_did_and_logs_no_http_requests(tmp_path, ct_environ):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CTP_", "TRUSTOO_", "DATABASE_URL"))}
    env |= ct_environ | {"LOG_LEVEL": "INFO"}
    first, again = (
        subprocess.run([REVIEWBRIDGE, "setup", "commercetools"], capture_output=True, text=True, env=env, timeout=60)
        for _ in range(2)
    )
    assert [line.split(": ")[1] for line in first.stdout.splitlines()] == ["missing → created"] * 3
    assert first.stdout.startswith("type reviewbridge-review: ")
    assert [line.split(": ")[1] for line in again.stdout.splitlines()] == ["present"] * 3
    assert "HTTP Request" not in first.stderr + again.stderr and "404" not in first.stderr + again.stderr


def test_trustoo_review_created_becomes_exactly_one_commercetools_review(ct_app, emulator):
    item = trustoo_review(reply={"content": "Thanks, Ada!", "reply_at": "2026-11-21 08:00:00"})
    _deliver(ct_app, "review-created", item)
    _deliver(ct_app, "review-created", item)
    _drain(ct_app)
    [stored] = emulator.reviews.values()
    assert stored["key"] == stored["uniquenessValue"] == _key(item)
    assert (stored["rating"], stored["title"], stored["text"], stored["authorName"]) == (
        5,
        "Lovely mug",
        item["content"],
        "Ada Lovelace",
    )
    assert stored["includedInStatistics"] is True
    fields = stored["custom"]["fields"]
    assert (fields["source"], fields["sourceReviewId"], fields["sourceProductId"]) == (
        "trustoo",
        str(item["id"]),
        PRODUCT,
    )
    assert fields["verified"] is True and fields["replyText"] == "Thanks, Ada!" and fields["authorCountry"] == "GB"


def test_trustoo_review_updated_changes_only_what_changed(ct_app, emulator):
    item = trustoo_review()
    _deliver(ct_app, "review-created", item)
    _drain(ct_app)
    emulator.requests.clear()
    _deliver(ct_app, "review-updated", {**item, "rating": 3})
    _drain(ct_app)
    [update] = [r for r in emulator.requests if r.method == "POST" and "/reviews/" in r.path]
    assert update.body["actions"] == [{"action": "setRating", "rating": 3}]


def test_trustoo_review_published_then_hidden_then_deleted(ct_app, emulator):
    item = trustoo_review()
    _deliver(ct_app, "review-created", item)
    _drain(ct_app)
    time.sleep(1.01)  # Trustoo's timestamps are whole seconds; events a second apart keep their order
    _deliver(ct_app, "review-updated", {**item, "is_published": 0})
    _drain(ct_app)
    assert emulator.review_by_key(_key(item))["includedInStatistics"] is False
    time.sleep(1.01)
    _deliver(ct_app, "review-deleted", {"id": item["id"]})
    _drain(ct_app)
    assert emulator.review_by_key(_key(item)) is None
    assert [row.outcome for row in _inbox(ct_app)] == ["created", "updated", "deleted"]


def test_trustoo_review_deleted_in_hide_mode_stays_hidden(environ, ct_url, emulator):
    app = _app(environ, ct_url, CTP_ON_SOURCE_DELETE="hide")
    cli_runner(app).invoke(args=["setup", "commercetools"])
    item = trustoo_review()
    _deliver(app, "review-created", item)
    _drain(app)
    time.sleep(1.01)
    _deliver(app, "review-deleted", {"id": item["id"]})
    _drain(app)
    assert emulator.review_by_key(_key(item))["includedInStatistics"] is False
    services_of(app).engine.dispose()


def test_unmatched_product_waits_then_an_import_releases_it(ct_app, emulator):
    item = trustoo_review(product_id="8000000000001")
    _deliver(ct_app, "review-created", item)
    _drain(ct_app)
    [row] = _inbox(ct_app)
    assert row.status == "waiting_for_product" and "8000000000001" in row.last_error
    emulator.add_product(key="mug-green")
    csv_file = f"source,account,source_product_id,product_key\ntrustoo,{TRUSTOO_PUBLIC_TOKEN},8000000000001,mug-green\n"
    result = cli_runner(ct_app).invoke(args=["products", "import", "-"], input=csv_file)
    assert "1 waiting event(s) released" in result.output, result.output
    _drain(ct_app)
    assert _inbox(ct_app)[0].status == "done"
    assert emulator.review_by_key(_key(item)) is not None
    listed = cli_runner(ct_app).invoke(args=["products", "list"]).output
    assert "8000000000001,mug-green" in listed


def test_bad_product_csv_is_refused_naming_the_line(ct_app):
    result = cli_runner(ct_app).invoke(
        args=["products", "import", "-"], input="source,account,source_product_id\ntrustoo,a,1\n"
    )
    assert result.exit_code != 0 and "line 2" in result.output


def test_thirty_percent_faults_converge_with_no_duplicate(ct_app, emulator):
    items = [trustoo_review() for _ in range(25)]
    for item in items:
        _deliver(ct_app, "review-created", item)
    emulator.fail_rate = 0.3
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(r.status != "done" for r in _inbox(ct_app)):
        _drain(ct_app)
        time.sleep(0.05)
    emulator.fail_rate = 0.0
    assert {r.status for r in _inbox(ct_app)} == {"done"}
    keys = sorted(r["key"] for r in emulator.reviews.values())
    assert keys == sorted(_key(item) for item in items)


def test_token_expiring_mid_run_is_renewed(ct_app, emulator):
    _deliver(ct_app, "review-created", trustoo_review())
    _drain(ct_app)
    emulator.expire_tokens()
    _deliver(ct_app, "review-created", trustoo_review())
    _drain(ct_app)
    assert len(emulator.reviews) == 2
    assert {r.status for r in _inbox(ct_app)} == {"done"}


def test_two_workers_racing_on_the_same_new_review_make_one_commercetools_review(ct_app, ct_url, environ, emulator):
    emulator.latency_s = 0.02
    other = _app(environ, ct_url)
    targets = [services_of(ct_app).targets[0], services_of(other).targets[0]]
    from connectors.trustoo import map_review

    review = map_review(TRUSTOO_PUBLIC_TOKEN, trustoo_review())
    barrier = threading.Barrier(2)

    def race(target):
        barrier.wait()
        target.upsert(review)

    threads = [threading.Thread(target=race, args=(t,)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(emulator.reviews) == 1
    services_of(other).engine.dispose()
