"""`reviewbridge serve` as a new user meets it: one line, not a traceback, when the port is taken."""

from __future__ import annotations

import subprocess
import sys

from tests.processes import REVIEWBRIDGE, environ, free_port

#: A process that holds a port (bound and listening) until it is killed.
HOLD_PORT = (
    "import socket, sys, time\n"
    "held = socket.socket()\n"
    "held.bind(('127.0.0.1', int(sys.argv[1])))\n"
    "held.listen()\n"
    "print('holding', flush=True)\n"
    "time.sleep(120)\n"
)


def test_serve_on_a_port_in_use_says_so_in_one_line_and_exits_non_zero(tmp_path, database_url):
    port = free_port()
    holder = subprocess.Popen([sys.executable, "-c", HOLD_PORT, str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        result = subprocess.run(
            [REVIEWBRIDGE, "serve", "--host", "127.0.0.1"],
            cwd=tmp_path,
            env=environ(PORT=str(port), DATABASE_URL=database_url),
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
