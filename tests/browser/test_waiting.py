"""Mapping a source product to a commercetools product releases its waiting reviews into commercetools."""

from __future__ import annotations

from urllib.parse import urlsplit

from tests.browser.conftest import expect, sign_in
from tests.builders import TRUSTOO_PUBLIC_TOKEN, trustoo_review

UNMATCHED = "8000000000001"  # a Trustoo product with no mapping and no commercetools product of that key


def test_mapping_a_product_releases_its_waiting_reviews_into_commercetools(page, service):
    reviews = [trustoo_review(product_id=UNMATCHED), trustoo_review(product_id=UNMATCHED)]
    service.deliver(*reviews)
    for review in reviews:
        service.wait_for_status(review, "waiting_for_product")
    product = service.emulator.add_product(key="mug-green")
    sign_in(page)
    page.click("a#nav-waiting")
    group = page.locator(f"section.product-group[data-product='trustoo/{TRUSTOO_PUBLIC_TOKEN}/{UNMATCHED}']")
    expect(group.locator(".waiting-count")).to_have_text("2")

    group.locator("form.map-product input[name=product_key]").fill("mug-green")
    group.locator("form.map-product button[type=submit]").click()
    expect(page.locator(".flash.success")).to_contain_text("2")
    assert urlsplit(page.url).path == "/admin/waiting"

    for review in reviews:
        service.wait_for_status(review, "done")
    stored = [service.emulator.review_by_key(service.key(review)) for review in reviews]
    assert all(s is not None and s["target"]["id"] == product["id"] for s in stored)
    page.reload()
    expect(group).to_have_count(0)


def test_waiting_page_groups_reviews_by_source_product(page, service):
    other = "8000000000002"
    reviews = [trustoo_review(product_id=UNMATCHED), trustoo_review(product_id=other), trustoo_review(product_id=other)]
    service.deliver(*reviews)
    for review in reviews:
        service.wait_for_status(review, "waiting_for_product")
    sign_in(page)
    page.click("a#nav-waiting")
    for product, waiting in ((UNMATCHED, "1"), (other, "2")):
        group = page.locator(f"section.product-group[data-product='trustoo/{TRUSTOO_PUBLIC_TOKEN}/{product}']")
        expect(group.locator(".waiting-count")).to_have_text(waiting)
