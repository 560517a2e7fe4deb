"""The real processes: `reviewbridge serve` answers the README's curl example; SIGTERM stops cleanly."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
REVIEWBRIDGE = str(Path(sys.executable).parent / "reviewbridge")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _readme_snippet() -> str:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", readme, flags=re.S)
    return next(block for block in blocks if block.startswith("# sign-and-send"))


def _environ(**extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("TRUSTOO_", "DATABASE_URL"))}
    # Nothing here calls Trustoo; if something did, it would find a closed loopback port, not the internet.
    return keep | {"LOG_LEVEL": "INFO", "TRUSTOO_API_URL": "http://127.0.0.1:9"} | extra


def _wait_for(url: str, process: subprocess.Popen, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"process exited early: {process.stdout.read()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {timeout_s} s")


def _stop(process: subprocess.Popen, timeout_s: float) -> tuple[int, float]:
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    code = process.wait(timeout=timeout_s)
    return code, time.monotonic() - started


def test_serve_applies_migrations_and_answers_the_readme_curl_example(tmp_path, database_url):
    port = _free_port()
    env = _environ(
        PORT=str(port),
        TRUSTOO_PUBLIC_TOKEN="demo-public-token",
        TRUSTOO_PRIVATE_TOKEN="demo-private-token,an-older-private-token",
    )
    if "postgresql" in database_url:
        env["DATABASE_URL"] = database_url
    # With no DATABASE_URL the default is instance/reviewbridge.db under the working directory.
    serve = subprocess.Popen(
        [REVIEWBRIDGE, "serve", "--host", "127.0.0.1"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/readyz", serve)
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
        code, took = _stop(serve, timeout_s=20)
        assert code == 0 and took < 12
    finally:
        serve.kill()
        output = serve.stdout.read()
    assert "demo-private-token" not in output and "an-older-private-token" not in output


def test_worker_stops_on_sigterm_within_ten_seconds_and_exits_zero(tmp_path, database_url):
    env = _environ(DATABASE_URL=database_url)
    subprocess.run([REVIEWBRIDGE, "db", "upgrade"], cwd=tmp_path, env=env, check=True, capture_output=True, timeout=60)
    worker = subprocess.Popen(
        [REVIEWBRIDGE, "worker"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 30
        lines = []
        while time.monotonic() < deadline:
            line = worker.stdout.readline()
            lines.append(line)
            if "started" in line or not line:
                break
        assert any("started" in line for line in lines), "".join(lines)
        code, took = _stop(worker, timeout_s=15)
        assert code == 0 and took < 10.5
    finally:
        worker.kill()


def test_worker_refuses_to_start_on_an_unmigrated_database(tmp_path):
    env = _environ(DATABASE_URL=f"sqlite:///{tmp_path}/fresh.db")
    result = subprocess.run([REVIEWBRIDGE, "worker"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "reviewbridge db upgrade" in result.stderr


def test_bad_setting_stops_start_up_with_one_line_naming_the_variable(tmp_path):
    env = _environ(PORT="eighty")
    result = subprocess.run([REVIEWBRIDGE, "status"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert (
        result.stderr.strip().splitlines()[-1]
        == "reviewbridge: configuration error: PORT: 'eighty' is not a whole number"
    )


def _procfile(process: str) -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name == process:
            return command.strip()
    raise AssertionError(f"Procfile has no {process} process")


def test_procfile_release_and_web_commands_serve_trustoo_webhooks(tmp_path, database_url):
    port = _free_port()
    env = _environ(
        PORT=str(port),
        DATABASE_URL=database_url,
        TRUSTOO_PUBLIC_TOKEN="demo-public-token",
        TRUSTOO_PRIVATE_TOKEN="demo-private-token",
        PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    )
    subprocess.run(["bash", "-c", _procfile("release")], cwd=ROOT, env=env, check=True, capture_output=True, timeout=60)
    web = subprocess.Popen(
        ["bash", "-c", f"exec {_procfile('web')}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/readyz", web)
        sent = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", _readme_snippet()],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert sent.stdout == '{"code":0,"message":"success"}', sent.stderr
        code, _ = _stop(web, timeout_s=20)
        assert code == 0
    finally:
        web.kill()
