"""reviewbridge resync runs and reviewbridge rollback RUN_ID: every resync is a run whose commercetools
writes are journaled, and a rollback puts back exactly what one run wrote, the ledger with it."""

from __future__ import annotations

import json
import time

import pytest

from app.bootstrap import build_worker, services_of
from app.core import journal, ledger, runs
from connectors.commercetools_mapping import review_key
from tests.builders import TRUSTOO_PUBLIC_TOKEN, trustoo_body, trustoo_headers, trustoo_review
from tests.cli import cli_runner
from tests.e2e.conftest import PRODUCT


def _key(item) -> str:
    return review_key("trustoo", TRUSTOO_PUBLIC_TOKEN, str(item["id"]))


def _resync(app, *args) -> dict:
    result = cli_runner(app).invoke(args=["resync", "trustoo", "--json", *args])
    assert result.exit_code == 0, result.output
    [report] = json.loads(result.output)
    return report


def _rollback(app, run_id: int, *args, exit_code: int = 0) -> dict:
    result = cli_runner(app).invoke(args=["rollback", str(run_id), "--json", *args])
    assert result.exit_code == exit_code, result.output
    return json.loads(result.output)


def _writes(emulator) -> int:
    return sum(1 for r in emulator.requests if r.method in ("POST", "DELETE") and "/reviews" in r.path)


def _ledger(app, item) -> ledger.LedgerState | None:
    return ledger.load(services_of(app).engine, "trustoo", TRUSTOO_PUBLIC_TOKEN, str(item["id"]), "commercetools")


def _add(trustoo, rating: int = 5):
    return trustoo.add_review(TRUSTOO_PUBLIC_TOKEN, product_id=PRODUCT, rating=rating)


def _by_action(report: dict) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for review in report["reviews"]:
        found.setdefault(review["action"], []).append(review["key"])
    return found


def test_resync_from_the_cli_is_a_run_and_its_json_carries_the_run_id(synced_app, trustoo, ct):
    _add(trustoo)
    report = _resync(synced_app)
    services = services_of(synced_app)
    run = runs.get(services.engine, report["run_id"], now=services.clock())
    assert (run.kind, run.source, run.account, run.shown_state) == ("resync", "trustoo", TRUSTOO_PUBLIC_TOKEN, "done")
    assert run.counts["counts"]["created"] == 1 and run.worker_id.startswith("cli:")
    assert _resync(synced_app)["run_id"] == report["run_id"] + 1, "a second resync is a run of its own"


def test_resync_run_journals_each_create_update_and_delete_with_the_review_before_it(synced_app, trustoo, ct):
    emulator, _ = ct
    kept, gone = _add(trustoo), _add(trustoo)
    first = _resync(synced_app)["run_id"]
    before_edit, before_delete = emulator.review_by_key(_key(kept)), emulator.review_by_key(_key(gone))
    trustoo.update_review(TRUSTOO_PUBLIC_TOKEN, kept["id"], rating=2)
    trustoo.delete_review_in_admin(TRUSTOO_PUBLIC_TOKEN, gone["id"])
    second = _resync(synced_app)["run_id"]
    engine = services_of(synced_app).engine
    created = {entry.target_key: entry for entry in journal.entries(engine, first)}
    assert {key: entry.change for key, entry in created.items()} == {_key(kept): "created", _key(gone): "created"}
    assert all(entry.before is None and entry.ledger_before is None for entry in created.values())
    later = {entry.target_key: entry for entry in journal.entries(engine, second)}
    assert {key: entry.change for key, entry in later.items()} == {_key(kept): "updated", _key(gone): "deleted"}
    assert later[_key(kept)].before == before_edit and later[_key(kept)].after["rating"] == 2
    assert later[_key(gone)].before == before_delete and later[_key(gone)].after is None
    assert later[_key(kept)].ledger_before["target_id"] == before_edit["id"]


def test_dry_run_resync_is_a_run_that_journals_nothing(synced_app, trustoo, ct):
    _add(trustoo)
    run_id = _resync(synced_app, "--dry-run")["run_id"]
    assert journal.entries(services_of(synced_app).engine, run_id) == []


