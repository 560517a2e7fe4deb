"""The demo (`.venv/bin/python -m tests.demo`) shows data its emulators hold: a reconcile or a resync
started once it has played deletes nothing it showed, and finds only what its admin page asks a person
to do (the dead letter to replay, the review waiting for its product). Done, nothing is left at all."""

from __future__ import annotations

import json
import subprocess

from tests import demo


def _reviewbridge(shown: demo.Demo, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([demo.REVIEWBRIDGE, *args], env=shown.env, capture_output=True, text=True, timeout=120)


def _reconcile(shown: demo.Demo) -> list[dict]:
    """A reconcile of every source, as its JSON reports."""
    result = _reviewbridge(shown, "reconcile", "--json")
    assert result.returncode in (0, 3), result.stderr  # 3: drift found
    return json.loads(result.stdout)


def _drift(reports: list[dict]) -> dict[tuple[str, str], set[str]]:
    """(source, kind) → the source review ids reported."""
    found: dict[tuple[str, str], set[str]] = {}
    for report in reports:
        for kind, examples in report["examples"].items():
            assert report["counts"][kind] == len(examples), report
            found[(report["source"], kind)] = {example["source_id"] for example in examples}
    return found


def _disagreeing(reports: list[dict]) -> list[dict]:
    """Products whose rating statistics disagree, other than those written in the last minute."""
    return [entry for report in reports for entry in report["statistics"] if not (entry["agrees"] or entry["settling"])]


def test_demo_reviews_are_all_in_its_emulators_so_reconcile_finds_only_what_the_page_asks_to_do(database_url):
    with demo.running(database_url) as shown:
        # Nothing orphaned or stale: every Trustoo review the demo delivered is one the emulator holds as shown.
        assert _drift(_reconcile(shown)) == {
            ("trustoo", "missing"): {"1004"},  # Katherine's: the dead letter the page asks to replay
            ("trustoo", "unmatched"): {"1005"},  # Hedy's: waiting for its product
        }
        dry_run = _reviewbridge(shown, "resync", "trustoo", "--dry-run", "--json")
        [counts] = [report["counts"] for report in json.loads(dry_run.stdout)]
        assert counts.get("would_delete", 0) == 0, counts

        # What the page suggests: replay the dead letter, map the waiting review's product.
        assert _reviewbridge(shown, "replay", "--dead").returncode == 0
        mapping = (
            f"source,account,source_product_id,product_key\ntrustoo,{demo.PUBLIC_TOKEN},{demo.UNMAPPED},mug-green\n"
        )
        mapped = subprocess.run(
            [demo.REVIEWBRIDGE, "products", "import", "-"],
            env=shown.env,
            input=mapping,
            text=True,
            capture_output=True,
            timeout=60,
        )
        assert mapped.returncode == 0, mapped.stderr
        demo.wait_settled(shown.env)

        done = _reconcile(shown)
        assert _drift(done) == {} and _disagreeing(done) == []
