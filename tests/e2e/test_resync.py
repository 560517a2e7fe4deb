"""reviewbridge resync: what webhooks missed is recovered through the same pipeline and ledger."""

from __future__ import annotations

import json

import pytest

from app.bootstrap import services_of
from app.core.resync import resync
from connectors.commercetools_mapping import review_key
from tests.builders import TRUSTOO_PUBLIC_TOKEN
from tests.cli import cli_runner
from tests.e2e.conftest import PRODUCT


def _key(item) -> str:
    return review_key("trustoo", TRUSTOO_PUBLIC_TOKEN, str(item["id"]))


def _resync(app, *args):
    return cli_runner(app).invoke(args=["resync", "trustoo", "--json", *args])


def test_resync_recovers_reviews_whose_webhooks_were_lost_and_a_second_run_writes_nothing(synced_app, trustoo, ct):
    emulator, _ = ct
    items = [trustoo.add_review(TRUSTOO_PUBLIC_TOKEN, product_id=PRODUCT, rating=r) for r in (5, 4, 3)]
    hidden = trustoo.add_review(TRUSTOO_PUBLIC_TOKEN, product_id=PRODUCT, rating=1)
    trustoo.hide_review(TRUSTOO_PUBLIC_TOKEN, hidden["id"])
    result = _resync(synced_app)
    assert result.exit_code == 0, result.output
    [report] = json.loads(result.output)
    assert report["counts"]["created"] == 4 and report["counts"]["hidden"] == 1
    assert {r["key"] for r in emulator.reviews.values()} == {_key(i) for i in [*items, hidden]}
    writes = sum(1 for r in emulator.requests if r.method in ("POST", "DELETE"))
    [again] = json.loads(_resync(synced_app).output)
    assert again["counts"]["unchanged"] == 4 and again["counts"].get("created", 0) == 0
    assert sum(1 for r in emulator.requests if r.method in ("POST", "DELETE")) == writes


def test_resync_follows_edits_and_deletes_made_while_webhooks_were_lost(synced_app, trustoo, ct):
    emulator, _ = ct
    kept, gone = (trustoo.add_review(TRUSTOO_PUBLIC_TOKEN, product_id=PRODUCT, rating=5) for _ in range(2))
    _resync(synced_app)
    trustoo.update_review(TRUSTOO_PUBLIC_TOKEN, kept["id"], rating=2)
    trustoo.delete_review_in_admin(TRUSTOO_PUBLIC_TOKEN, gone["id"])
    [report] = json.loads(_resync(synced_app).output)
    assert report["counts"]["updated"] == 1 and report["counts"]["deleted"] == 1
    assert emulator.review_by_key(_key(kept))["rating"] == 2 and emulator.review_by_key(_key(gone)) is None


def test_resync_dry_run_writes_nothing_and_says_what_it_would_do(synced_app, trustoo, ct):
    emulator, _ = ct
    trustoo.add_review(TRUSTOO_PUBLIC_TOKEN, product_id=PRODUCT, rating=5)
    [report] = json.loads(_resync(synced_app, "--dry-run").output)
    assert report["counts"] == {"seen": 1, "would_create": 1} and emulator.reviews == {}


def _summary(result) -> dict[str, int]:
    """The summary's `  word   count` lines, by word (the progress bar's lines start otherwise)."""
    assert result.exit_code == 0, result.output
    lines = [line.split() for line in result.output.splitlines() if line.startswith("  ")]
    return {" ".join(words[:-1]): int(words[-1]) for words in lines}


def test_resync_dry_run_summary_says_would_create_and_never_created_0(synced_app, trustoo, ct):
    for _ in range(3):
        trustoo.add_review(TRUSTOO_PUBLIC_TOKEN, product_id=PRODUCT, rating=5)

    result = cli_runner(synced_app).invoke(args=["resync", "trustoo", "--dry-run"])

    assert any(line.startswith("dry run: trustoo ") for line in result.output.splitlines())
    assert _summary(result) == {"seen": 3, "would create": 3, "would update": 0, "unchanged": 0, "failed": 0}


def test_resync_dry_run_summary_says_what_it_would_update_and_delete(synced_app, trustoo, ct):
    _kept, edited, gone = (trustoo.add_review(TRUSTOO_PUBLIC_TOKEN, product_id=PRODUCT, rating=5) for _ in range(3))
    _resync(synced_app)
    trustoo.update_review(TRUSTOO_PUBLIC_TOKEN, edited["id"], rating=2)
    trustoo.delete_review_in_admin(TRUSTOO_PUBLIC_TOKEN, gone["id"])
    trustoo.add_review(TRUSTOO_PUBLIC_TOKEN, product_id=PRODUCT, rating=4)

    result = cli_runner(synced_app).invoke(args=["resync", "trustoo", "--dry-run"])

    assert _summary(result) == {
        "seen": 3,
        "would create": 1,
        "would update": 1,
        "unchanged": 1,
        "would delete": 1,
        "failed": 0,
    }


def test_resync_summary_says_created_and_no_would(synced_app, trustoo, ct):
    trustoo.add_review(TRUSTOO_PUBLIC_TOKEN, product_id=PRODUCT, rating=5)

    result = cli_runner(synced_app).invoke(args=["resync", "trustoo"])

    assert _summary(result) == {"seen": 1, "created": 1, "updated": 0, "unchanged": 0, "failed": 0}


def test_interrupted_resync_resumes_at_its_checkpoint(synced_app, trustoo, ct):
    emulator, _ = ct
    for _ in range(250):
        trustoo.add_review(TRUSTOO_PUBLIC_TOKEN, product_id=PRODUCT, rating=4)
    services = services_of(synced_app)

    class Interrupted(Exception):
        pass

    def stop_after_first_page(report):
        raise Interrupted

    with pytest.raises(Interrupted):
        resync(services, services.sources["trustoo"], TRUSTOO_PUBLIC_TOKEN, progress=stop_after_first_page)
    first_pages = [r for r in trustoo.requests if "get_reviews" in r.path]
    [report] = json.loads(_resync(synced_app).output)
    assert report["resumed_from"] == "2" and report["counts"]["created"] == 250
    pages = [r.query.get("page") for r in trustoo.requests if "get_reviews" in r.path][len(first_pages) :]
    assert pages == [["2"], ["3"]]
    assert len(emulator.reviews) == 250


def test_resync_with_a_product_commercetools_lacks_parks_it_with_the_reason(synced_app, trustoo):
    trustoo.add_review(TRUSTOO_PUBLIC_TOKEN, product_id="999", rating=5)
    [report] = json.loads(_resync(synced_app).output)
    assert list(report["parked"].values()) == [1] and "999" in next(iter(report["parked"]))


def test_resync_summary_names_a_review_without_its_product_waiting_as_the_admin_page_does(synced_app, trustoo):
    trustoo.add_review(TRUSTOO_PUBLIC_TOKEN, product_id="999", rating=5)

    output = cli_runner(synced_app).invoke(args=["resync", "trustoo"]).output

    [line] = [line for line in output.splitlines() if "999" in line]
    assert line.split()[:2] == ["waiting", "1"] and "parked" not in output


def test_resync_of_an_unknown_source_is_a_usage_error(synced_app):
    result = cli_runner(synced_app).invoke(args=["resync", "shopify"])
    assert result.exit_code == 2 and "cannot read reviews" in result.output
