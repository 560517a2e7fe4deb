"""/admin/events, all at once: replay or discard every event the filter matches after a count, export
them as CSV or JSON, and accounts shown by their label (the dashboard's and the events' filter too)."""

from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy import select, update

from app.bootstrap import build_worker
from app.core import accounts, export, queue
from app.core.db import transaction
from app.core.models import InboxEvent
from connectors.base import FixAndReplayError, ProductNotFound
from tests.builders import (
    TRUSTOO_PRIVATE_TOKEN,
    TRUSTOO_PUBLIC_TOKEN,
    trustoo_body,
    trustoo_headers,
    trustoo_review,
)
from tests.e2e.admin_page_helpers import csrf_token, db_counts, deliver, texts

_FORM_FIELDS = ("status", "source", "account", "since", "until", "q", "up_to_id", "expected")
OTHER_SHOP, OTHER_PRIVATE_TOKEN = "second-shop-public-token", "second-shop-private-0123456789"


def _statuses(engine) -> dict[str, str]:
    with transaction(engine) as session:
        return dict(session.execute(select(InboxEvent.subject_id, InboxEvent.status)).all())


def _dead_letters(page, page_services, target, count: int) -> list[dict]:
    """`count` reviews commercetools refuses for good, and one it takes."""
    target.fail_next(*(FixAndReplayError("review text rejected", status=400) for _ in range(count)))
    reviews = [trustoo_review() for _ in range(count + 1)]
    for review in reviews:
        deliver(page, review)
    build_worker(page_services).drain()
    return reviews


def _confirm(page, url: str) -> tuple[str, dict[str, str]]:
    """The count page, and what its form sends (as a browser would: every field it holds)."""
    response = page.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)
    html = response.get_data(as_text=True)
    fields = {name: values[0] for name in _FORM_FIELDS if (values := texts(html, "input", name=name))}
    return html, fields | {"csrf_token": csrf_token(html)}


def _flash(page, location: str) -> str:
    html = page.get(location).get_data(as_text=True)
    return " ".join(texts(html, "div", cls="flash success") + texts(html, "div", cls="flash error"))


def _deliver_as(client, public_token: str, private_token: str, *items) -> None:
    body = trustoo_body(*items)
    headers = trustoo_headers(body, public_token=public_token, private_token=private_token)
    assert client.post("/webhooks/trustoo/review-created", data=body, headers=headers).status_code == 200


# --- bulk replay and discard ----------------------------------------------------------------------


def test_admin_page_bulk_replay_shows_the_count_then_replays_exactly_the_dead_letters(page, page_services, target):
    _dead_letters(page, page_services, target, 2)
    listing = page.get("/admin/events?status=dead&source=trustoo").get_data(as_text=True)
    [replay_link] = [a for a in texts(listing, "a", id="bulk-replay")]
    assert replay_link and 'href="/admin/events/replay?status=dead&amp;source=trustoo"' in listing

    html, form = _confirm(page, "/admin/events/replay?status=dead&source=trustoo")
    assert texts(html, id="bulk-matching") == ["2"] and texts(html, id="bulk-count") == ["2"]
    assert texts(html, id="bulk-filter") == ["status dead · source trustoo"]
    assert len(texts(html, "tr", data_event_id="1")) == 1 and len(texts(html, "table", id="bulk-sample")) == 1
    assert (form["status"], form["source"], form["up_to_id"], form["expected"]) == ("dead", "trustoo", "2", "2")

    response = page.post("/admin/events/replay", data=form)
    assert response.status_code == 302 and response.headers["Location"] == "/admin/events?status=dead&source=trustoo"
    assert _flash(page, response.headers["Location"]) == "2 event(s) queued again."
    assert db_counts(page_services.engine) == {"pending": 2, "done": 1}
    build_worker(page_services).drain()
    assert db_counts(page_services.engine) == {"done": 3}


def test_admin_page_bulk_discard_needs_a_reason_and_keeps_it_with_each_event(page, page_services):
    for _ in range(3):
        deliver(page, trustoo_review())
    html, form = _confirm(page, f"/admin/events/discard?account={TRUSTOO_PUBLIC_TOKEN}")
    assert texts(html, id="bulk-count") == ["3"] and texts(html, "input", name="reason") == [""]
    for reason in ("", "   "):
        refused = page.post("/admin/events/discard", data=form | {"reason": reason})
        assert refused.status_code == 400 and texts(refused.get_data(as_text=True), id="error-message")[0].startswith(
            "reason"
        )
    assert db_counts(page_services.engine) == {"pending": 3}

    response = page.post("/admin/events/discard", data=form | {"reason": "test reviews from QA"})
    assert response.status_code == 302
    assert _flash(page, response.headers["Location"]) == "3 event(s) discarded (test reviews from QA)."
    with transaction(page_services.engine) as session:
        rows = session.execute(select(InboxEvent.status, InboxEvent.last_error)).all()
    assert set(rows) == {("discarded", "discarded: test reviews from QA")}


