"""/admin/api: the operator's JSON view of the queue, with replay, discard and resyncs the worker runs."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select, update

from app import create_app
from app.bootstrap import build_worker, services_of
from app.core import queue
from app.core.db import transaction
from app.core.models import InboxEvent, Run
from connectors.base import FixAndReplayError
from tests.builders import TRUSTOO_PRIVATE_TOKEN, TRUSTOO_PUBLIC_TOKEN, trustoo_body, trustoo_headers, trustoo_review
from tests.cli import cli_runner
from tests.e2e.conftest import ADMIN_TOKEN as TOKEN
from tests.e2e.conftest import PRODUCT

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def admin_rt(admin_app):
    return services_of(admin_app)


@pytest.fixture
def synced_admin_app(ct_environ):
    """The app against the commercetools and Trustoo emulators, set up, with the admin API on."""
    app = create_app(ct_environ | {"ADMIN_TOKEN": TOKEN})
    assert cli_runner(app).invoke(args=["setup", "commercetools"]).exit_code == 0
    yield app
    services_of(app).engine.dispose()


@pytest.fixture
def synced_admin(synced_admin_app):
    return synced_admin_app.test_client()


@pytest.fixture
def worker(synced_admin_app):
    """The worker of the synced app; tests call its jobs (run_queued_runs) where a worker process would."""
    return build_worker(services_of(synced_admin_app))


def _deliver(client, *items) -> None:
    body = trustoo_body(*items)
    assert client.post("/webhooks/trustoo/review-created", data=body, headers=trustoo_headers(body)).status_code == 200


def _db_counts(engine) -> dict[str, int]:
    with transaction(engine) as session:
        return dict(session.execute(select(InboxEvent.status, func.count()).group_by(InboxEvent.status)).all())


def _ids(events: list[dict]) -> list[int]:
    return [event["id"] for event in events]


def _resyncs(client, query: str = "") -> list[dict]:
    response = client.get(f"/admin/api/resyncs{query}", headers=AUTH)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["resyncs"]


# --- access ---------------------------------------------------------------------------------------


def test_admin_api_without_admin_token_set_is_off_and_answers_404(client):
    response = client.get("/admin/api/status", headers=AUTH)
    assert response.status_code == 404
    assert response.get_json() == {"error": "not_found", "message": "the admin API is off: set ADMIN_TOKEN"}


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer",
        "Bearer wrong-token-0123456789abcdef",
        f"Bearer {TOKEN}x",
        f"Basic {TOKEN}",
        TOKEN,
        "Bearer tökén",
    ],
)
def test_admin_api_without_the_right_bearer_token_answers_401_and_never_echoes_it(admin, authorization, caplog):
    headers = {} if authorization is None else {"Authorization": authorization}
    with caplog.at_level(logging.DEBUG):
        response = admin.get("/admin/api/events", headers=headers)
    assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Bearer"
    assert response.get_json()["error"] == "unauthorized"
    assert TOKEN not in response.get_data(as_text=True)
    assert TOKEN not in caplog.text and "wrong-token" not in caplog.text


def test_admin_api_refuses_writes_without_the_token_and_changes_nothing(admin, admin_rt):
    _deliver(admin, trustoo_review())
    response = admin.post("/admin/api/events/discard", json={"ids": [1], "reason": "spam"})
    assert response.status_code == 401 and _db_counts(admin_rt.engine) == {"pending": 1}


# --- reading --------------------------------------------------------------------------------------


def test_admin_api_status_numbers_match_the_database_after_webhooks(admin, admin_rt, target):
    for _ in range(3):
        _deliver(admin, trustoo_review())
    target.fail_next(FixAndReplayError("review text rejected", status=400))
    build_worker(admin_rt).drain()
    _deliver(admin, trustoo_review())
    status = admin.get("/admin/api/status", headers=AUTH).get_json()
    database = _db_counts(admin_rt.engine)
    assert database == {"done": 2, "dead": 1, "pending": 1}
    assert (
        {k: v for k, v in status["totals"].items() if v}
        == database
        == {k: v for k, v in status["events"]["trustoo"].items() if v}
    )
    assert status["dead_letters"] == 1 and "review text rejected" in status["last_error"]["trustoo"]["error"]
    assert status["oldest_pending_age_s"] is not None


def test_admin_api_events_filter_by_status_source_and_text(admin, admin_rt):
    first, second = trustoo_review(), trustoo_review()
    _deliver(admin, first)
    _deliver(admin, second)
    build_worker(admin_rt).drain()
    third = trustoo_review()
    _deliver(admin, third)

    def found(query: str) -> list[str]:
        response = admin.get(f"/admin/api/events?{query}", headers=AUTH)
        assert response.status_code == 200, response.get_json()
        return [event["subject_id"] for event in response.get_json()["events"]]

    assert found("status=pending") == [str(third["id"])]
    assert found("status=done") == [str(second["id"]), str(first["id"])]
    assert found("source=trustoo") == [str(third["id"]), str(second["id"]), str(first["id"])]
    assert found("source=wix") == []
    assert found(f"q={first['id']}") == [str(first["id"])]
    assert found(f"status=done&q={third['id']}") == []
    assert found("since=2000-01-01") == found("source=trustoo") and found("until=2000-01-01T00:00:00Z") == []


def test_admin_api_events_search_finds_author_and_product_in_any_case(admin):
    _deliver(admin, trustoo_review(author="Grace Hopper", product_id="4455667788"))
    _deliver(admin, trustoo_review())

    def found(query: str) -> int:
        return len(admin.get(f"/admin/api/events?q={query}", headers=AUTH).get_json()["events"])

    assert found("grace%20HOPPER") == 1 and found("4455667788") == 1 and found("nobody-wrote-this") == 0


def test_admin_api_events_page_newest_first_with_before(admin):
    for _ in range(5):
        _deliver(admin, trustoo_review())
    everything = _ids(admin.get("/admin/api/events", headers=AUTH).get_json()["events"])
    assert everything == sorted(everything, reverse=True) and len(everything) == 5
    pages, before = [], None
    while True:
        query = "limit=2" + (f"&before={before}" if before else "")
        page = admin.get(f"/admin/api/events?{query}", headers=AUTH).get_json()
        pages.append(_ids(page["events"]))
        before = page["next_before"]
        if before is None:
            break
        assert before == pages[-1][-1]
    assert pages == [everything[0:2], everything[2:4], everything[4:]]


def test_admin_api_event_after_a_drain_shows_payload_attempts_and_ledger(admin, admin_rt):
    review = trustoo_review()
    _deliver(admin, review)
    build_worker(admin_rt).drain()
    [listed] = admin.get("/admin/api/events", headers=AUTH).get_json()["events"]
    event = admin.get(f"/admin/api/events/{listed['id']}", headers=AUTH).get_json()
    assert event["status"] == "done" and event["subject_id"] == str(review["id"])
    assert event["payload"]["id"] == review["id"]
    assert [attempt["status"] for attempt in event["attempt_history"]] == ["done"]
    assert [entry["last_action"] for entry in event["ledger"]] == ["created"]


def test_admin_api_event_payload_is_redacted_as_the_admin_page_shows_it(admin, page):
    review = trustoo_review(
        title=f"leaked {TRUSTOO_PRIVATE_TOKEN}", access_token="a-token-value-0123456789", reply={"signature": "s-01"}
    )
    _deliver(admin, review)
    [listed] = admin.get("/admin/api/events", headers=AUTH).get_json()["events"]
    event = admin.get(f"/admin/api/events/{listed['id']}", headers=AUTH).get_json()
    shown = page.get(f"/admin/events/{listed['id']}").get_data(as_text=True)
    assert TRUSTOO_PRIVATE_TOKEN not in str(event) and TRUSTOO_PRIVATE_TOKEN not in shown
    assert event["payload"]["title"] == "leaked [redacted]"
    assert event["payload"]["access_token"] == "[redacted]" and event["payload"]["reply"] == {"signature": "[redacted]"}
    assert "a-token-value-0123456789" not in shown and "a-token-value-0123456789" not in str(event)


@pytest.mark.parametrize("event_id", [999999, 10**20])
def test_admin_api_event_that_does_not_exist_answers_404_json(admin, event_id):
    response = admin.get(f"/admin/api/events/{event_id}", headers=AUTH)
    assert response.status_code == 404 and response.get_json()["error"] == "not_found"


def test_admin_api_dead_letters_are_listed_and_grouped_by_reason(admin, admin_rt, target):
    long_reason = "product description " + "x" * 300
    target.fail_next(
        *(
            FixAndReplayError(reason, status=400)
            for reason in ("review text rejected", "review text rejected", long_reason)
        )
    )
    for _ in range(4):
        _deliver(admin, trustoo_review())
    build_worker(admin_rt).drain()
    letters = admin.get("/admin/api/dead-letters?limit=2", headers=AUTH).get_json()
    assert len(letters["events"]) == 2 and letters["next_before"] == letters["events"][-1]["id"]
    assert all(event["status"] == "dead" for event in letters["events"])
    assert sorted(letters["by_reason"].values()) == [1, 2]
    assert all(len(reason) <= 120 for reason in letters["by_reason"])
    by_text = {("rejected" if "review text rejected" in r else "long"): n for r, n in letters["by_reason"].items()}
    assert by_text == {"rejected": 2, "long": 1}
    other = admin.get("/admin/api/dead-letters?source=wix", headers=AUTH).get_json()
    assert other == {"events": [], "next_before": None, "by_reason": {}}


# --- settling -------------------------------------------------------------------------------------


@pytest.mark.parametrize("by", ["row id", "platform event id"])
def test_admin_api_replay_by_id_turns_a_dead_letter_done_after_a_drain(admin, admin_rt, target, by):
    target.fail_next(FixAndReplayError("review text rejected", status=400))
    _deliver(admin, trustoo_review())
    build_worker(admin_rt).drain()
    [dead] = admin.get("/admin/api/dead-letters", headers=AUTH).get_json()["events"]
    reference = dead["id"] if by == "row id" else dead["event_id"]
    response = admin.post("/admin/api/events/replay", json={"ids": [reference]}, headers=AUTH)
    assert response.status_code == 200 and response.get_json() == {"replayed": 1}
    build_worker(admin_rt).drain()
    event = admin.get(f"/admin/api/events/{dead['id']}", headers=AUTH).get_json()
    assert event["status"] == "done" and [a["status"] for a in event["attempt_history"]] == ["dead", "done"]
    assert len(target.reviews) == 1


def test_admin_api_replay_of_dead_letters_by_error_text_queues_only_those(admin, admin_rt, target):
    target.fail_next(
        FixAndReplayError("review text rejected", status=400), FixAndReplayError("rating out of range", status=400)
    )
    _deliver(admin, trustoo_review())
    _deliver(admin, trustoo_review())
    build_worker(admin_rt).drain()
    response = admin.post(
        "/admin/api/events/replay", json={"dead": True, "source": "trustoo", "error": "rating"}, headers=AUTH
    )
    assert response.get_json() == {"replayed": 1} and _db_counts(admin_rt.engine) == {"dead": 1, "pending": 1}


def test_admin_api_replay_of_ids_that_match_nothing_answers_404(admin):
    response = admin.post("/admin/api/events/replay", json={"ids": ["no-such-event", 424242]}, headers=AUTH)
    assert response.status_code == 404 and response.get_json()["error"] == "not_found"


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}, {"reason": 7}])
def test_admin_api_discard_without_a_reason_answers_400_and_changes_nothing(admin, admin_rt, body):
    _deliver(admin, trustoo_review())
    response = admin.post("/admin/api/events/discard", json={"ids": [1]} | body, headers=AUTH)
    assert response.status_code == 400 and "reason" in response.get_json()["message"]
    assert _db_counts(admin_rt.engine) == {"pending": 1}


def test_admin_api_discard_keeps_the_reason_and_the_worker_leaves_it(admin, admin_rt, target):
    _deliver(admin, trustoo_review())
    [event] = admin.get("/admin/api/events", headers=AUTH).get_json()["events"]
    response = admin.post(
        "/admin/api/events/discard", json={"ids": [event["id"]], "reason": "test review from QA"}, headers=AUTH
    )
    assert response.get_json() == {"discarded": 1}
    build_worker(admin_rt).drain()
    event = admin.get(f"/admin/api/events/{event['id']}", headers=AUTH).get_json()
    assert (event["status"], event["last_error"]) == ("discarded", "discarded: test review from QA")
    assert target.calls == []


def test_admin_api_count_says_what_a_bulk_replay_or_discard_of_the_filter_would_move(admin, admin_rt, target):
    target.fail_next(FixAndReplayError("review text rejected", status=400))
    _deliver(admin, trustoo_review())
    _deliver(admin, trustoo_review())
    build_worker(admin_rt).drain()
    _deliver(admin, trustoo_review())
    response = admin.get("/admin/api/events/count?source=trustoo", headers=AUTH)
    assert response.status_code == 200
    assert response.get_json() == {
        "matching": 3,
        "by_status": {"dead": 1, "done": 1, "pending": 1},
        "up_to_id": 3,
        "replayable": 2,
        "discardable": 3,
        "in_flight": 0,
    }
    nothing = admin.get("/admin/api/events/count?status=retry", headers=AUTH).get_json()
    assert (nothing["matching"], nothing["up_to_id"], nothing["by_status"]) == (0, 0, {})


def test_admin_api_replay_by_filter_takes_the_counted_events_and_no_later_one(admin, admin_rt, target):
    target.fail_next(*(FixAndReplayError("review text rejected", status=400) for _ in range(3)))
    _deliver(admin, trustoo_review())
    _deliver(admin, trustoo_review())
    build_worker(admin_rt).drain()
    count = admin.get("/admin/api/events/count?status=dead", headers=AUTH).get_json()
    _deliver(admin, trustoo_review())
    build_worker(admin_rt).drain()  # a third dead letter, after the count
    body = {"filter": {"status": "dead"}, "up_to_id": count["up_to_id"]}
    response = admin.post("/admin/api/events/replay", json=body, headers=AUTH)
    assert response.status_code == 200 and response.get_json() == {"replayed": count["replayable"], "in_flight": 0}
    assert _db_counts(admin_rt.engine) == {"pending": 2, "dead": 1}
    unbounded = admin.post("/admin/api/events/replay", json={"filter": {"status": "dead"}}, headers=AUTH)
    assert unbounded.get_json() == {"replayed": 1, "in_flight": 0}  # without up_to_id: all matching now


def test_admin_api_discard_by_filter_keeps_the_reason_and_leaves_events_in_flight(admin, admin_rt):
    for _ in range(3):
        _deliver(admin, trustoo_review())
    [claimed] = queue.claim(admin_rt.engine, "w1", now=admin_rt.clock(), lease_s=60)
    body = {"filter": {"account": TRUSTOO_PUBLIC_TOKEN, "q": "lovelace"}, "reason": "test reviews"}
    response = admin.post("/admin/api/events/discard", json=body, headers=AUTH)
    assert response.status_code == 200 and response.get_json() == {"discarded": 2, "in_flight": 1}
    assert _db_counts(admin_rt.engine) == {"discarded": 2, "processing": 1}
    event = admin.get(f"/admin/api/events/{claimed.id}", headers=AUTH).get_json()
    assert event["status"] == "processing"


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("GET", "/events?limit=abc", None, "limit"),
        ("GET", "/events?limit=0", None, "limit"),
        ("GET", "/events?limit=501", None, "limit"),
        ("GET", "/events?before=-3", None, "before"),
        ("GET", "/events?before=100000000000000000000", None, "before"),
        ("GET", "/events?q=%00", None, "q"),
        ("GET", "/events?q=" + "x" * 60_000, None, "q"),  # SQLite: "LIKE pattern too complex"
        ("GET", "/events/count?q=" + "x" * 201, None, "q"),
        ("POST", "/events/replay", {"dead": True, "error": "x" * 60_000}, "error"),
        ("POST", "/events/replay", {"filter": {"q": "x" * 201}}, "q"),
        ("GET", "/events?since=yesterday", None, "since"),
        ("GET", "/events?until=2026-13-01", None, "until"),
        ("GET", "/events?until=9999-12-31T23:59:59-01:00", None, "until"),
        ("GET", "/events?status=sleeping", None, "status"),
        ("GET", "/dead-letters?limit=abc", None, "limit"),
        ("POST", "/events/replay", b"not json", "body"),
        ("POST", "/events/replay", b'["a list"]', "body"),
        ("POST", "/events/replay", {"ids": "5"}, "ids"),
        ("POST", "/events/replay", {"ids": []}, "ids"),
        ("POST", "/events/replay", {"ids": [True]}, "ids"),
        ("POST", "/events/replay", {"ids": [0]}, "ids"),
        ("POST", "/events/replay", {"ids": [10**20]}, "ids"),
        ("POST", "/events/replay", {"ids": ["100000000000000000000"]}, "ids"),
        ("POST", "/events/replay", {"ids": [1], "dead": True}, "ids"),
        ("POST", "/events/replay", {"dead": "yes"}, "dead"),
        ("POST", "/events/replay", {"dead": True, "since": "yesterday"}, "since"),
        ("POST", "/events/replay", {"dead": True, "source": ["trustoo"]}, "source"),
        ("POST", "/events/discard", {"ids": [{"id": 1}], "reason": "spam"}, "ids"),
        ("POST", "/events/discard", {"ids": [1], "reason": "spam\x00"}, "reason"),
        ("GET", "/events/count?since=yesterday", None, "since"),
        ("POST", "/events/replay", {"ids": [1], "filter": {"status": "dead"}}, "ids"),
        ("POST", "/events/replay", {"dead": True, "filter": {"status": "dead"}}, "ids"),
        ("POST", "/events/replay", {"filter": "status=dead"}, "filter"),
        ("POST", "/events/replay", {"filter": {}}, "filter"),
        ("POST", "/events/replay", {"filter": {"stauts": "dead"}}, "filter"),
        ("POST", "/events/replay", {"filter": {"status": "sleeping"}}, "status"),
        ("POST", "/events/replay", {"filter": {"status": ["dead"]}}, "status"),
        ("POST", "/events/replay", {"filter": {"status": "dead"}, "up_to_id": "7"}, "up_to_id"),
        ("POST", "/events/replay", {"filter": {"status": "dead"}, "up_to_id": -1}, "up_to_id"),
        ("POST", "/events/replay", {"filter": {"status": "dead"}, "up_to_id": True}, "up_to_id"),
        ("POST", "/events/discard", {"filter": {"source": "trustoo"}}, "reason"),
        ("POST", "/events/discard", {"filter": {"source": "trustoo"}, "ids": [1], "reason": "x"}, "ids"),
        ("POST", "/events/discard", {"filter": {"since": "soon"}, "reason": "spam"}, "since"),
        ("POST", "/resyncs", b"", "body"),
        ("POST", "/resyncs", {}, "source"),
        ("POST", "/resyncs", {"source": "shopify"}, "source"),
        ("POST", "/resyncs", {"source": "trustoo", "dry_run": "yes"}, "dry_run"),
        ("POST", "/resyncs", {"source": "trustoo", "restart": 1}, "restart"),
        ("POST", "/resyncs", {"source": "trustoo", "since": "yesterday"}, "since"),
        ("POST", "/resyncs", {"source": "trustoo", "until": 20261120}, "until"),
    ],
)
def test_admin_api_bad_input_answers_400_json_naming_the_field(admin, method, path, body, field):
    options = {"json": body} if isinstance(body, dict) else {"data": body}
    response = admin.open(f"/admin/api{path}", method=method, headers=AUTH, **options)
    assert response.status_code == 400, response.get_data(as_text=True)
    answer = response.get_json()
    assert answer["error"] == "bad_request" and answer["message"].startswith(field)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"ids": [1], "dead": True, "since": "yesterday"}, "ids, dead, filter:"),  # the shape before its fields
        ({"dead": "yes", "ids": "5"}, "dead:"),
        ({"filter": {"stauts": "dead"}, "up_to_id": -1}, "filter:"),
        ({"filter": {"status": "dead"}, "up_to_id": -1}, "up_to_id:"),
        ({"dead": True, "source": ["trustoo"], "since": "yesterday"}, "source:"),
    ],
)
def test_admin_api_replay_names_the_first_wrong_field_in_the_order_it_reads_them(admin, body, message):
    response = admin.post("/admin/api/events/replay", json=body, headers=AUTH)
    assert response.status_code == 400 and response.get_json()["message"].startswith(message)


def test_admin_api_replay_by_ids_ignores_the_fields_of_the_other_shapes(admin):
    body = {"ids": ["no-such-event"], "since": "yesterday", "error": 5, "up_to_id": "x", "source": ["x"]}
    response = admin.post("/admin/api/events/replay", json=body, headers=AUTH)
    assert response.status_code == 404
    assert response.get_json() == {"error": "not_found", "message": "ids: no event matches"}


def test_admin_api_discard_asks_for_a_reason_before_it_reads_the_ids(admin):
    response = admin.post("/admin/api/events/discard", json={"ids": "5", "reason": " "}, headers=AUTH)
    assert response.status_code == 400 and response.get_json()["message"].startswith("reason:")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_admin_api_json_body_is_read_whatever_its_content_type(admin, content_type):
    response = admin.post(
        "/admin/api/events/replay", data=b'{"ids": ["no-such-event"]}', content_type=content_type, headers=AUTH
    )
    assert response.status_code == 404 and response.get_json()["message"] == "ids: no event matches"


def test_admin_api_repeated_query_field_takes_its_first_value(admin):
    response = admin.get("/admin/api/events?status=dead&status=sleeping&limit=2&limit=abc", headers=AUTH)
    assert response.status_code == 200 and response.get_json() == {"events": [], "next_before": None}


# --- resyncs --------------------------------------------------------------------------------------


def test_admin_api_resync_is_queued_and_the_worker_runs_it_and_reports_its_counts(synced_admin, worker, trustoo, ct):
    emulator, _ = ct
    for rating in (5, 4, 3):
        trustoo.add_review(TRUSTOO_PUBLIC_TOKEN, product_id=PRODUCT, rating=rating)
    response = synced_admin.post("/admin/api/resyncs", json={"source": "trustoo"}, headers=AUTH)
    assert response.status_code == 202
    assert response.get_json() == {
        "started": [{"source": "trustoo", "account": TRUSTOO_PUBLIC_TOKEN}],
        "progress": "/admin/api/resyncs?source=trustoo",
    }
    [queued] = _resyncs(synced_admin)
    assert (queued["state"], queued["running"], queued["started_at"]) == ("queued", True, None)
    assert emulator.reviews == {}, "the web process calls no platform"

    assert worker.run_queued_runs() == 1
    [entry] = _resyncs(synced_admin)
    assert (entry["source"], entry["account"], entry["state"], entry["running"], entry["error"]) == (
        "trustoo",
        TRUSTOO_PUBLIC_TOKEN,
        "done",
        False,
        None,
    )
    assert entry["finished_at"] is not None and entry["position"] is None and entry["run_id"] == queued["run_id"]
    assert entry["counts"]["counts"]["seen"] == 3 and entry["counts"]["counts"]["created"] == 3
    assert len(emulator.reviews) == 3
    assert _resyncs(synced_admin, "?source=wix") == []


def test_admin_api_resync_started_in_one_web_process_is_seen_and_run_from_another(
    synced_admin, ct_environ, trustoo, ct
):
    trustoo.add_review(TRUSTOO_PUBLIC_TOKEN, product_id=PRODUCT, rating=5)
    assert synced_admin.post("/admin/api/resyncs", json={"source": "trustoo"}, headers=AUTH).status_code == 202
    other = create_app(ct_environ | {"ADMIN_TOKEN": TOKEN})  # another gunicorn worker, dyno or a restart
    try:
        [seen] = _resyncs(other.test_client())
        assert (seen["state"], seen["running"]) == ("queued", True)
        busy = other.test_client().post("/admin/api/resyncs", json={"source": "trustoo"}, headers=AUTH)
        assert busy.status_code == 409
        assert build_worker(services_of(other)).run_queued_runs() == 1
    finally:
        services_of(other).engine.dispose()
    [entry] = _resyncs(synced_admin)
    assert entry["state"] == "done" and entry["counts"]["counts"]["created"] == 1
    assert len(ct[0].reviews) == 1


def test_admin_api_second_resync_start_while_one_is_queued_answers_409(synced_admin, worker, trustoo):
    for _ in range(3):
        trustoo.add_review(TRUSTOO_PUBLIC_TOKEN, product_id=PRODUCT, rating=5)
    start = {"source": "trustoo", "account": TRUSTOO_PUBLIC_TOKEN}
    assert synced_admin.post("/admin/api/resyncs", json=start, headers=AUTH).status_code == 202
    second = synced_admin.post("/admin/api/resyncs", json=start, headers=AUTH)
    assert second.status_code == 409 and second.get_json() == {
        "error": "conflict",
        "message": f"a resync of trustoo {TRUSTOO_PUBLIC_TOKEN} is queued or running already",
    }
    [queued] = _resyncs(synced_admin)
    assert queued["running"] is True
    assert worker.run_queued_runs() == 1
    [entry] = _resyncs(synced_admin)
    assert entry["counts"]["counts"]["created"] == 3
    assert synced_admin.post("/admin/api/resyncs", json=start, headers=AUTH).status_code == 202  # free again


def test_admin_api_resync_of_a_worker_that_died_shows_abandoned_and_is_taken_over(
    synced_admin_app, synced_admin, worker, trustoo, ct
):
    trustoo.add_review(TRUSTOO_PUBLIC_TOKEN, product_id=PRODUCT, rating=5)
    services = services_of(synced_admin_app)
    assert synced_admin.post("/admin/api/resyncs", json={"source": "trustoo"}, headers=AUTH).status_code == 202
    silent_since = services.clock() - timedelta(minutes=10)  # claimed, then its worker was killed: no heartbeat since
    with transaction(services.engine) as session:
        session.execute(
            update(Run).values(
                state="running", worker_id="dead-host:4242:abcdef", started_at=silent_since, updated_at=silent_since
            )
        )
    [abandoned] = _resyncs(synced_admin)
    assert (abandoned["state"], abandoned["running"]) == ("abandoned", True)
    assert synced_admin.post("/admin/api/resyncs", json={"source": "trustoo"}, headers=AUTH).status_code == 409

    assert worker.run_queued_runs() == 1
    [entry] = _resyncs(synced_admin)
    assert entry["state"] == "done" and entry["counts"]["counts"]["created"] == 1
    assert entry["started_at"] == silent_since.isoformat()  # the same run, taken over
    with transaction(services.engine) as session:
        assert session.execute(select(Run.worker_id)).scalar_one() == worker.id
    assert len(ct[0].reviews) == 1


def test_admin_api_running_resync_with_a_fresh_heartbeat_is_left_to_its_worker(synced_admin_app, synced_admin, worker):
    services = services_of(synced_admin_app)
    assert synced_admin.post("/admin/api/resyncs", json={"source": "trustoo"}, headers=AUTH).status_code == 202
    with transaction(services.engine) as session:
        session.execute(
            update(Run).values(state="running", worker_id="busy-host:1:abcdef", updated_at=services.clock())
        )
    assert worker.run_queued_runs() == 0
    [entry] = _resyncs(synced_admin)
    assert (entry["state"], entry["running"]) == ("running", True)


def test_admin_api_dry_run_resync_writes_nothing_and_reports_what_it_would_do(synced_admin, worker, trustoo, ct):
    emulator, _ = ct
    trustoo.add_review(TRUSTOO_PUBLIC_TOKEN, product_id=PRODUCT, rating=5)
    response = synced_admin.post("/admin/api/resyncs", json={"source": "trustoo", "dry_run": True}, headers=AUTH)
    assert response.status_code == 202
    worker.run_queued_runs()
    [entry] = _resyncs(synced_admin)
    assert entry["dry_run"] is True and entry["counts"]["counts"]["would_write"] == 1
    assert emulator.reviews == {}


def test_admin_api_resync_that_fails_reports_the_error(synced_admin, worker):
    start = {"source": "trustoo", "account": "unknown-shop-public-token"}
    assert synced_admin.post("/admin/api/resyncs", json=start, headers=AUTH).status_code == 202
    worker.run_queued_runs()
    [entry] = _resyncs(synced_admin)
    assert entry["account"] == "unknown-shop-public-token" and entry["running"] is False
    assert entry["state"] == "failed" and "no credentials" in entry["error"] and entry["finished_at"] is not None


def test_admin_api_resync_that_crashes_records_the_error_type_and_no_secret(
    synced_admin_app, synced_admin, worker, ct_environ
):
    services = services_of(synced_admin_app)
    secret = ct_environ["CTP_CLIENT_SECRET"]
    with transaction(services.engine) as session:  # options no code writes: reading them fails outside our error tree
        session.execute(
            insert(Run).values(
                kind="resync",
                source="trustoo",
                account=TRUSTOO_PUBLIC_TOKEN,
                options=f'{{"since": "{secret}"}}',
                state="queued",
                requested_at=services.clock(),
                updated_at=services.clock(),
            )
        )
    assert worker.run_queued_runs() == 1
    [entry] = _resyncs(synced_admin)
    assert (entry["state"], entry["error"]) == ("failed", "ValueError (details in the service log)")
    assert secret not in str(entry)
