"""Alerts against a Slack-compatible webhook on loopback: each condition is told once, with its link;
several workers tell it once between them; the rate limit folds a burst; a failed post is sent at
the next check; the webhook URL shows in no log line."""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import update

from app import create_app
from app.bootstrap import build_worker, services_of
from app.core import alerts, queue_store
from app.core.db import transaction
from app.core.models import EventStatus, InboxEvent, table
from connectors.alert_webhook import AlertWebhook
from tests.fakes.serving import serve_wsgi
from tests.fakes.slack import SlackWebhookEmulator
from tests.integration.conftest import make_event

TOKEN = "hooktoken-3f9a1c7e5b2d"  # the secret part of the webhook URL
PUBLIC_URL = "https://reviews.example.com"
RULES = alerts.Rules(
    sources=("trustoo", "wix"),
    pending_age_s=1800,
    rejected=20,
    rejected_window_s=300,
    min_interval_s=900,
    public_url=PUBLIC_URL,
)

_inbox = table(InboxEvent)


@pytest.fixture
def slack():
    emulator = SlackWebhookEmulator(token=TOKEN)
    with serve_wsgi(emulator) as base_url:
        emulator.url = f"{base_url}{emulator.path}"
        yield emulator


@pytest.fixture
def webhook(slack):
    hook = AlertWebhook(slack.url)
    yield hook
    hook.close()


def _check(engine, webhook, clock, *, holder="worker-1", rules=RULES) -> int:
    return alerts.check(engine, webhook, rules, holder=holder, now=clock())


def _events(engine, clock, account: str, count: int, *, age_s: float = 0):
    at = clock() - timedelta(seconds=age_s)
    events = [make_event(f"r-{uuid.uuid4().hex[:10]}", at=at, account=account) for _ in range(count)]
    queue_store.enqueue(engine, "trustoo", account, events, now=at, quarantine_id=f"q-{uuid.uuid4().hex}")
    return [event.event_id for event in events]


def _dead_letters(engine, clock, account: str, count: int) -> None:
    ids = _events(engine, clock, account, count)
    with transaction(engine) as session:
        session.execute(
            update(_inbox)
            .where(_inbox.c.event_id.in_(ids))
            .values(status=EventStatus.DEAD.value, last_error="FixAndReplayError: no", next_attempt_at=None)
        )


def _rejections(engine, clock, count: int, source: str = "trustoo") -> None:
    for _ in range(count):
        queue_store.count_rejection(engine, source, "signature", now=clock())


def _items(slack) -> list[str]:
    """The alert lines of every message received, as `text` carries them."""
    return [line for message in slack.messages for line in message["text"].splitlines()[1:]]


def test_new_dead_letters_are_alerted_once_with_a_link_to_their_admin_page(engine, webhook, slack, clock):
    _dead_letters(engine, clock, "shop-a", 2)

    assert _check(engine, webhook, clock) == 1
    clock.advance(3600)
    assert _check(engine, webhook, clock) == 0

    link = f"{PUBLIC_URL}/admin/events?status=dead&source=trustoo&account=shop-a"
    assert _items(slack) == [f"• 2 new dead letters at trustoo shop-a (2 in all): {link}"]
    section = slack.messages[0]["blocks"][1]["text"]["text"]
    assert f"<{link}|open in the admin page>" in section


def test_a_dead_letter_after_a_replay_is_new_again(engine, webhook, slack, clock):
    _dead_letters(engine, clock, "shop-a", 2)
    _check(engine, webhook, clock)
    with transaction(engine) as session:  # both replayed, and done
        session.execute(update(_inbox).values(status=EventStatus.DONE.value))
    clock.advance(60)
    _check(engine, webhook, clock)
    _dead_letters(engine, clock, "shop-a", 1)
    clock.advance(3600)

    assert _check(engine, webhook, clock) == 1
    assert _items(slack)[-1].startswith("• 1 new dead letter at trustoo shop-a (1 in all)")


def test_a_late_queue_is_alerted_once_with_the_age_and_a_link(engine, webhook, slack, clock):
    _events(engine, clock, "shop-b", 3, age_s=7200)

    assert _check(engine, webhook, clock) == 1
    clock.advance(3600)
    assert _check(engine, webhook, clock) == 0

    link = f"{PUBLIC_URL}/admin/events?status=pending&source=trustoo&account=shop-b"
    assert _items(slack) == [
        f"• the oldest pending event at trustoo shop-b has waited 2 h 0 min (alert after 30 min): {link}"
    ]


