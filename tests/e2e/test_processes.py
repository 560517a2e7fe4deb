"""The real processes: `reviewbridge serve` answers the README's curl example; SIGTERM stops cleanly."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.processes import (
    REVIEWBRIDGE,
    ROOT,
    environ,
    free_port,
    procfile,
    procfile_environ,
    start_serve,
    start_web,
    stop,
    wait_for,
)


def _readme_snippet() -> str:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", readme, flags=re.S)
    return next(block for block in blocks if block.startswith("# sign-and-send"))


def test_serve_applies_migrations_and_answers_the_readme_curl_example(tmp_path, database_url):
    port = free_port()
    env = environ(
        PORT=str(port),
        TRUSTOO_PUBLIC_TOKEN="demo-public-token",
        TRUSTOO_PRIVATE_TOKEN="demo-private-token,an-older-private-token",
    )
    if "postgresql" in database_url:
        env["DATABASE_URL"] = database_url
    # With no DATABASE_URL the default is instance/reviewbridge.db under the working directory.
    serve = start_serve(env, tmp_path)
    try:
        sent = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", _readme_snippet()],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert sent.stdout == '{"code":0,"message":"success"}', sent.stderr
        status = subprocess.run(
            [REVIEWBRIDGE, "status", "--json"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert json.loads(status.stdout)["events"]["trustoo"]["pending"] == 1
        if "postgresql" not in database_url:
            assert (tmp_path / "instance" / "reviewbridge.db").exists()
        code, took = stop(serve, timeout_s=20)
        assert code == 0 and took < 12
    finally:
        serve.kill()
        output = serve.stdout.read()
    assert "demo-private-token" not in output and "an-older-private-token" not in output


def _start_worker(env: dict[str, str], cwd: Path, *args: str) -> subprocess.Popen:
    """`reviewbridge worker`, its log and output read as one text stream."""
    return subprocess.Popen(
        [REVIEWBRIDGE, "worker", *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _read_until(process: subprocess.Popen, wanted: str, timeout_s: float = 30) -> list[str]:
    deadline, lines = time.monotonic() + timeout_s, []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        lines.append(line)
        if wanted in line or not line:
            break
    assert any(wanted in line for line in lines), "".join(lines)
    return lines


def test_worker_stops_on_sigterm_within_ten_seconds_and_exits_zero(tmp_path, database_url):
    env = environ(DATABASE_URL=database_url)
    subprocess.run([REVIEWBRIDGE, "db", "upgrade"], cwd=tmp_path, env=env, check=True, capture_output=True, timeout=60)
    worker = _start_worker(env, tmp_path)
    try:
        _read_until(worker, "started")
        code, took = stop(worker, timeout_s=15)
        assert code == 0 and took < 10.5
    finally:
        worker.kill()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_worker_on_a_commercetools_project_not_set_up_waits_and_starts_once_it_is(tmp_path, database_url, ct_environ):
    env = environ(**ct_environ) | {"LOG_LEVEL": "INFO", "PATH": f"{Path(REVIEWBRIDGE).parent}:{os.environ['PATH']}"}
    worker = _start_worker(env, tmp_path, "--setup-recheck", "0.2")
    try:
        [*_, waiting] = _read_until(worker, "worker waiting")
        assert "run `reviewbridge setup commercetools`" in waiting
        assert worker.poll() is None  # waiting, not exited to be restarted by the platform
        release = subprocess.run(
            ["bash", "-c", procfile("release")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
        assert release.returncode == 0 and release.stdout.count("missing → created") == 3, release
        _read_until(worker, "started")
        code, _ = stop(worker, timeout_s=15)
        assert code == 0
    finally:
        worker.kill()


def test_release_phase_without_commercetools_settings_migrates_and_succeeds(tmp_path):
    env = environ(
        DATABASE_URL=f"sqlite:///{tmp_path}/fresh.db", PATH=f"{Path(REVIEWBRIDGE).parent}:{os.environ['PATH']}"
    )
    release = subprocess.run(["bash", "-c", procfile("release")], cwd=ROOT, env=env, capture_output=True, text=True)
    assert release.returncode == 0, release.stderr
    assert "nothing to set up" in release.stdout


def test_worker_refuses_to_start_on_an_unmigrated_database(tmp_path):
    env = environ(DATABASE_URL=f"sqlite:///{tmp_path}/fresh.db")
    result = subprocess.run([REVIEWBRIDGE, "worker"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "reviewbridge db upgrade" in result.stderr


def test_bad_setting_stops_start_up_with_one_line_naming_the_variable(tmp_path):
    env = environ(PORT="eighty")
    result = subprocess.run([REVIEWBRIDGE, "status"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert (
        result.stderr.strip().splitlines()[-1]
        == "reviewbridge: configuration error: PORT: 'eighty' is not a whole number"
    )


def test_procfile_release_and_web_commands_serve_trustoo_webhooks(tmp_path, database_url):
    env = procfile_environ(free_port(), database_url)
    subprocess.run(["bash", "-c", procfile("release")], cwd=ROOT, env=env, check=True, capture_output=True, timeout=60)
    web = start_web(env)
    try:
        sent = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", _readme_snippet()],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert sent.stdout == '{"code":0,"message":"success"}', sent.stderr
        code, _ = stop(web, timeout_s=20)
        assert code == 0
    finally:
        web.kill()


# --- metrics across processes ----------------------------------------------------------------


def _sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample of a Prometheus text exposition, or None when it is absent."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    values = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(f"{name}{{{wanted}}} ") or (not labels and line.startswith(f"{name} "))
    ]
    assert len(values) <= 1, f"{name}{labels} appears {len(values)} times"
    return values[0] if values else None


def _children(pid: int) -> set[int]:
    return {int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def _signed_delivery(port: int) -> int:
    from tests.builders import trustoo_body, trustoo_headers, trustoo_review

    body = trustoo_body(trustoo_review())
    headers = trustoo_headers(body, private_token="demo-private-token", public_token="demo-public-token")
    # A connection of its own each time, so that the kernel hands deliveries to either worker.
    return httpx.post(
        f"http://127.0.0.1:{port}/webhooks/trustoo/review-created", content=body, headers=headers
    ).status_code


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_procfile_web_metrics_sum_every_gunicorn_worker_even_after_workers_are_replaced(tmp_path, database_url):
    port, access_log = free_port(), tmp_path / "access.log"
    env = procfile_environ(
        port,
        database_url,
        WEB_CONCURRENCY="2",
        # Which worker answered each delivery: the access log with the process id, in a file of ours.
        GUNICORN_CMD_ARGS=f"--access-logfile {access_log} --access-logformat '%(p)s %(m)s %(U)s'",
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # the Procfile's web process must need nothing set by hand
    web = start_web(env)
    try:
        first_workers = _children(web.pid)
        assert len(first_workers) == 2
        sent, answered_by = 0, set()
        with ThreadPoolExecutor(4) as pool:
            while len(answered_by) < 2 and sent < 400:
                assert set(pool.map(_signed_delivery, [port] * 20)) == {200}
                sent += 20
                answered_by = {line.split()[0] for line in access_log.read_text().splitlines() if "POST" in line}
        assert len(answered_by) == 2, "one gunicorn worker answered every delivery"

        for _ in range(6):  # each scrape reaches either worker; each shows every worker's deliveries
            scrape = httpx.get(f"http://127.0.0.1:{port}/metrics").text
            assert _sample(scrape, "reviewbridge_webhooks_received_total", outcome="stored", source="trustoo") == sent
            # Read from the database once per scrape, not once per worker.
            assert _sample(scrape, "reviewbridge_queue_depth", status="pending") == sent

        for pid in first_workers:
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (
            len(_children(web.pid)) == 2 and not _children(web.pid) & first_workers
        ):
            time.sleep(0.1)
        wait_for(f"http://127.0.0.1:{port}/healthz", web)
        assert _signed_delivery(port) == 200
        scrape = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        # Counted by workers that are gone, and still in the sum: a counter never goes back.
        assert _sample(scrape, "reviewbridge_webhooks_received_total", outcome="stored", source="trustoo") == sent + 1
        code, _ = stop(web, timeout_s=20)
        assert code == 0
    finally:
        web.kill()
        output = web.stdout.read()
    assert "Traceback" not in output and "Exception in" not in output, output


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_worker_serves_its_processing_histogram_on_worker_metrics_port(tmp_path, database_url, ct_environ):
    from app import create_app
    from app.bootstrap import services_of
    from tests.builders import trustoo_body, trustoo_headers, trustoo_review
    from tests.cli import cli_runner

    app = create_app(ct_environ)
    assert cli_runner(app).invoke(args=["setup", "commercetools"]).exit_code == 0
    client = app.test_client()
    for _ in range(3):
        body = trustoo_body(trustoo_review())
        assert (
            client.post("/webhooks/trustoo/review-created", data=body, headers=trustoo_headers(body)).status_code == 200
        )
    services_of(app).engine.dispose()

    port = free_port()
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("TRUSTOO_", "CTP_", "DATABASE_URL", "PROMETHEUS"))}
    env = keep | ct_environ | {"LOG_LEVEL": "INFO", "WORKER_METRICS_PORT": str(port)}
    worker = _start_worker(env, tmp_path, "--metrics-host", "127.0.0.1")
    try:
        deadline, scrape = time.monotonic() + 30, ""
        while time.monotonic() < deadline:
            if worker.poll() is not None:
                raise AssertionError(f"worker exited early: {worker.stdout.read()}")
            try:
                scrape = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1).text
            except httpx.TransportError:
                scrape = ""
            if _sample(scrape, "reviewbridge_event_processing_seconds_count", source="trustoo", status="done") == 3:
                break
            time.sleep(0.2)
        assert _sample(scrape, "reviewbridge_event_processing_seconds_count", source="trustoo", status="done") == 3
        assert _sample(
            scrape, "reviewbridge_target_calls_total", target="commercetools", operation="upsert", outcome="ok"
        )
        # The database's gauges are the web process's to show, once for the deployment.
        assert "reviewbridge_queue_depth" not in scrape
        code, _ = stop(worker, timeout_s=15)
        assert code == 0
    finally:
        worker.kill()
