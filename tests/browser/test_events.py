"""The events list: filtered from its form, each row leading to the event's page."""

from __future__ import annotations

import re

from tests.browser.conftest import expect, sign_in
from tests.builders import trustoo_review


def test_events_filtered_by_status_list_only_those_events(page, service):
    synced = trustoo_review()
    service.deliver(synced)
    done = service.wait_for_status(synced, "done")
    dead, _ = service.dead_letter()
    sign_in(page)
    page.click("a#nav-events")
    expect(page.locator("#events tr[data-event-id]")).to_have_count(2)

    page.locator("#event-filter select[name=status]").select_option("dead")
    page.locator("#event-filter [type=submit]").click()
    expect(page.locator("#events tr[data-event-id]")).to_have_count(1)
    expect(page.locator(f"#events tr[data-event-id='{dead.id}']")).to_be_visible()
    expect(page).to_have_url(re.compile(r"[?&]status=dead\b"))

    page.goto("/admin/events?status=done")
    page.click(f"#events tr[data-event-id='{done.id}'] a.event-link")
    expect(page.locator("#event-status")).to_have_text("done")


def test_event_discarded_from_its_page_is_settled_with_the_reason(page, service):
    waiting = trustoo_review(product_id="8000000000001")
    service.deliver(waiting)
    row = service.wait_for_status(waiting, "waiting_for_product")
    sign_in(page)
    page.goto(f"/admin/events/{row.id}")
    page.fill("#discard-form input[name=reason]", "test review from QA")
    page.click("#discard-form button[type=submit]")
    expect(page.locator(".flash.success")).to_be_visible()
    expect(page.locator("#event-status")).to_have_text("discarded")
    expect(page).to_have_url(re.compile(f"/admin/events/{row.id}$"))
    discarded = service.event_by_id(row.id)
    assert discarded.status == "discarded" and "test review from QA" in discarded.last_error
