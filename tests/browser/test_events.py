"""The events list: filtered from its form, each row leading to the event's page; every event the
filter matches replayed, discarded or exported at once; accounts shown by their shop's domain."""

from __future__ import annotations

import csv
import re

from tests.browser.conftest import expect, sign_in
from tests.builders import TRUSTOO_PUBLIC_TOKEN, trustoo_review


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


def test_dead_letters_replayed_in_bulk_from_the_filter_are_processed_into_commercetools(page, service, screenshots):
    first, first_review = service.dead_letter()
    _, second_review = service.dead_letter()
    sign_in(page)
    page.click("a#nav-events")
    page.locator("#event-filter select[name=status]").select_option("dead")
    page.locator("#event-filter [type=submit]").click()
    expect(page.locator("#events tr[data-event-id]")).to_have_count(2)

    page.click("a#bulk-replay")
    expect(page).to_have_url(re.compile(r"/admin/events/replay\?status=dead$"))
    expect(page.locator("#bulk-matching")).to_have_text("2")
    expect(page.locator("#bulk-count")).to_have_text("2")
    expect(page.locator("#bulk-filter")).to_have_text("status dead")
    expect(page.locator(f"#bulk-sample tr[data-event-id='{first.id}']")).to_be_visible()
    page.screenshot(path=screenshots / "10-bulk-replay.png", full_page=True)

    page.click("#bulk-form button[type=submit]")
    expect(page).to_have_url(re.compile(r"/admin/events\?status=dead$"))
    expect(page.locator(".flash.success")).to_have_text("2 event(s) queued again.")
    service.wait_for_status(first_review, "done")
    service.wait_for_status(second_review, "done")
    for review in (first_review, second_review):
        assert service.emulator.review_by_key(service.key(review)) is not None


def test_events_discarded_in_bulk_keep_the_reason_the_form_insists_on(page, service):
    waiting = [trustoo_review(product_id="8000000000001") for _ in range(2)]
    service.deliver(*waiting)
    for review in waiting:
        service.wait_for_status(review, "waiting_for_product")
    sign_in(page)
    page.goto("/admin/events?status=waiting_for_product")
    page.click("a#bulk-discard")
    expect(page.locator("#bulk-count")).to_have_text("2")

    page.click("#bulk-form button[type=submit]")  # no reason: the browser does not send the form
    expect(page).to_have_url(re.compile(r"/admin/events/discard\?"))
    assert {service.event(review).status for review in waiting} == {"waiting_for_product"}

    page.fill("#bulk-form input[name=reason]", "products we no longer sell")
    page.click("#bulk-form button[type=submit]")
    expect(page.locator(".flash.success")).to_contain_text("2 event(s) discarded (products we no longer sell).")
    expect(page.locator("#events tr[data-event-id]")).to_have_count(0)
    for review in waiting:
        row = service.event(review)
        assert (row.status, row.last_error) == ("discarded", "discarded: products we no longer sell")


def test_export_links_carry_the_filter_and_download_the_matching_events(page, service, tmp_path):
    synced = trustoo_review(author="=Grace Hopper")
    service.deliver(synced)
    done = service.wait_for_status(synced, "done")
    service.dead_letter()
    sign_in(page)
    page.goto("/admin/events?status=done")
    expect(page.locator("a#export-json")).to_have_attribute("href", "/admin/events/export?format=json&status=done")

    with page.expect_download() as started:
        page.click("a#export-csv")
    download = started.value
    assert re.fullmatch(r"reviewbridge-events-\d{8}T\d{6}Z\.csv", download.suggested_filename)
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    [exported] = list(csv.DictReader(saved.open(encoding="utf-8", newline="")))
    assert (int(exported["id"]), exported["status"], exported["author"]) == (done.id, "done", "'=Grace Hopper")
    assert exported["account_label"] == "example-store.myshopify.com"


def test_events_show_the_shop_domain_and_filter_by_an_account_chosen_by_it(page, service):
    synced = trustoo_review()
    service.deliver(synced)
    service.wait_for_status(synced, "done")
    sign_in(page)
    page.click("a#nav-events")
    account = page.locator("#events td span.account").first
    expect(account).to_have_text("example-store.myshopify.com")
    expect(account).to_have_attribute("title", f"trustoo account {TRUSTOO_PUBLIC_TOKEN}")

    page.locator("#event-filter select[name=account]").select_option(label="example-store.myshopify.com · trustoo")
    page.locator("#event-filter [type=submit]").click()
    expect(page).to_have_url(re.compile(r"[?&]account=GfKu22TCaj4gULtrA3%2FOgA%3D%3D"))
    expect(page.locator("#events tr[data-event-id]")).to_have_count(1)
