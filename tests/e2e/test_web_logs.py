"""The Procfile's web process logs as LOG_FORMAT says: with json every line it prints is one JSON object,
gunicorn's own (start-up, workers, each request) as well as the app's; with text gunicorn's lines stay
gunicorn's."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from tests.builders import trustoo_body, trustoo_headers, trustoo_review
from tests.processes import PRIVATE_TOKEN, PUBLIC_TOKEN, WEBHOOK, free_port, procfile_environ, start_web, stop


def _visit(port: int) -> None:
    """A health check, a page asked for with a query string, and a signed webhook delivery."""
    base = f"http://127.0.0.1:{port}"
    assert httpx.get(f"{base}/healthz").status_code == 200
    httpx.get(f"{base}/admin/login", params={"next": "/admin/events?status=dead"})
    body = trustoo_body(trustoo_review())
    headers = trustoo_headers(body, private_token=PRIVATE_TOKEN, public_token=PUBLIC_TOKEN)
    assert httpx.post(f"{base}{WEBHOOK}", content=body, headers=headers).status_code == 200


def _run_web(tmp_path, database_url: str, **extra: str) -> list[str]:
    """The Procfile's web process, visited and stopped: every line it printed."""
    log = tmp_path / "web.log"
    env = procfile_environ(free_port(), database_url, **extra)
    if "LOG_FORMAT" not in extra:
        env.pop("LOG_FORMAT", None)
    web = start_web(env, log=log)
    try:
        _visit(int(env["PORT"]))
        code, _ = stop(web, timeout_s=20)
        assert code == 0
    finally:
        web.kill()
    return [line for line in log.read_text().splitlines() if line.strip()]


def _json(line: str) -> dict:
    try:
        return json.loads(line)
    except ValueError:
        pytest.fail(f"a line that is not JSON: {line!r}")


def test_procfile_web_with_json_logs_prints_every_line_as_json_with_each_request_s_fields(tmp_path, database_url):
    records = [_json(line) for line in _run_web(tmp_path, database_url, LOG_FORMAT="json")]

    access = {record["path"]: record for record in records if record.get("logger") == "gunicorn.access"}
    assert {"/healthz", "/admin/login", WEBHOOK} <= set(access)
    health = access["/healthz"]
    assert (health["method"], health["status"], health["protocol"]) == ("GET", 200, "HTTP/1.1")
    assert isinstance(health["duration"], float) and 0 <= health["duration"] < 5
    assert access[WEBHOOK]["method"] == "POST" and access[WEBHOOK]["status"] == 200
    assert "status=dead" not in json.dumps(access["/admin/login"])  # no query string: it may carry a secret
    gunicorn = [record["message"] for record in records if record.get("logger") == "gunicorn.error"]
    assert any(message.startswith("Booting worker") for message in gunicorn), gunicorn
    assert any(record.get("logger", "").startswith("app.") for record in records)  # the app's own lines too
    assert all({"time", "level", "logger", "message"} <= set(record) for record in records)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_procfile_web_with_text_logs_keeps_gunicorn_s_own_lines(tmp_path, database_url):
    lines = _run_web(tmp_path, database_url)

    assert any(re.search(r'"GET /healthz HTTP/1\.1" 200 ', line) for line in lines), lines
    assert any(re.search(r"\[INFO\] Booting worker", line) for line in lines), lines
    assert not any(line.startswith("{") for line in lines)
