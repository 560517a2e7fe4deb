"""Connection checks from the page: what the platform said, and which variable to fix."""

from __future__ import annotations

import re

from tests.browser.conftest import expect, sign_in


def _check(page, platform: str):
    page.click("a#nav-connections")
    page.click(f"form.check[data-platform={platform}] button[type=submit]")
    return page.locator(f"div.check-result[data-platform={platform}]")


def test_commercetools_check_against_the_emulator_is_ok(page, service):
    sign_in(page)
    expect(_check(page, "commercetools")).to_have_class(re.compile(r"\bok\b"))


def test_trustoo_check_against_the_emulator_is_ok(page, service):
    sign_in(page)
    expect(_check(page, "trustoo")).to_have_class(re.compile(r"\bok\b"))


def test_wix_check_without_credentials_fails_naming_the_variable_to_set(page, service):
    sign_in(page)
    result = _check(page, "wix")
    expect(result).to_have_class(re.compile(r"\bfail\b"))
    expect(result).to_contain_text("WIX_")