def test_a_late_queue_whose_oldest_event_is_retrying_links_to_the_retrying_events(engine, webhook, slack, clock):
    ids = _events(engine, clock, "shop-b", 1, age_s=7200)
    with transaction(engine) as session:
        session.execute(update(_inbox).where(_inbox.c.event_id.in_(ids)).values(status=EventStatus.RETRY.value))
    _events(engine, clock, "shop-b", 1, age_s=3600)

    _check(engine, webhook, clock)

    assert _items(slack)[0].endswith(f"{PUBLIC_URL}/admin/events?status=retry&source=trustoo&account=shop-b")


def test_a_queue_that_caught_up_and_fell_behind_again_is_alerted_again(engine, webhook, slack, clock):
    ids = _events(engine, clock, "shop-b", 1, age_s=7200)
    _check(engine, webhook, clock)
    with transaction(engine) as session:
        session.execute(update(_inbox).where(_inbox.c.event_id.in_(ids)).values(status=EventStatus.DONE.value))
    clock.advance(60)
    _check(engine, webhook, clock)  # caught up
    clock.advance(3600)
    _events(engine, clock, "shop-b", 1, age_s=2000)

    assert _check(engine, webhook, clock) == 1
    assert "has waited 33 min" in _items(slack)[-1]


def test_a_queue_within_the_threshold_is_not_alerted(engine, webhook, slack, clock):
    _events(engine, clock, "shop-b", 3, age_s=600)

    assert _check(engine, webhook, clock) == 0
    assert slack.messages == []


def test_a_burst_of_rejected_webhooks_is_alerted_once_with_a_link_to_the_connections(engine, webhook, slack, clock):
    _rejections(engine, clock, 5)  # before alerts ever looked: history, not a burst
    _check(engine, webhook, clock)
    clock.advance(60)
    _rejections(engine, clock, 25)

    assert _check(engine, webhook, clock) == 1
    clock.advance(3600)
    assert _check(engine, webhook, clock) == 0

    assert _items(slack) == [
        "• 25 trustoo webhooks rejected (bad signature, stale timestamp or unknown key), 20+ within 5 min: "
        f"{PUBLIC_URL}/admin/connections"
    ]


def test_rejected_webhooks_that_trickle_in_slower_than_the_window_are_not_a_burst(engine, webhook, slack, clock):
    _check(engine, webhook, clock)
    for _ in range(10):  # 30 in all, 3 a minute: never 20 within 5 minutes
        clock.advance(60)
        _rejections(engine, clock, 3)
        _check(engine, webhook, clock)

    assert slack.messages == []


def test_the_first_burst_of_a_source_never_rejected_before_is_alerted(engine, webhook, slack, clock):
    _check(engine, webhook, clock)
    clock.advance(60)
    _rejections(engine, clock, 20, source="wix")

    assert _check(engine, webhook, clock) == 1
    assert _items(slack)[0].startswith("• 20 wix webhooks rejected")


