"""The alert message: Slack-compatible, complete in its text, one section per alert up to Slack's
limits, and an account name shown as it is."""

from __future__ import annotations

from datetime import UTC, datetime

from app.core.alerts import Due, Kind, Rules, compose

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
RULES = Rules(sources=("trustoo",), public_url="https://reviews.example.com/")


def _dead(account: str, news: int = 1) -> Due:
    return Due(Kind.DEAD_LETTERS, "trustoo", account, seen=news, since=None, news=news)


def test_alert_message_text_carries_every_alert_and_its_link():
    message = compose([_dead("shop-a", 2)], RULES, {}, now=NOW)

    assert message["text"] == (
        "ReviewBridge: 1 alert\n"
        "• 2 new dead letters at trustoo shop-a (2 in all): "
        "https://reviews.example.com/admin/events?status=dead&source=trustoo&account=shop-a"
    )
    assert message["blocks"][0] == {"type": "header", "text": {"type": "plain_text", "text": "ReviewBridge: 1 alert"}}


def test_alert_message_past_twenty_alerts_keeps_them_all_in_the_text_and_says_how_many_more():
    message = compose([_dead(f"shop-{n}") for n in range(25)], RULES, {}, now=NOW)

    assert len(message["text"].splitlines()) == 26
    assert [block["type"] for block in message["blocks"]].count("section") == 20
    assert message["blocks"][-1]["elements"][0]["text"].startswith("… and 5 more")


def test_alert_message_shows_an_account_name_with_markup_characters_as_it_is():
    message = compose([_dead("<b>&co")], RULES, {}, now=NOW)

    assert "&lt;b&gt;&amp;co" in message["blocks"][1]["text"]["text"]
    assert "account=%3Cb%3E%26co" in message["text"]