@pytest.mark.parametrize("action", ["replay", "discard"])
def test_admin_page_bulk_action_without_the_csrf_token_is_refused_and_changes_nothing(page, page_services, action):
    deliver(page, trustoo_review())
    _, form = _confirm(page, f"/admin/events/{action}?source=trustoo")
    form.pop("csrf_token")
    response = page.post(f"/admin/events/{action}", data=form | {"reason": "spam"})
    assert response.status_code == 400 and "could not be accepted" in response.get_data(as_text=True)
    assert db_counts(page_services.engine) == {"pending": 1}


def test_admin_page_bulk_replay_says_the_queue_changed_and_leaves_events_newer_than_the_count(
    page, page_services, target
):
    reviews = _dead_letters(page, page_services, target, 2)
    _, form = _confirm(page, "/admin/events/replay?status=dead")
    queue.replay(page_services.engine, [1], now=page_services.clock())  # another operator, meanwhile
    later = trustoo_review()
    deliver(page, later)
    with transaction(page_services.engine) as session:  # and a review that died after the count
        session.execute(update(InboxEvent).where(InboxEvent.subject_id == str(later["id"])).values(status="dead"))

    response = page.post("/admin/events/replay", data=form)
    flashed = _flash(page, response.headers["Location"])
    assert flashed.startswith("1 event(s) queued again. The count said 2: the queue changed since")
    statuses = _statuses(page_services.engine)
    assert statuses[str(later["id"])] == "dead" and statuses[str(reviews[1]["id"])] == "pending"


def test_admin_page_bulk_discard_leaves_an_event_in_processing_to_its_worker_and_says_so(page, page_services):
    deliver(page, trustoo_review())
    deliver(page, trustoo_review())
    _, form = _confirm(page, "/admin/events/discard?source=trustoo")
    [claimed] = queue.claim(page_services.engine, "w1", now=page_services.clock(), lease_s=60)
    response = page.post("/admin/events/discard", data=form | {"reason": "spam"})
    assert _flash(page, response.headers["Location"]) == (
        "1 event(s) discarded (spam). The count said 2: the queue changed since (a worker took or settled some "
        "of them, or someone else acted on them). 1 event(s) being processed were left to their worker."
    )
    assert db_counts(page_services.engine) == {"processing": 1, "discarded": 1}
    assert _statuses(page_services.engine)[claimed.subject_id] == "processing"


def test_admin_page_bulk_count_page_says_which_events_are_in_flight_or_due_already(page, page_services):
    for _ in range(3):
        deliver(page, trustoo_review())
    queue.claim(page_services.engine, "w1", now=page_services.clock(), lease_s=60)
    html, _ = _confirm(page, "/admin/events/replay?source=trustoo")
    assert texts(html, id="bulk-matching") == ["3"] and texts(html, id="bulk-count") == ["0"]
    [summary] = texts(html, "section", id="bulk-summary")
    assert "2 pending event(s) are due already" in summary and "1 event(s) being processed are left" in summary
    assert not texts(html, "form", id="bulk-form") and texts(html, id="bulk-nothing")


@pytest.mark.parametrize(
    ("method", "url", "data", "field"),
    [
        ("GET", "/admin/events/replay", None, "filter"),
        ("GET", "/admin/events/discard?before=5", None, "filter"),
        ("GET", "/admin/events/replay?status=sleeping", None, "status"),
        ("GET", "/admin/events/discard?since=yesterday", None, "since"),
        ("POST", "/admin/events/replay", {"up_to_id": "1", "expected": "1"}, "filter"),
        ("POST", "/admin/events/replay", {"status": "dead", "expected": "1"}, "up_to_id"),
        ("POST", "/admin/events/replay", {"status": "dead", "up_to_id": "-1", "expected": "1"}, "up_to_id"),
        ("POST", "/admin/events/discard", {"status": "dead", "up_to_id": "1", "expected": "x"}, "expected"),
        ("POST", "/admin/events/discard", {"q": "a\x00b", "up_to_id": "1", "expected": "1"}, "q"),
    ],
)
def test_admin_page_bulk_bad_input_answers_400_naming_the_field(page, page_services, method, url, data, field):
    deliver(page, trustoo_review())
    if method == "POST":
        response = page.post(url, data=data | {"reason": "spam", "csrf_token": csrf_token(page.get("/admin/").text)})
    else:
        response = page.get(url)
    assert response.status_code == 400 and response.mimetype == "text/html"
    assert texts(response.get_data(as_text=True), id="error-message")[0].startswith(field)
    assert db_counts(page_services.engine) == {"pending": 1}


