"""reviewbridge doctor tells a good setup from a misconfigured one, and says how to fix it."""

from __future__ import annotations

from app import create_app
from app.bootstrap import services_of
from tests.builders import TRUSTOO_PUBLIC_TOKEN, trustoo_body, trustoo_headers, trustoo_review
from tests.cli import cli_runner

WEBHOOK = "/webhooks/trustoo/review-created"


def test_doctor_on_a_good_setup_passes_every_check(synced_app):
    result = cli_runner(synced_app).invoke(args=["doctor"])
    assert result.exit_code == 0, result.output
    assert "✗" not in result.output and "✓ commercetools token, Custom Type and States" in result.output
    assert "✓ trustoo shop" in result.output


def test_doctor_names_a_shop_by_the_domain_its_webhooks_carry_not_by_its_token(synced_app):
    body = trustoo_body(trustoo_review())
    assert synced_app.test_client().post(WEBHOOK, data=body, headers=trustoo_headers(body)).status_code == 200
    result = cli_runner(synced_app).invoke(args=["doctor"])
    assert "✓ trustoo shop example-store.myshopify.com" in result.output
    assert TRUSTOO_PUBLIC_TOKEN not in result.output


def test_doctor_names_wrong_credentials_and_missing_setup(ct_environ):
    app = create_app(ct_environ | {"CTP_CLIENT_SECRET": "not-the-secret-at-all", "SECRET_KEY": ""})
    result = cli_runner(app).invoke(args=["doctor"])
    assert result.exit_code == 1
    assert "✗ commercetools token" in result.output and "CTP_CLIENT_SECRET" in result.output
    assert "not-the-secret-at-all" not in result.output
    assert "✗ SECRET_KEY" in result.output
    services_of(app).engine.dispose()


def test_doctor_says_to_run_setup_when_the_custom_type_is_missing(ct_environ):
    app = create_app(ct_environ)
    result = cli_runner(app).invoke(args=["doctor"])
    assert result.exit_code == 1 and "reviewbridge setup commercetools" in result.output
    services_of(app).engine.dispose()


def test_doctor_reports_an_unmigrated_database(tmp_path, target):
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/fresh.db", "LOG_LEVEL": "WARNING"}, targets=[target])
    result = cli_runner(app).invoke(args=["doctor"])
    assert result.exit_code == 1 and "reviewbridge db upgrade" in result.output
    services_of(app).engine.dispose()


def test_doctor_says_alerts_are_off_and_how_to_turn_them_on(app):
    result = cli_runner(app).invoke(args=["doctor"])
    line = next(line for line in result.output.splitlines() if line.startswith("✓ alerts "))
    assert line.split(None, 2)[2] == "off: set ALERT_WEBHOOK_URL (Slack-compatible) to be told what needs a person"


def test_doctor_says_what_alerts_watch_and_never_shows_the_webhook_url(environ, target):
    url = "https://hooks.slack.com/services/T0/B0/doctor-hook-token-5e1d"
    app = create_app(environ | {"ALERT_WEBHOOK_URL": url, "ALERT_PENDING_AGE": "1h"}, targets=[target])
    result = cli_runner(app).invoke(args=["doctor"])
    services_of(app).engine.dispose()
    line = next(line for line in result.output.splitlines() if line.startswith("✓ alerts "))
    assert "on: new dead letters, a queue later than 3600 s, 20+ rejected webhooks within 300 s" in line
    assert "set PUBLIC_URL for links" in line
    assert "doctor-hook-token-5e1d" not in result.output


def test_doctor_says_whether_each_trustoo_topic_is_delivered_to_public_url(environ, target, trustoo):
    public_url = "https://reviews.example.com"
    app = create_app(environ | {"PUBLIC_URL": public_url}, targets=[target])
    runner = cli_runner(app)
    trustoo.add_webhook(TRUSTOO_PUBLIC_TOKEN, "review/created", f"{public_url}/webhooks/trustoo/review-created")
    before = runner.invoke(args=["doctor"]).output
    assert runner.invoke(args=["trustoo", "webhooks", "register"]).exit_code == 0
    after = runner.invoke(args=["doctor"]).output
    services_of(app).engine.dispose()
    [line_before] = [line for line in before.splitlines() if line.startswith("✗ trustoo shop") and "webhooks" in line]
    assert f"review/updated, review/deleted not delivered to {public_url}: run `reviewbridge trustoo" in line_before
    [line_after] = [line for line in after.splitlines() if line.startswith("✓ trustoo shop") and "webhooks" in line]
    assert line_after.endswith(f"the three review topics are delivered to {public_url}")
