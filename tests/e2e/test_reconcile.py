"""reviewbridge reconcile: drift between Trustoo and commercetools reported, fixed, then gone."""

from __future__ import annotations

import json

from app.bootstrap import build_worker, services_of
from connectors.commercetools_mapping import review_key
from tests.builders import TRUSTOO_PUBLIC_TOKEN
from tests.cli import cli_runner
from tests.e2e.conftest import PRODUCT


def _reconcile(app, *args):
    return cli_runner(app).invoke(args=["reconcile", "--source", "trustoo", "--json", *args])


def _key(item) -> str:
    return review_key("trustoo", TRUSTOO_PUBLIC_TOKEN, str(item["id"]))


def test_reconcile_reports_each_kind_of_drift_then_fix_removes_it(synced_app, trustoo, ct):
    emulator, _ = ct
    synced, edited, deleted = (trustoo.add_review(TRUSTOO_PUBLIC_TOKEN, product_id=PRODUCT, rating=5) for _ in range(3))
    assert cli_runner(synced_app).invoke(args=["resync", "trustoo"]).exit_code == 0
    missing = trustoo.add_review(TRUSTOO_PUBLIC_TOKEN, product_id=PRODUCT, rating=4)  # webhook lost
    unmatched = trustoo.add_review(TRUSTOO_PUBLIC_TOKEN, product_id="404", rating=3)
    trustoo.update_review(TRUSTOO_PUBLIC_TOKEN, edited["id"], rating=1)
    trustoo.delete_review_in_admin(TRUSTOO_PUBLIC_TOKEN, deleted["id"])
    emulator.add_product(key="someone-elses")

    result = _reconcile(synced_app)
    assert result.exit_code == 3
    [report] = json.loads(result.output)
    assert report["counts"] == {"missing": 1, "stale": 1, "orphaned": 1, "unmatched": 1}
    assert report["examples"]["missing"][0]["key"] == _key(missing)
    assert "setRating" in report["examples"]["stale"][0]["detail"]
    assert report["examples"]["orphaned"][0]["source_id"] == str(deleted["id"])
    assert report["examples"]["unmatched"][0]["source_id"] == str(unmatched["id"])

    [fixed] = json.loads(_reconcile(synced_app, "--fix").output)
    assert fixed["fixed"] == 3
    build_worker(services_of(synced_app)).drain()
    [after] = json.loads(_reconcile(synced_app).output)
    assert after["counts"] == {"unmatched": 1}
    assert emulator.review_by_key(_key(edited))["rating"] == 1
    assert emulator.review_by_key(_key(deleted)) is None and emulator.review_by_key(_key(synced)) is not None


def test_reconcile_never_touches_reviews_that_are_not_ours(synced_app, trustoo, ct):
    _emulator, _ = ct
    table = cli_runner(synced_app).invoke(args=["reconcile", "--source", "trustoo"]).output
    assert "no drift" in table


def test_reconcile_fix_mends_a_review_changed_in_commercetools_behind_our_back(synced_app, trustoo, ct):
    import httpx

    emulator, url = ct
    item = trustoo.add_review(TRUSTOO_PUBLIC_TOKEN, product_id=PRODUCT, rating=5)
    cli_runner(synced_app).invoke(args=["resync", "trustoo"])
    current = emulator.review_by_key(_key(item))
    httpx.post(
        f"{url}/reviewbridge-test/reviews/{current['id']}",
        headers={"Authorization": f"Bearer {emulator.issue_token()}"},
        json={"version": current["version"], "actions": [{"action": "setRating", "rating": 1}]},
    )
    [report] = json.loads(_reconcile(synced_app, "--fix").output)
    assert report["counts"] == {"stale": 1} and report["fixed"] == 1
    build_worker(services_of(synced_app)).drain()
    assert emulator.review_by_key(_key(item))["rating"] == 5


def test_reconcile_draws_its_progress_on_stderr_and_keeps_json_output_clean(synced_app, trustoo):
    for _ in range(3):
        trustoo.add_review(TRUSTOO_PUBLIC_TOKEN, product_id=PRODUCT, rating=5)

    table = cli_runner(synced_app).invoke(args=["reconcile", "--source", "trustoo"])
    as_json = _reconcile(synced_app)

    assert f"trustoo {TRUSTOO_PUBLIC_TOKEN[:24]}" in table.stderr and "missing" in table.stdout
    assert as_json.stderr == "" and json.loads(as_json.stdout)[0]["compared"] == 3