def test_two_workers_checking_at_once_send_one_alert(engine, slack, clock):
    _dead_letters(engine, clock, "shop-a", 1)
    start = threading.Barrier(2)
    sent: list[int] = []

    def worker(holder: str) -> None:
        hook = AlertWebhook(slack.url)
        start.wait()
        sent.append(_check(engine, hook, clock, holder=holder))
        hook.close()

    threads = [threading.Thread(target=worker, args=(f"worker-{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(sent) == [0, 1]
    assert len(slack.messages) == 1


def test_another_worker_checks_once_the_lease_has_run_out_and_sends_nothing_twice(engine, webhook, slack, clock):
    _dead_letters(engine, clock, "shop-a", 1)
    _check(engine, webhook, clock, holder="worker-1")
    clock.advance(30)
    assert _check(engine, webhook, clock, holder="worker-2") == 0  # worker-1 holds the check
    clock.advance(3600)

    assert _check(engine, webhook, clock, holder="worker-2") == 0
    assert len(slack.messages) == 1


def test_a_burst_past_the_rate_limit_is_folded_into_one_alert(engine, webhook, slack, clock):
    _dead_letters(engine, clock, "shop-a", 1)
    _check(engine, webhook, clock)
    for _ in range(3):  # one more dead letter a minute, well within ALERT_MIN_INTERVAL
        clock.advance(60)
        _dead_letters(engine, clock, "shop-a", 1)
        assert _check(engine, webhook, clock) == 0
    clock.advance(900)

    assert _check(engine, webhook, clock) == 1
    assert [item.split(":")[0] for item in _items(slack)] == [
        "• 1 new dead letter at trustoo shop-a (1 in all)",
        "• 3 new dead letters at trustoo shop-a (4 in all)",
    ]


def test_the_rate_limit_is_per_subject(engine, webhook, slack, clock):
    _dead_letters(engine, clock, "shop-a", 1)
    _check(engine, webhook, clock)
    clock.advance(60)
    _dead_letters(engine, clock, "shop-b", 1)

    assert _check(engine, webhook, clock) == 1
    assert "shop-b" in _items(slack)[-1]


def test_one_check_sends_everything_due_in_one_message(engine, webhook, slack, clock):
    _dead_letters(engine, clock, "shop-a", 1)
    _events(engine, clock, "shop-b", 1, age_s=7200)

    assert _check(engine, webhook, clock) == 2
    assert len(slack.messages) == 1 and slack.messages[0]["text"].startswith("ReviewBridge: 2 alerts")


def test_a_failing_receiver_gets_the_alert_at_the_next_check(engine, webhook, slack, clock, caplog):
    _dead_letters(engine, clock, "shop-a", 2)
    slack.fail_next(1, status=500)

    with caplog.at_level(logging.WARNING, logger="app.core.alerts"):
        assert _check(engine, webhook, clock) == 0
    clock.advance(60)
    assert _check(engine, webhook, clock) == 1

    assert slack.refused == 1
    assert _items(slack) == [
        f"• 2 new dead letters at trustoo shop-a (2 in all): {PUBLIC_URL}/admin/events?status=dead&"
        "source=trustoo&account=shop-a"
    ]
    assert "alert about 1 subject(s) not sent, kept for the next check: alert webhook answered HTTP 500" in caplog.text


def test_a_refused_url_is_named_by_its_variable(engine, slack, clock, caplog):
    _dead_letters(engine, clock, "shop-a", 1)
    wrong = AlertWebhook(slack.url.replace(TOKEN, "revoked-token"))

    with caplog.at_level(logging.WARNING, logger="app.core.alerts"):
        assert _check(engine, wrong, clock) == 0

    assert "alert webhook answered HTTP 404 (no_service); check ALERT_WEBHOOK_URL" in caplog.text


def test_without_public_url_the_link_is_the_admin_path(engine, webhook, slack, clock):
    _dead_letters(engine, clock, "shop/a&b", 1)

    _check(engine, webhook, clock, rules=alerts.Rules(sources=("trustoo",)))

    path = "/admin/events?status=dead&source=trustoo&account=shop%2Fa%26b"
    assert _items(slack)[0].endswith(f": {path}")
    assert f"admin page: `{path}`" in slack.messages[0]["blocks"][1]["text"]["text"]
    assert "shop/a&amp;b" in slack.messages[0]["blocks"][1]["text"]["text"]


def test_the_webhook_url_never_appears_in_a_log_line(engine, slack, clock, caplog):
    unreachable = AlertWebhook(f"http://127.0.0.1:9/services/T0/B0/{TOKEN}")  # nothing listens on port 9
    # At DEBUG, where httpx's request lines are kept (LOG_LEVEL=DEBUG), they too hide the URL.
    with caplog.at_level(logging.DEBUG), caplog.at_level(logging.DEBUG, logger="httpx"):
        _dead_letters(engine, clock, "shop-a", 1)
        _check(engine, unreachable, clock)  # a transport error
        slack.fail_next(1, status=503)
        reachable = AlertWebhook(slack.url)
        clock.advance(60)
        _check(engine, reachable, clock)  # refused
        clock.advance(60)
        _check(engine, reachable, clock)  # sent: httpx logs the request

    assert len(slack.messages) == 1
    assert "HTTP Request: POST <ALERT_WEBHOOK_URL>" in caplog.text
    assert "unreachable (ConnectError)" in caplog.text
    assert TOKEN not in caplog.text
    assert all(TOKEN not in str(record.args) for record in caplog.records)


def test_the_worker_checks_alerts_when_alert_webhook_url_is_set(environ, slack, target):
    app = create_app(environ | {"ALERT_WEBHOOK_URL": slack.url, "PUBLIC_URL": PUBLIC_URL}, targets=[target])
    services = services_of(app)
    try:
        _dead_letters(services.engine, services.clock, "shop-a", 1)
        assert build_worker(services).check_alerts() == 1
        assert build_worker(services).check_alerts() == 0  # another worker: nothing new, and the lease is held
    finally:
        services.engine.dispose()
    assert len(slack.messages) == 1


def test_the_worker_has_no_alert_check_without_alert_webhook_url(services):
    assert build_worker(services).check_alerts() == 0
