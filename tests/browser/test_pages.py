"""Every admin page opens from the nav for a signed-in operator; each is captured as a screenshot.

The screenshots (build/screenshots/, or BROWSER_SCREENSHOTS_DIR) are for people reviewing the page:
laptop size, and the dashboard also at phone size, with one review synced, one dead letter and one
review waiting for its product, so that no page is empty.
"""

from __future__ import annotations

from tests.browser.conftest import ADMIN_TOKEN, LAPTOP, PHONE, expect
from tests.builders import trustoo_review

#: (nav link, what shows the page is there, screenshot name) in the order an operator meets them.
PAGES = [
    ("events", "table#events", "04-events.png"),
    ("dead-letters", "section.reason-group", "06-dead-letters.png"),
    ("waiting", "section.product-group", "07-waiting.png"),
    ("runs", "#resync-form", "08-runs.png"),
    ("connections", "form.check[data-platform=commercetools]", "09-connections.png"),
]


def test_every_admin_page_opens_from_the_nav_styled_without_a_csp_violation_and_is_captured(page, service, screenshots):
    # Chromium reports what the page's Content-Security-Policy blocked on the console.
    violations: list[str] = []
    page.on(
        "console",
        lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None,
    )
    synced = trustoo_review()
    service.deliver(synced, trustoo_review(product_id="8000000000001"))
    service.wait_for_status(synced, "done")
    dead, _ = service.dead_letter()

    page.goto("/admin/login")
    expect(page.locator("#login-form")).to_be_visible()
    expect(page.locator("header")).to_have_css("background-color", "rgb(255, 255, 255)")  # admin.css applies
    page.screenshot(path=screenshots / "01-login.png", full_page=True)
    page.fill("#login-form input[name=token]", ADMIN_TOKEN)
    page.click("#login-form button[type=submit]")
    expect(page.locator("#status-counts")).to_be_visible()
    page.screenshot(path=screenshots / "02-dashboard.png", full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=screenshots / "03-dashboard-phone.png", full_page=True)
    page.set_viewport_size(LAPTOP)

    for link, landmark, name in PAGES:
        page.click(f"a#nav-{link}")
        expect(page.locator(landmark).first).to_be_visible()
        page.screenshot(path=screenshots / name, full_page=True)
        if link == "events":
            page.click(f"tr[data-event-id='{dead.id}'] a.event-link")
            expect(page.locator("#event-status")).to_have_text("dead")
            page.screenshot(path=screenshots / "05-event-detail.png", full_page=True)

    expect(page.locator("header")).to_have_css("background-color", "rgb(255, 255, 255)")
    assert violations == []
    assert {
        "01-login.png",
        "02-dashboard.png",
        "03-dashboard-phone.png",
        "04-events.png",
        "05-event-detail.png",
        "06-dead-letters.png",
        "07-waiting.png",
        "08-runs.png",
        "09-connections.png",
    } <= {shot.name for shot in screenshots.iterdir()}
