"""Runs started from the page: a resync brings what the webhooks missed into commercetools."""

from __future__ import annotations

from tests.browser.conftest import expect, sign_in, wait_until
from tests.builders import TRUSTOO_PUBLIC_TOKEN


def test_resync_started_from_the_runs_page_brings_a_missed_review_into_commercetools(page, service, trustoo):
    missed = trustoo.add_review(TRUSTOO_PUBLIC_TOKEN, title="Written while our webhooks were down")
    sign_in(page)
    page.click("a#nav-runs")
    form = page.locator("#resync-form")
    form.locator("select[name=source]").select_option("trustoo")
    form.locator("[type=submit]").click()

    finished = page.locator("#runs tr.run[data-kind=resync][data-source=trustoo][data-state=done]")
    expect(finished).to_have_count(1)  # the page refreshes itself while the run is going
    stored = wait_until(lambda: service.emulator.review_by_key(service.key(missed)), "the missed review")
    assert stored["title"] == "Written while our webhooks were down"
