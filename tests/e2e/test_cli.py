"""The command line a user meets: help without a database or a valid configuration, the version,
configuration lines only where a process starts, no Flask development commands."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from app.cli import cli

REVIEWBRIDGE = str(Path(sys.executable).parent / "reviewbridge")
BROKEN = {"PORT": "abc", "DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none", "WORKER_CONCURRENCY": "-1"}


def _paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += _paths(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


@pytest.mark.parametrize("path", _paths(cli), ids=lambda path: " ".join(path) or "reviewbridge")
def test_every_help_works_with_a_broken_configuration_and_no_database(path):
    result = CliRunner().invoke(cli, [*path, "--help"], env=BROKEN, prog_name="reviewbridge")
    assert result.exit_code == 0, result.output
    assert "Usage: reviewbridge" in result.output


def test_help_shows_no_flask_development_server_or_app_options():
    output = CliRunner().invoke(cli, ["--help"]).output
    listed = {line.split()[0] for line in output.split("Commands:")[1].splitlines() if line.strip()}
    assert "run" not in listed and {"serve", "worker", "shell", "routes"} <= listed
    assert "--app" not in output and "-A," not in output
    assert "-e, --env-file FILE" in output  # ours, and it works (below)


def test_version_is_the_installed_version():
    result = CliRunner().invoke(cli, ["--version"], env=BROKEN)
    assert result.exit_code == 0 and result.output == f"reviewbridge {importlib.metadata.version('reviewbridge')}\n"


def _process(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("TRUSTOO_", "CTP_", "WIX_", "DATABASE_URL"))}
    return subprocess.run(
        [REVIEWBRIDGE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=kept | {"LOG_LEVEL": "INFO"} | env,
        cwd=cwd,
    )


def test_reviewbridge_help_with_a_broken_port_prints_help_and_no_log_lines():
    result = _process("--help", PORT="abc")
    assert result.returncode == 0 and "Usage: reviewbridge" in result.stdout
    assert result.stderr == ""


def test_configuration_lines_are_logged_by_doctor_but_not_by_one_off_commands(tmp_path):
    database = f"sqlite:///{tmp_path / 'cli.db'}"
    assert _process("db", "upgrade", DATABASE_URL=database).returncode == 0

    status = _process("status", DATABASE_URL=database)
    doctor = _process("doctor", DATABASE_URL=database)

    assert status.returncode == 0 and "config:" not in status.stderr + status.stdout
    assert "config: database" in doctor.stderr + doctor.stdout


# --- -e/--env-file: variables from a file, the environment's first -------------------------------


def test_env_file_gives_a_command_its_variables(database_url, tmp_path):
    env_file = tmp_path / "settings.env"
    env_file.write_text(f"# the database to read\nDATABASE_URL={database_url}\n")
    # Without the file, DATABASE_URL is unset: the default SQLite file under tmp_path, never migrated.
    assert _process("status", cwd=tmp_path).returncode == 1

    result = _process("-e", str(env_file), "status", "--json", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["totals"]["pending"] == 0


def test_env_file_leaves_a_variable_the_environment_already_sets(database_url, tmp_path):
    env_file = tmp_path / "settings.env"
    env_file.write_text(f"DATABASE_URL={database_url}\nPORT=abc\n")

    assert _process("-e", str(env_file), "status", PORT="8000").returncode == 0
    refused = _process("-e", str(env_file), "status")
    assert refused.returncode != 0 and "PORT" in refused.stderr and "Traceback" not in refused.stderr


def test_env_file_that_does_not_exist_is_refused_naming_it(tmp_path):
    result = _process("-e", str(tmp_path / "missing.env"), "status")
    assert result.returncode == 2 and "missing.env" in result.stderr and "does not exist" in result.stderr


def test_a_broken_configuration_stops_a_command_that_needs_it_with_the_variable_named():
    result = _process("status", PORT="abc")
    assert result.returncode != 0 and "PORT" in result.stderr and "Traceback" not in result.stderr


# --- database errors: one line with the next step -------------------------------------------------


@pytest.fixture
def missing_postgres_database(postgres_admin) -> str:
    """A PostgreSQL URL whose server runs but whose database was never created."""
    return postgres_admin.url.set(database="reviewbridge_never_created").render_as_string(hide_password=False)


def test_db_upgrade_on_a_postgresql_database_that_does_not_exist_says_to_create_it(missing_postgres_database):
    result = _process("db", "upgrade", DATABASE_URL=missing_postgres_database)
    assert result.returncode == 1
    assert result.stderr == (
        'Error: database "reviewbridge_never_created" does not exist: create it '
        "(createdb reviewbridge_never_created) or correct DATABASE_URL\n"
    )


@pytest.mark.parametrize("command", [("status",), ("events", "list"), ("products", "list"), ("accounts", "list")])
def test_a_command_on_an_unmigrated_database_says_to_run_db_upgrade(tmp_path, command):
    result = _process(*command, DATABASE_URL=f"sqlite:///{tmp_path / 'fresh.db'}")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("Error: the database is not migrated (no such table: ")
    assert line.endswith("run `reviewbridge db upgrade`")


def test_doctor_keeps_the_databases_own_reason(missing_postgres_database):
    result = _process("doctor", DATABASE_URL=missing_postgres_database)
    assert result.returncode == 1
    assert 'database "reviewbridge_never_created" does not exist' in result.stdout