def test_admin_page_events_offer_bulk_actions_only_once_filtered_and_exports_always(page):
    deliver(page, trustoo_review())
    everything = page.get("/admin/events").get_data(as_text=True)
    assert not texts(everything, "a", id="bulk-replay") and not texts(everything, "a", id="bulk-discard")
    assert 'id="export-csv" href="/admin/events/export?format=csv"' in everything
    filtered = page.get("/admin/events?status=dead&q=Ada&before=9").get_data(as_text=True)
    assert 'href="/admin/events/discard?status=dead&amp;q=Ada"' in filtered
    assert 'id="export-json" href="/admin/events/export?format=json&amp;status=dead&amp;q=Ada"' in filtered


# --- export ---------------------------------------------------------------------------------------


def test_admin_page_export_streams_every_matching_event_as_csv_in_batches(page, page_services):
    wanted = [trustoo_review(author="Grace Hopper") for _ in range(1020)]  # more than two reads of 500
    for start in range(0, len(wanted), 170):
        deliver(page, *wanted[start : start + 170], trustoo_review())  # one other author per delivery
    response = page.get("/admin/events/export?format=csv&q=grace+HOPPER")
    assert response.status_code == 200 and response.is_streamed
    assert response.mimetype == "text/csv" and response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="reviewbridge-events-')
    assert response.headers["Content-Disposition"].endswith('.csv"')
    [header, *rows] = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert tuple(header) == export.COLUMNS
    found = [dict(zip(header, row, strict=True)) for row in rows]
    assert len(found) == 1020 and {row["author"] for row in found} == {"Grace Hopper"}
    ids = [int(row["id"]) for row in found]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 1020  # newest first, none twice
    assert found[0]["account_label"] == "example-store.myshopify.com" and found[0]["product"] == "7982301249581"
    assert found[0]["status"] == "pending" and found[0]["last_error"] == ""


def test_admin_page_export_defuses_formula_cells_and_redacts_secrets(page, page_services):
    authors = ['=HYPERLINK("http://x")', "+1", "-2", "@SUM(A1)", "\tTab", f"leak {TRUSTOO_PRIVATE_TOKEN}"]
    deliver(page, *(trustoo_review(author=author) for author in authors))
    text = page.get("/admin/events/export?format=csv").get_data(as_text=True)
    exported = {row["subject_id"]: row["author"] for row in csv.DictReader(io.StringIO(text))}
    assert sorted(exported.values()) == sorted(
        ['\'=HYPERLINK("http://x")', "'+1", "'-2", "'@SUM(A1)", "'\tTab", "leak [redacted]"]
    )
    assert TRUSTOO_PRIVATE_TOKEN not in text
    as_json = page.get("/admin/events/export?format=json").get_data(as_text=True)
    assert TRUSTOO_PRIVATE_TOKEN not in as_json
    assert '=HYPERLINK("http://x")' in [event["author"] for event in json.loads(as_json)]  # JSON runs nothing


def test_admin_page_export_as_json_holds_the_filtered_events_with_their_labels(page, page_services, target):
    _dead_letters(page, page_services, target, 2)
    response = page.get("/admin/events/export?format=json&status=dead")
    assert response.status_code == 200 and response.is_streamed and response.mimetype == "application/json"
    assert response.headers["Content-Disposition"].endswith('.json"')
    exported = json.loads(response.get_data(as_text=True))
    assert [event["id"] for event in exported] == [2, 1] and {event["status"] for event in exported} == {"dead"}
    assert list(exported[0]) == list(export.COLUMNS)
    assert exported[0]["account"] == TRUSTOO_PUBLIC_TOKEN
    assert exported[0]["account_label"] == "example-store.myshopify.com" and exported[0]["author"] == "Ada Lovelace"
    assert exported[0]["last_error"].startswith("FixAndReplayError") and exported[0]["attempts"] == 1
    assert json.loads(page.get("/admin/events/export?format=json&status=done&source=wix").get_data()) == []


