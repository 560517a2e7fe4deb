"""Runs started from the page: the web process queues them, the worker (embedded, as `serve` runs it) executes
them, and the page follows them to their end. A resync brings what the webhooks missed into commercetools; a
reconcile with fix lists the drift and queues its correction."""

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

    expect(page.locator(".flash.success")).to_contain_text("queued")
    finished = page.locator("#runs tr.run[data-kind=resync][data-source=trustoo][data-state=done]")
    expect(finished).to_have_count(1)  # the page refreshes itself while the run is queued or going
    stored = wait_until(lambda: service.emulator.review_by_key(service.key(missed)), "the missed review")
    assert stored["title"] == "Written while our webhooks were down"


def test_reconcile_with_fix_from_the_runs_page_lists_the_drift_and_corrects_it(page, service, trustoo):
    missing = trustoo.add_review(TRUSTOO_PUBLIC_TOKEN, title="Never announced by a webhook")
    sign_in(page)
    page.click("a#nav-runs")
    form = page.locator("#reconcile-form")
    form.locator("select[name=source]").select_option("trustoo")
    form.locator("input[name=fix]").check()
    form.locator("[type=submit]").click()

    finished = page.locator("#runs tr.run[data-kind=reconcile][data-source=trustoo][data-state=done]")
    expect(finished).to_have_count(1)
    expect(finished).to_contain_text("missing 1")
    finished.locator("a.run-link").click()
    expect(page.locator("#drifts tr.drift[data-kind=missing]")).to_have_count(1)
    stored = wait_until(lambda: service.emulator.review_by_key(service.key(missing)), "the corrected review")
    assert stored["title"] == "Never announced by a webhook"