def test_rollback_deletes_what_the_run_created_and_forgets_its_ledger_rows(synced_app, trustoo, ct):
    emulator, _ = ct
    items = [_add(trustoo), _add(trustoo)]
    run_id = _resync(synced_app)["run_id"]
    report = _rollback(synced_app, run_id)
    assert report["counts"] == {"deleted": 2} and report["run_id"] == run_id
    assert emulator.reviews == {}
    assert all(_ledger(synced_app, item) is None for item in items)
    again = _resync(synced_app)
    assert again["counts"]["created"] == 2, "the ledger is in line: the next resync writes them again"


def test_rollback_restores_what_the_run_updated_and_the_ledger_with_it(synced_app, trustoo, ct):
    emulator, _ = ct
    item = _add(trustoo, rating=5)
    _resync(synced_app)
    was, ledger_was = emulator.review_by_key(_key(item)), _ledger(synced_app, item)
    trustoo.update_review(TRUSTOO_PUBLIC_TOKEN, item["id"], rating=2, title="Changed my mind")
    run_id = _resync(synced_app)["run_id"]
    assert emulator.review_by_key(_key(item))["rating"] == 2
    report = _rollback(synced_app, run_id)
    assert report["counts"] == {"restored": 1}
    now = emulator.review_by_key(_key(item))
    assert (now["id"], now["rating"], now.get("title"), now["custom"]) == (
        was["id"],
        5,
        was.get("title"),
        was["custom"],
    )
    assert _ledger(synced_app, item).content_hash == ledger_was.content_hash
    assert _ledger(synced_app, item).ref.version == now["version"]
    assert _resync(synced_app)["counts"]["updated"] == 1, "the source still says 2: the next resync writes it"


def test_rollback_recreates_what_the_run_deleted_with_the_same_key_and_says_it_has_a_new_id(synced_app, trustoo, ct):
    emulator, _ = ct
    item = _add(trustoo)
    _resync(synced_app)
    was = emulator.review_by_key(_key(item))
    trustoo.delete_review_in_admin(TRUSTOO_PUBLIC_TOKEN, item["id"])
    run_id = _resync(synced_app)["run_id"]
    assert emulator.review_by_key(_key(item)) is None
    report = _rollback(synced_app, run_id)
    [line] = report["reviews"]
    back = emulator.review_by_key(_key(item))
    assert (line["action"], line["old_id"], line["new_id"]) == ("recreated", was["id"], back["id"])
    assert back["id"] != was["id"] and "new id" in line["reason"]
    assert {name: back.get(name) for name in ("uniquenessValue", "rating", "target", "state", "custom")} == {
        name: was.get(name) for name in ("uniquenessValue", "rating", "target", "state", "custom")
    }
    state = _ledger(synced_app, item)
    assert state.deleted_at is None and state.ref.id == back["id"]


def test_rollback_twice_writes_nothing_the_second_time(synced_app, trustoo, ct):
    emulator, _ = ct
    _add(trustoo)
    _add(trustoo)
    run_id = _resync(synced_app)["run_id"]
    _rollback(synced_app, run_id)
    writes = _writes(emulator)
    again = _rollback(synced_app, run_id)
    assert again["counts"] == {"already": 2}
    assert _writes(emulator) == writes


def test_rollback_skips_and_lists_a_review_a_later_write_changed_unless_forced(synced_app, trustoo, ct):
    emulator, _ = ct
    changed, untouched = _add(trustoo), _add(trustoo)
    first = _resync(synced_app)["run_id"]
    trustoo.update_review(TRUSTOO_PUBLIC_TOKEN, changed["id"], rating=1)
    _resync(synced_app)
    report = _rollback(synced_app, first)
    assert _by_action(report) == {"skipped": [_key(changed)], "deleted": [_key(untouched)]}
    assert emulator.review_by_key(_key(changed))["rating"] == 1, "left as the later write made it"
    text = cli_runner(synced_app).invoke(args=["rollback", str(first)]).output
    assert f"skipped   {_key(changed)}: changed after this run" in text
    forced = _rollback(synced_app, first, "--force")
    assert _by_action(forced) == {"deleted": [_key(changed)], "already": [_key(untouched)]}
    assert emulator.reviews == {}


