"""`reviewbridge serve` as a new user meets it: the admin page on the first run (URL and token printed,
kept for the next start, the environment's own values winning), and one line when the port is taken."""

from __future__ import annotations

import json
import stat
import subprocess
import sys

import httpx
import pytest

from tests.e2e.admin_page_helpers import csrf_token
from tests.processes import REVIEWBRIDGE, environ, free_port, read_until, start_serve, stop

ENV_ADMIN_TOKEN = "env-admin-token-Vb4Nc8Rt3Wz6Ym1Hq2Lx9"
ENV_SECRET_KEY = "env-secret-key-8f2a91c0"
#: A process that holds a port (bound and listening) until it is killed.
HOLD_PORT = (
    "import socket, sys, time\n"
    "held = socket.socket()\n"
    "held.bind(('127.0.0.1', int(sys.argv[1])))\n"
    "held.listen()\n"
    "print('holding', flush=True)\n"
    "time.sleep(120)\n"
)


def _environ(port: int, **extra: str) -> dict[str, str]:
    env = environ(PORT=str(port), **extra)
    for name in ("ADMIN_TOKEN", "SECRET_KEY", "SECRET_KEY_FALLBACKS"):
        if name not in extra:
            env.pop(name, None)
    return env


def _signs_in(port: int, token: str) -> bool:
    """The admin page's sign-in form, filled in as a browser would; True when the dashboard then opens."""
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as browser:
        form = browser.get("/admin/login")
        assert form.status_code == 200, form.text
        answer = browser.post("/admin/login", data={"token": token, "csrf_token": csrf_token(form.text)})
        return answer.status_code == 302 and browser.get("/admin/").status_code == 200


def _serve_once(env: dict[str, str], cwd) -> tuple[list[str], str]:
    """Start serve, read what it printed up to its admin lines, sign in with the token it printed (or the
    environment's), stop it; its admin lines, and everything it printed (its log lines too)."""
    serve = start_serve(env, cwd)
    try:
        printed = read_until(serve, "admin page:")
        if printed[-1].rstrip().endswith("/admin"):  # the token and where it is kept follow
            printed += read_until(serve, "kept in")
        admin = [line for line in printed if line.startswith(("admin ", "  ("))]
        token = next((line.partition(":")[2].strip() for line in admin if line.startswith("admin token:")), None)
        assert _signs_in(int(env["PORT"]), token or ENV_ADMIN_TOKEN)
        code, _ = stop(serve, timeout_s=20)
        assert code == 0
    finally:
        serve.kill()
        rest = serve.stdout.read()
    return admin, "".join(printed) + rest


def test_serve_first_start_prints_an_admin_token_that_signs_in_and_the_next_start_reuses_it(tmp_path):
    # No DATABASE_URL: the embedded default, instance/reviewbridge.db under the working directory (SQLite).
    tokens = []
    for start, port in (("made now", free_port()), ("made on the first start", free_port())):
        admin, output = _serve_once(_environ(port), tmp_path)
        assert admin[0] == f"admin page: http://127.0.0.1:{port}/admin\n"
        token = admin[1].partition("admin token:")[2].strip()
        assert admin[2].startswith(f"  ({start}, kept in instance/secrets.json")
        assert output.count(token) == 1  # on the operator's terminal once, never in a log line
        tokens.append(token)

    assert tokens[0] == tokens[1]
    kept = tmp_path / "instance" / "secrets.json"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert json.loads(kept.read_text())["ADMIN_TOKEN"] == tokens[0]


def test_serve_uses_admin_token_and_secret_key_from_the_environment_and_keeps_nothing(tmp_path):
    port = free_port()

    admin, output = _serve_once(_environ(port, ADMIN_TOKEN=ENV_ADMIN_TOKEN, SECRET_KEY=ENV_SECRET_KEY), tmp_path)

    assert admin == [f"admin page: http://127.0.0.1:{port}/admin (sign in with your ADMIN_TOKEN)\n"]
    assert ENV_ADMIN_TOKEN not in output and ENV_SECRET_KEY not in output
    assert not (tmp_path / "instance" / "secrets.json").exists()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_serve_on_postgresql_keeps_no_secrets_and_says_what_to_set(tmp_path, database_url):
    serve = start_serve(_environ(free_port(), DATABASE_URL=database_url), tmp_path)
    try:
        [*_, line] = read_until(serve, "admin page:")
        stop(serve, timeout_s=20)
    finally:
        serve.kill()
    assert line.startswith("admin page: off until ADMIN_TOKEN and SECRET_KEY are set")
    assert list(tmp_path.iterdir()) == []


def test_serve_on_a_port_in_use_says_so_in_one_line_and_exits_non_zero(tmp_path, database_url):
    port = free_port()
    holder = subprocess.Popen([sys.executable, "-c", HOLD_PORT, str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        result = subprocess.run(
            [REVIEWBRIDGE, "serve", "--host", "127.0.0.1"],
            cwd=tmp_path,
            env=_environ(port, DATABASE_URL=database_url),
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        holder.kill()
        holder.wait()

    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"Error: port {port} is in use: stop the other process, or set PORT (or --port) to a free port"
    )
    assert "serving on" not in result.stdout and "Traceback" not in result.stderr