@pytest.mark.parametrize(("query", "field"), [("format=xlsx", "format"), ("format=csv&until=soon", "until")])
def test_admin_page_export_bad_input_answers_400_naming_the_field(page, query, field):
    response = page.get(f"/admin/events/export?{query}")
    assert response.status_code == 400
    assert texts(response.get_data(as_text=True), id="error-message")[0].startswith(field)


# --- accounts by their label ----------------------------------------------------------------------


def test_admin_page_shows_accounts_by_the_shop_domain_with_the_token_only_in_the_tooltip(page):
    deliver(page, trustoo_review())
    events = page.get("/admin/events").get_data(as_text=True)
    assert texts(events, "span", cls="account") == ["example-store.myshopify.com"]
    assert f'title="trustoo account {TRUSTOO_PUBLIC_TOKEN}"' in events
    assert texts(events, "option", value=TRUSTOO_PUBLIC_TOKEN) == ["example-store.myshopify.com · trustoo"]
    detail = page.get("/admin/events/1").get_data(as_text=True)
    assert texts(detail, "span", cls="account") == ["example-store.myshopify.com"]
    assert TRUSTOO_PUBLIC_TOKEN not in texts(detail, "table", id="event-fields")[0]
    dashboard = page.get("/admin/").get_data(as_text=True)
    assert texts(dashboard, "span", cls="account") == ["example-store.myshopify.com"]
    assert TRUSTOO_PUBLIC_TOKEN not in texts(dashboard, "main")[0]  # only in attributes: links, tooltips, options


def test_admin_page_dead_letters_and_waiting_events_show_their_account_by_its_label(page, page_services, target):
    target.fail_next(
        FixAndReplayError("review text rejected", status=400), ProductNotFound("8000000000001", "no such product")
    )
    deliver(page, trustoo_review(), trustoo_review(product_id="8000000000001"))
    build_worker(page_services).drain()
    for url in ("/admin/dead-letters", "/admin/waiting"):
        html = page.get(url).get_data(as_text=True)
        assert texts(html, "span", cls="account") == ["example-store.myshopify.com"], url
        assert TRUSTOO_PUBLIC_TOKEN not in texts(html, "main")[0], url


def test_admin_page_account_labels_are_escaped(page, page_services):
    hostile = "<script>alert(1)</script>.myshopify.com"
    deliver(page, trustoo_review(my_shopify_domain=hostile))
    services = page_services
    assert services.vault is not None
    accounts.add(
        services.engine,
        services.vault,
        source="trustoo",
        account=OTHER_SHOP,
        secret=OTHER_PRIVATE_TOKEN,
        label='"><img src=x onerror=alert(2)>',
        now=services.clock(),
    )
    for url in ("/admin/", "/admin/events", "/admin/events/1", "/admin/events/replay?source=trustoo"):
        html = page.get(url).get_data(as_text=True)
        assert "<script>alert(1)" not in html and "<img src=x" not in html, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;.myshopify.com" in html, url


def test_admin_page_dashboard_and_events_filter_by_an_account_chosen_by_its_label(page, page_services):
    services = page_services
    assert services.vault is not None
    accounts.add(
        services.engine,
        services.vault,
        source="trustoo",
        account=OTHER_SHOP,
        secret=OTHER_PRIVATE_TOKEN,
        label="Second Shop",
        now=services.clock(),
    )
    deliver(page, trustoo_review(), trustoo_review())
    _deliver_as(page, OTHER_SHOP, OTHER_PRIVATE_TOKEN, trustoo_review(my_shopify_domain="second.myshopify.com"))

    dashboard = page.get("/admin/").get_data(as_text=True)
    assert texts(dashboard, "option", value=OTHER_SHOP) == ["Second Shop · trustoo"]  # the stored label wins
    assert texts(dashboard, id="queue-depth") == ["3"]
    mine = page.get(f"/admin/?account={OTHER_SHOP}").get_data(as_text=True)
    assert texts(mine, id="queue-depth") == ["1"] and "selected>Second Shop · trustoo" in mine
    assert texts(mine, "tbody", data_account=OTHER_SHOP) and not texts(mine, "tbody", data_account=TRUSTOO_PUBLIC_TOKEN)

    listed = page.get(f"/admin/events?account={OTHER_SHOP}").get_data(as_text=True)
    assert texts(listed, "a", cls="event-link") == ["3"]
    assert texts(listed, "span", cls="account") == ["Second Shop"]
