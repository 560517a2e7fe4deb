"""replay and discard: a person settles what the worker could not, through the CLI."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from app.bootstrap import build_worker
from app.core import events, queue_store
from app.core.db import transaction
from app.core.models import InboxEvent
from connectors.base import FixAndReplayError, PayloadError
from tests.builders import trustoo_body, trustoo_headers, trustoo_review
from tests.cli import cli_runner


def _deliver(client, *items):
    body = trustoo_body(*items)
    assert client.post("/webhooks/trustoo/review-created", data=body, headers=trustoo_headers(body)).status_code == 200


def _rows(engine) -> list[InboxEvent]:
    with transaction(engine) as session:
        return list(session.execute(select(InboxEvent).order_by(InboxEvent.id)).scalars())


def test_dead_letter_replayed_succeeds_and_keeps_its_attempt_history(app, client, services, target, engine):
    target.fail_next(FixAndReplayError("review text rejected", status=400))
    _deliver(client, trustoo_review())
    build_worker(services).drain()
    [row] = _rows(engine)
    assert row.status == "dead"
    result = cli_runner(app).invoke(args=["replay", "--dead", "--error", "rejected"])
    assert "1 event(s) queued again" in result.output
    build_worker(services).drain()
    assert _rows(engine)[0].status == "done" and len(target.reviews) == 1
    detail = events.get(engine, row.id)
    assert [a["status"] for a in detail["attempt_history"]] == ["dead", "done"]
    assert "review text rejected" in detail["attempt_history"][0]["error"]
    assert detail["ledger"][0]["last_action"] == "created"


def test_replaying_a_done_event_writes_nothing_new(app, client, services, target, engine):
    _deliver(client, trustoo_review())
    build_worker(services).drain()
    [row] = _rows(engine)
    cli_runner(app).invoke(args=["replay", row.event_id])
    build_worker(services).drain()
    assert len(target.calls) == 1 and _rows(engine)[0].outcome == "unchanged"


def test_discarded_event_keeps_the_reason_and_is_never_processed(app, client, services, target, engine):
    _deliver(client, trustoo_review())
    [row] = _rows(engine)
    result = cli_runner(app).invoke(args=["discard", str(row.id), "--reason", "test review from QA"])
    assert "1 event(s) discarded" in result.output
    build_worker(services).drain()
    [row] = _rows(engine)
    assert row.status == "discarded" and row.last_error == "discarded: test review from QA" and target.calls == []


def test_replay_needs_ids_or_dead(app):
    result = cli_runner(app).invoke(args=["replay"])
    assert result.exit_code != 0 and "--dead" in result.output


def test_replay_of_an_unknown_event_says_so(app):
    result = cli_runner(app).invoke(args=["replay", "no-such-event"])
    assert result.exit_code != 0 and "no event matches" in result.output


def test_events_list_filters_and_prints_a_header_row_or_json(app, client, engine):
    _deliver(client, trustoo_review(), trustoo_review())
    _deliver(client, {"rating": 2})  # no id: quarantined

    table = cli_runner(app).invoke(args=["events", "list", "--status", "quarantined"]).output
    rows = json.loads(cli_runner(app).invoke(args=["events", "list", "--status", "pending", "--json"]).output)

    header, *lines = table.splitlines()
    assert header.split()[:4] == ["id", "source", "account", "status"] and len(lines) == 1
    assert "quarantined" in lines[0] and "list item has no review id" in lines[0]
    assert [row["status"] for row in rows] == ["pending", "pending"]
    assert cli_runner(app).invoke(args=["events", "list", "--source", "wix"]).output == "none\n"


@pytest.mark.parametrize("command", [["events", "list", "--q"], ["replay", "--error"]])
def test_events_search_text_over_200_characters_is_a_usage_error(app, command):
    result = cli_runner(app).invoke(args=[*command, "x" * 60_000])
    assert result.exit_code == 2 and "at most 200 characters" in result.output


HOSTILE_ID = "r-1\x1b]0;owned\x07\x1b[2J\nforged row\x9b"


def test_cli_prints_ids_and_errors_from_a_platform_with_their_control_characters_escaped(app, client, services, engine):
    _deliver(client, trustoo_review(id=HOSTILE_ID))
    queue_store.enqueue(
        engine,
        "trustoo",
        "shop\x1b[31m",
        [PayloadError("bad \x1b[2J\r\nreason")],
        now=services.clock(),
        quarantine_id="q",
    )
    [row, _] = _rows(engine)
    outputs = [
        cli_runner(app).invoke(args=args).output
        for args in (["events", "list"], ["events", "show", str(row.id)], ["status"], ["accounts", "list"])
    ]
    for output in outputs:
        assert not any(c in output for c in "\x1b\x07\x9b\r"), output
        assert "forged row" not in output.replace("\\nforged row", "")
    assert "r-1\\x1b]0;owned\\x07\\x1b[2J\\nforged row\\x9b" in outputs[1]
    assert "bad \\x1b[2J\\r\\nreason" in outputs[2]


def test_events_show_gives_the_payload_attempts_and_hides_secrets(app, client, services, engine):
    _deliver(client, trustoo_review(content="a review mentioning test-secret-key-0123456789abcdef"))
    build_worker(services).drain()
    [row] = _rows(engine)

    shown = json.loads(cli_runner(app).invoke(args=["events", "show", row.event_id, "--json"]).output)
    text = cli_runner(app).invoke(args=["events", "show", str(row.id)]).output

    assert shown["status"] == "done" and [a["status"] for a in shown["attempt_history"]] == ["done"]
    assert "test-secret-key-0123456789abcdef" not in json.dumps(shown) + text
    assert "attempts" in text and "payload" in text


def test_discard_by_filter_counts_first_and_discards_every_match(app, client, services, target, engine):
    _deliver(client, trustoo_review(), trustoo_review())
    _deliver(client, {"rating": 2})

    declined = cli_runner(app).invoke(args=["discard", "--status", "pending", "--reason", "test shop"], input="n\n")
    assert "discard 2 event(s)?" in declined.output and declined.exit_code != 0
    result = cli_runner(app).invoke(args=["discard", "--status", "pending", "--reason", "test shop", "--yes"])

    assert "2 event(s) discarded" in result.output
    assert sorted(row.status for row in _rows(engine)) == ["discarded", "discarded", "quarantined"]
    build_worker(services).drain()
    assert target.calls == []


def test_replay_by_filter_requeues_every_match(app, client, services, target, engine):
    _deliver(client, trustoo_review(), trustoo_review())
    build_worker(services).drain()

    result = cli_runner(app).invoke(args=["replay", "--status", "done", "--source", "trustoo"])

    assert "2 event(s) queued again" in result.output
    assert {row.status for row in _rows(engine)} == {"pending"}


def test_discard_needs_ids_or_a_filter_but_not_both(app):
    neither = cli_runner(app).invoke(args=["discard", "--reason", "x"])
    both = cli_runner(app).invoke(args=["discard", "1", "--status", "dead", "--reason", "x"])
    assert neither.exit_code == 2 and both.exit_code == 2 and "not both" in both.output
