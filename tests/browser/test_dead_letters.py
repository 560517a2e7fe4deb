"""A dead letter, found on the page and replayed from it, is processed into commercetools."""

from __future__ import annotations

import re

from tests.browser.conftest import expect, reload_until_text, sign_in


def test_dead_letter_is_listed_under_its_reason(page, service):
    dead, _ = service.dead_letter()
    sign_in(page)
    page.click("a#nav-dead-letters")
    group = page.locator("section.reason-group", has=page.locator(f"tr[data-event-id='{dead.id}']"))
    expect(group).to_have_count(1)
    expect(group.locator("h3")).to_contain_text("503")
    expect(group.locator("h3")).to_contain_text("1")
    expect(group.locator("form.replay-group")).to_have_count(1)


def test_dead_letter_replayed_from_its_page_is_processed_into_commercetools(page, service):
    dead, review = service.dead_letter()
    assert service.emulator.review_by_key(service.key(review)) is None
    sign_in(page)
    page.click("a#nav-dead-letters")
    page.click(f"tr[data-event-id='{dead.id}'] a.event-link")
    expect(page).to_have_url(re.compile(f"/admin/events/{dead.id}$"))
    expect(page.locator("#event-status")).to_have_text("dead")
    expect(page.locator("#attempts")).to_contain_text("503")

    page.click("#replay-form button[type=submit]")
    expect(page.locator(".flash.success")).to_be_visible()
    expect(page).to_have_url(re.compile(f"/admin/events/{dead.id}$"))
    reload_until_text(page, "#event-status", "done")

    written = page.locator("#ledger tr", has_text=service.key(review))
    expect(written).to_contain_text("created")
    stored = service.emulator.review_by_key(service.key(review))
    assert stored is not None and stored["title"] == review["title"]
    assert service.event_by_id(dead.id).status == "done"
