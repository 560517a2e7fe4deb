"""The dashboard's numbers are the database's: events by source, account and status, webhooks received, queue."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.core.db import transaction
from app.core.models import EventStatus, InboxEvent, utcnow
from tests.browser.conftest import LAPTOP, expect, sign_in
from tests.builders import TRUSTOO_PUBLIC_TOKEN, trustoo_review

#: "Events due or waiting to be processed" (the contract's #queue-depth).
QUEUED = (
    EventStatus.PENDING.value,
    EventStatus.PROCESSING.value,
    EventStatus.RETRY.value,
    EventStatus.WAITING_FOR_PRODUCT.value,
)


def _steady_mix(service) -> None:
    """Two reviews synced, one dead letter, one waiting for its product, one told by commercetools to
    come back in ten minutes (429, Retry-After), one quarantined delivery: nothing moves for a while."""
    synced = [trustoo_review(), trustoo_review()]
    service.deliver(*synced)
    service.dead_letter()
    waiting = trustoo_review(product_id="8000000000001")
    deferred = trustoo_review()
    service.emulator.inject(429, retry_after=600, method="GET", path_contains=f"/reviews/key={service.key(deferred)}")
    service.deliver(waiting, deferred)
    service.deliver({"rating": 2})  # signed, but no review id: quarantined at intake
    for review in synced:
        service.wait_for_status(review, "done")
    service.wait_for_status(waiting, "waiting_for_product")
    service.wait_for_status(deferred, "retry")


def _shown(page, attribute: str) -> dict[str, int]:
    cells = page.locator(f"#status-counts td[{attribute}]").all()
    return {cell.get_attribute(attribute): int(cell.inner_text().strip()) for cell in cells}


def test_dashboard_status_counts_match_the_database(page, service):
    _steady_mix(service)
    in_database = {
        f"{source}/{account}/{status}": count for (source, account, status), count in service.counts().items()
    }
    sign_in(page)
    shown = _shown(page, "data-count")
    every_status = {f"trustoo/{TRUSTOO_PUBLIC_TOKEN}/{status.value}" for status in EventStatus}
    assert every_status <= set(shown), "a status of the account has no cell"
    assert set(in_database) <= set(shown)
    assert shown == {cell: in_database.get(cell, 0) for cell in shown}
    account = f"trustoo/{TRUSTOO_PUBLIC_TOKEN}"
    assert [
        shown[f"{account}/{status}"] for status in ("done", "dead", "waiting_for_product", "retry", "quarantined")
    ] == [2, 1, 1, 1, 1]


def test_dashboard_webhooks_received_match_the_database(page, service):
    _steady_mix(service)
    now = utcnow()
    with transaction(service.engine) as session:
        received = [_aware(at) for at in session.execute(select(InboxEvent.received_at)).scalars()]
    sign_in(page)
    shown = _shown(page, "data-received")
    account = f"trustoo/{TRUSTOO_PUBLIC_TOKEN}"
    assert shown[f"{account}/hour"] == sum(at >= now - timedelta(hours=1) for at in received) == 6
    assert shown[f"{account}/day"] == sum(at >= now - timedelta(days=1) for at in received) == 6


def test_dashboard_queue_depth_matches_the_database(page, service):
    _steady_mix(service)
    depth = sum(count for (_, _, status), count in service.counts().items() if status in QUEUED)
    sign_in(page)
    assert depth == 2  # the deferred review and the waiting one
    expect(page.locator("#queue-depth")).to_have_text(str(depth))
    expect(page.locator("#oldest-pending")).to_have_text("none")  # nothing pending: the deferred review retries
    expect(page.locator("#oldest-retry")).not_to_have_text("none")
    expect(page.locator("svg#chart-24h")).to_be_visible()
    expect(page.locator("section#target-health")).to_contain_text("commercetools")


def test_dashboard_sources_fit_a_1280_px_screen_with_the_last_error_in_view(page, service):
    _steady_mix(service)
    sign_in(page)  # at LAPTOP size: 1280 px wide
    assert page.viewport_size == LAPTOP and LAPTOP["width"] == 1280
    table = page.locator("#status-counts")
    last_error = table.locator("td.last-error").first
    expect(last_error).to_be_visible()
    expect(last_error).not_to_contain_text("none")  # the quarantined delivery's reason

    scroll_width, client_width = table.evaluate("t => [t.parentElement.scrollWidth, t.parentElement.clientWidth]")
    assert scroll_width <= client_width, "the sources table scrolls sideways"
    for box in (table.bounding_box(), last_error.bounding_box()):
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= LAPTOP["width"], box
    # The account by its label; its public token only in the tooltip.
    expect(table.locator("span.account")).to_have_text("example-store.myshopify.com")
    expect(table).not_to_contain_text(TRUSTOO_PUBLIC_TOKEN)


def _aware(at):
    return at if at.tzinfo else at.replace(tzinfo=utcnow().tzinfo)
