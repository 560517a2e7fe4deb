"""The alert webhook against the Slack emulator (mounted with WSGITransport): what each answer becomes,
and that the URL, which carries the webhook's token, never reaches an error or a log line."""

from __future__ import annotations

import logging

import httpx
import pytest

from connectors.alert_webhook import AlertWebhook
from connectors.base import ConfigError, RetryableTargetError
from tests.fakes.slack import SlackWebhookEmulator

TOKEN = "unit-hook-token-8d2e6f"
MESSAGE = {"text": "ReviewBridge: 1 alert\n• something"}


@pytest.fixture
def slack():
    return SlackWebhookEmulator(token=TOKEN)


def _webhook(slack, url: str | None = None) -> AlertWebhook:
    return AlertWebhook(url or f"https://hooks.slack.test{slack.path}", transport=httpx.WSGITransport(app=slack))


def test_alert_webhook_posts_the_message_as_json(slack):
    _webhook(slack).post(MESSAGE)

    assert slack.messages == [MESSAGE]


@pytest.mark.parametrize("status", [429, 500, 503])
def test_alert_webhook_busy_or_failing_receiver_is_worth_another_try(slack, status):
    slack.fail_next(status=status)

    with pytest.raises(RetryableTargetError, match=f"alert webhook answered HTTP {status}"):
        _webhook(slack).post(MESSAGE)


def test_alert_webhook_unknown_url_names_the_variable_and_slacks_code(slack):
    with pytest.raises(ConfigError) as caught:
        _webhook(slack, "https://hooks.slack.test/services/T0/B0/revoked-token").post(MESSAGE)

    assert str(caught.value) == "alert webhook answered HTTP 404 (no_service); check ALERT_WEBHOOK_URL"


def test_alert_webhook_refusal_that_echoes_the_url_is_not_repeated(slack):
    slack.fail_next(status=400, body=f"bad request to /services/T00000000/B00000000/{TOKEN}")

    with pytest.raises(ConfigError) as caught:
        _webhook(slack).post(MESSAGE)

    assert TOKEN not in str(caught.value)


def test_alert_webhook_unreachable_receiver_error_holds_no_url():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot connect to {request.url}", request=request)

    webhook = AlertWebhook(f"https://hooks.slack.test/services/T0/B0/{TOKEN}", transport=httpx.MockTransport(refuse))
    with pytest.raises(RetryableTargetError) as caught:
        webhook.post(MESSAGE)

    assert str(caught.value) == "alert webhook unreachable (ConnectError)"
    assert caught.value.__suppress_context__  # httpx's exception, which holds the request, is not shown


def test_alert_webhook_url_is_hidden_in_httpx_request_log_however_httpx_writes_it(slack, caplog):
    written_differently = f"HTTPS://Hooks.Slack.Test:443{slack.path}"  # httpx logs it lower-cased, no port

    with caplog.at_level(logging.DEBUG), caplog.at_level(logging.DEBUG, logger="httpx"):
        _webhook(slack, written_differently).post(MESSAGE)

    assert "HTTP Request: POST <ALERT_WEBHOOK_URL>" in caplog.text
    assert TOKEN not in caplog.text
