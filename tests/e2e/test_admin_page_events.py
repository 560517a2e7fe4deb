"""/admin events, dead letters and waiting events: find them, read them without secrets, replay, discard, map."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.bootstrap import build_worker
from app.core.db import transaction
from app.core.models import InboxEvent, ProductMapping
from connectors.base import FixAndReplayError, ProductNotFound
from tests.builders import TRUSTOO_PRIVATE_TOKEN, TRUSTOO_PUBLIC_TOKEN, trustoo_review
from tests.e2e.admin_page_helpers import db_counts, deliver, only_event, post_form, texts

SECRET_KEY = "test-secret-key-0123456789abcdef"  # the environ fixture's


def _statuses(engine) -> dict[str, str]:
    with transaction(engine) as session:
        return dict(session.execute(select(InboxEvent.subject_id, InboxEvent.status)).all())


def _listed(page, query: str) -> list[str]:
    response = page.get(f"/admin/events?{query}")
    assert response.status_code == 200, response.get_data(as_text=True)
    html = response.get_data(as_text=True)
    return [row_id for row_id in texts(html, "a", cls="event-link")]


# --- events ---------------------------------------------------------------------------------------


def test_admin_page_events_filter_by_status_source_account_time_and_text(page, page_services):
    first, second = trustoo_review(), trustoo_review()
    deliver(page, first)
    deliver(page, second)
    build_worker(page_services).drain()
    deliver(page, trustoo_review())
    assert _listed(page, "") == ["3", "2", "1"]
    assert _listed(page, "status=pending") == ["3"] and _listed(page, "status=done") == ["2", "1"]
    assert _listed(page, "source=wix") == [] and _listed(page, f"account={TRUSTOO_PUBLIC_TOKEN}") == ["3", "2", "1"]
    assert _listed(page, f"q={first['id']}") == ["1"] and _listed(page, f"status=done&q={second['id']}") == ["2"]
    assert _listed(page, "since=2000-01-01T00:00") == ["3", "2", "1"] and _listed(page, "until=2000-01-01") == []
    html = page.get("/admin/events?status=done").get_data(as_text=True)
    assert texts(html, "form", id="event-filter") and 'value="done" selected' in html


def test_admin_page_events_page_on_with_before(page):
    for _ in range(52):
        deliver(page, trustoo_review())
    html = page.get("/admin/events").get_data(as_text=True)
    assert len(texts(html, "a", cls="event-link")) == 50
    [older] = texts(html, "a", id="next-page")
    assert older and _listed(page, "before=3") == ["2", "1"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=sleeping", "status"),
        ("since=yesterday", "since"),
        ("before=abc", "before"),
        ("q=%00", "q"),
        ("q=" + "x" * 60_000, "q"),
    ],
)
def test_admin_page_events_bad_filter_answers_400_naming_the_field(page, query, field):
    response = page.get(f"/admin/events?{query}")
    assert response.status_code == 400 and response.mimetype == "text/html"
    assert texts(response.get_data(as_text=True), id="error-message")[0].startswith(field)


def test_admin_page_event_detail_shows_payload_attempts_ledger_and_key_without_secrets(page, page_services):
    review = trustoo_review(
        title=f"leaked {TRUSTOO_PRIVATE_TOKEN} and {SECRET_KEY}",
        access_token="a-token-value-0123456789",
        reply={"signature": "sig-value-0123"},
    )
    deliver(page, review)
    build_worker(page_services).drain()
    html = page.get("/admin/events/1").get_data(as_text=True)
    assert texts(html, id="event-status") == ["done"]
    [payload] = texts(html, "pre", id="payload")
    assert f'"id": {review["id"]}' in payload and '"rating": 5' in payload  # pretty-printed JSON
    for secret in (TRUSTOO_PRIVATE_TOKEN, SECRET_KEY, "a-token-value-0123456789", "sig-value-0123"):
        assert secret not in html
    assert payload.count("[redacted]") == 4
    assert "done" in texts(html, "table", id="attempts")[0]
    [key] = texts(html, id="commercetools-key")
    assert key.startswith("trustoo-") and key in texts(html, "table", id="ledger")[0]  # the ledger's key


def test_admin_page_unknown_event_answers_404(page):
    response = page.get("/admin/events/999999")
    assert response.status_code == 404 and "no event with id 999999" in response.get_data(as_text=True)


def test_admin_page_replay_queues_a_dead_letter_again_and_says_so(page, page_services, target):
    target.fail_next(FixAndReplayError("review text rejected", status=400))
    deliver(page, trustoo_review())
    build_worker(page_services).drain()
    assert only_event(page_services.engine).status == "dead"
    response = post_form(page, "/admin/events/1", "/admin/events/1/replay")
    assert response.status_code == 302 and response.headers["Location"] == "/admin/events/1"
    assert only_event(page_services.engine).status == "pending"
    assert texts(page.get("/admin/events/1").get_data(as_text=True), "div", cls="flash success")
    build_worker(page_services).drain()
    assert only_event(page_services.engine).status == "done"


def test_admin_page_discard_keeps_the_reason(page, page_services):
    deliver(page, trustoo_review())
    response = post_form(page, "/admin/events/1", "/admin/events/1/discard", {"reason": "a test review from QA"})
    assert response.status_code == 302 and response.headers["Location"] == "/admin/events/1"
    event = only_event(page_services.engine)
    assert (event.status, event.last_error) == ("discarded", "discarded: a test review from QA")


@pytest.mark.parametrize("data", [{}, {"reason": ""}, {"reason": "   "}])
def test_admin_page_discard_without_a_reason_is_refused_with_400_and_changes_nothing(page, page_services, data):
    deliver(page, trustoo_review())
    response = post_form(page, "/admin/events/1", "/admin/events/1/discard", data)
    assert response.status_code == 400 and "reason" in texts(response.get_data(as_text=True), id="error-message")[0]
    assert db_counts(page_services.engine) == {"pending": 1}


# --- dead letters ---------------------------------------------------------------------------------


def test_admin_page_dead_letters_are_grouped_by_reason_and_a_group_replays_alone(page, page_services, target):
    target.fail_next(
        FixAndReplayError("review text rejected", status=400),
        FixAndReplayError("review text rejected", status=400),
        FixAndReplayError("rating out of range", status=400),
    )
    reviews = [trustoo_review() for _ in range(3)]
    for review in reviews:
        deliver(page, review)
    build_worker(page_services).drain()
    html = page.get("/admin/dead-letters").get_data(as_text=True)
    headings = texts(html, "h3")
    assert len(headings) == 2 and "review text rejected" in headings[0] and headings[0].endswith("2")
    assert "rating out of range" in headings[1] and headings[1].endswith("1")
    assert len(texts(html, "tr", data_event_id="1")) == 1 and len(texts(html, "form", cls="replay-group")) == 2
    [reason] = [value for value in texts(html, "input", name="reason") if "rating" in value]

    response = post_form(page, "/admin/dead-letters", "/admin/dead-letters/replay", {"reason": reason})
    assert response.status_code == 302 and response.headers["Location"] == "/admin/dead-letters"
    assert sorted(_statuses(page_services.engine).values()) == ["dead", "dead", "pending"]
    assert _statuses(page_services.engine)[str(reviews[2]["id"])] == "pending"


# --- waiting for a product ------------------------------------------------------------------------


def test_admin_page_mapping_a_product_releases_its_waiting_events(page, page_services, target):
    target.fail_next(
        *(
            ProductNotFound(product, f"no commercetools product for {product}")
            for product in ("8000000000001", "8000000000001", "8000000000002")
        )
    )
    reviews = [trustoo_review(product_id=p) for p in ("8000000000001", "8000000000001", "8000000000002")]
    for review in reviews:
        deliver(page, review)
    build_worker(page_services).drain()
    html = page.get("/admin/waiting").get_data(as_text=True)
    account = f"trustoo/{TRUSTOO_PUBLIC_TOKEN}"
    assert texts(html, "span", cls="waiting-count") == ["2", "1"]
    assert texts(html, "section", data_product=f"{account}/8000000000001")

    response = post_form(
        page,
        "/admin/waiting",
        "/admin/waiting/map",
        {
            "source": "trustoo",
            "account": TRUSTOO_PUBLIC_TOKEN,
            "source_product_id": "8000000000001",
            "product_key": "mug-green",
        },
    )
    assert response.status_code == 302 and response.headers["Location"] == "/admin/waiting"
    [flashed] = texts(page.get("/admin/waiting").get_data(as_text=True), "div", cls="flash success")
    assert "2 waiting event(s) released" in flashed
    statuses = _statuses(page_services.engine)
    assert [statuses[str(r["id"])] for r in reviews] == ["pending", "pending", "waiting_for_product"]
    with transaction(page_services.engine) as session:
        mapping = session.execute(select(ProductMapping)).scalar_one()
    assert (mapping.source_product_id, mapping.product_key, mapping.target) == (
        "8000000000001",
        "mug-green",
        "commercetools",
    )
    build_worker(page_services).drain()
    assert [_statuses(page_services.engine)[str(r["id"])] for r in reviews] == ["done", "done", "waiting_for_product"]


@pytest.mark.parametrize(
    "data",
    [
        {"source": "trustoo", "account": TRUSTOO_PUBLIC_TOKEN, "source_product_id": "1"},
        {
            "source": "trustoo",
            "account": TRUSTOO_PUBLIC_TOKEN,
            "source_product_id": "1",
            "product_key": "a",
            "product_id": "b",
        },
        {"source": "trustoo", "source_product_id": "1", "product_key": "mug"},
    ],
)
def test_admin_page_mapping_without_exactly_one_product_answers_400(page, page_services, data):
    response = post_form(page, "/admin/waiting", "/admin/waiting/map", data)
    assert response.status_code == 400
    assert texts(response.get_data(as_text=True), id="error-message")[0].startswith(("give exactly", "source"))