def test_rollback_of_a_later_run_then_an_earlier_one_puts_everything_back(synced_app, trustoo, ct):
    emulator, _ = ct
    edited = _add(trustoo, rating=5)
    first = _resync(synced_app)["run_id"]
    trustoo.update_review(TRUSTOO_PUBLIC_TOKEN, edited["id"], rating=3)
    added = _add(trustoo)
    second = _resync(synced_app)["run_id"]
    assert _rollback(synced_app, second)["counts"] == {"restored": 1, "deleted": 1}
    assert emulator.review_by_key(_key(edited))["rating"] == 5 and emulator.review_by_key(_key(added)) is None
    assert _rollback(synced_app, first)["counts"] == {"deleted": 1}
    assert emulator.reviews == {}
    assert _ledger(synced_app, edited) is None and _ledger(synced_app, added) is None


def test_rollback_dry_run_writes_nothing_and_reports_what_it_would_do(synced_app, trustoo, ct):
    emulator, _ = ct
    item = _add(trustoo)
    run_id = _resync(synced_app)["run_id"]
    writes, reviews = _writes(emulator), emulator.reviews
    report = _rollback(synced_app, run_id, "--dry-run")
    assert report["dry_run"] and _by_action(report) == {"would_delete": [_key(item)]}
    assert _writes(emulator) == writes and emulator.reviews == reviews
    assert _rollback(synced_app, run_id)["counts"] == {"deleted": 1}, "a dry run marks nothing rolled back"


def test_rollback_is_a_run_of_its_own_that_shows_its_report(synced_app, trustoo, ct):
    _add(trustoo)
    run_id = _resync(synced_app)["run_id"]
    report = _rollback(synced_app, run_id)
    services = services_of(synced_app)
    run = runs.get(services.engine, report["rollback_run_id"], now=services.clock())
    assert (run.kind, run.options["of"], run.shown_state, run.summary["counts"]) == (
        "rollback",
        run_id,
        "done",
        {"deleted": 1},
    )


@pytest.mark.parametrize(
    ("args", "said"),
    [(["999999"], "there is no run 999999"), (["--dry-run", "RECONCILE"], "only a resync's writes")],
)
def test_rollback_of_a_run_that_is_no_resync_is_a_usage_error(synced_app, trustoo, ct, args, said):
    services = services_of(synced_app)
    [reconcile_id] = runs.request(services.engine, runs.RECONCILE, "trustoo", ["shop"], {}, now=services.clock())
    args = [str(reconcile_id) if arg == "RECONCILE" else arg for arg in args]
    result = cli_runner(synced_app).invoke(args=["rollback", *args])
    assert result.exit_code == 2 and said in result.output


def test_rollback_while_a_resync_of_the_account_is_queued_is_refused(synced_app, trustoo, ct):
    _add(trustoo)
    run_id = _resync(synced_app)["run_id"]
    services = services_of(synced_app)
    [queued] = runs.request(services.engine, runs.RESYNC, "trustoo", [TRUSTOO_PUBLIC_TOKEN], {}, now=services.clock())
    result = cli_runner(synced_app).invoke(args=["rollback", str(run_id)])
    assert result.exit_code == 2 and f"resync run {queued}" in result.output
    assert len(ct[0].reviews) == 1


def test_resync_from_the_cli_while_the_account_has_a_queued_resync_is_refused(synced_app, trustoo, ct):
    services = services_of(synced_app)
    runs.request(services.engine, runs.RESYNC, "trustoo", [TRUSTOO_PUBLIC_TOKEN], {}, now=services.clock())
    result = cli_runner(synced_app).invoke(args=["resync", "trustoo"])
    assert result.exit_code == 1 and "queued or running already" in result.output


def test_rollback_skips_a_review_a_webhook_changed_after_the_run(synced_app, trustoo, ct):
    emulator, _ = ct
    item = _add(trustoo)
    run_id = _resync(synced_app)["run_id"]
    trustoo.update_review(TRUSTOO_PUBLIC_TOKEN, item["id"], rating=1)
    body = trustoo_body(trustoo_review(id=item["id"], rating=1, product_id=PRODUCT))
    headers = trustoo_headers(body, timestamp=int(time.time()) + 2)  # signed after the run observed the review
    assert (
        synced_app.test_client().post("/webhooks/trustoo/review-updated", data=body, headers=headers).status_code == 200
    )
    build_worker(services_of(synced_app)).drain()
    assert emulator.review_by_key(_key(item))["rating"] == 1
    report = _rollback(synced_app, run_id)
    assert _by_action(report) == {"skipped": [_key(item)]}
    assert emulator.review_by_key(_key(item))["rating"] == 1
