"""The package as a user installs it: a wheel built from the project, installed in a fresh virtual
environment outside the checkout, migrates a new SQLite file and a new PostgreSQL database."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import scratch_database

ROOT = Path(__file__).resolve().parents[2]
#: What a source distribution holds; the wheel is built from a copy of just these.
PROJECT_FILES = ("pyproject.toml", "README.md", "app", "connectors", "migrations")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The `bin` folder of a fresh virtualenv holding only the wheel. Its dependencies come from this
    test's environment through a path entry: a .pth there adds the folder but runs none of its .pth
    files, so this checkout's editable install stays out."""
    source = tmp_path_factory.mktemp("source")
    for name in PROJECT_FILES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / name, source / name)
    wheels = tmp_path_factory.mktemp("wheels")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source)])
    [wheel] = wheels.glob("reviewbridge-*.whl")
    venv = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", str(wheel)])
    site = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).strip()
    Path(site, "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv / "bin"


def _run(argv: list[str], **options) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300, **options)
    assert result.returncode == 0, f"{argv[:4]} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _environ(**extra: str) -> dict[str, str]:
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("TRUSTOO_", "CTP_", "WIX_", "DATABASE_URL"))}
    return kept | {"PYTHONPATH": ""} | extra


def test_installed_wheel_is_imported_from_the_virtualenv_not_the_checkout(installed, tmp_path):
    where = _run(
        [str(installed / "python"), "-c", "import app, migrations; print(app.__file__, migrations.__file__)"],
        cwd=tmp_path,
        env=_environ(),
    )
    assert str(ROOT) not in where and str(installed.parent) in where


def test_installed_wheel_migrates_a_new_sqlite_file(installed, tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    output = _run([str(installed / "reviewbridge"), "db", "upgrade"], cwd=tmp_path, env=_environ(DATABASE_URL=url))
    assert "database at revision" in output
    current = _run([str(installed / "reviewbridge"), "db", "current"], cwd=tmp_path, env=_environ(DATABASE_URL=url))
    [head] = {word for word in current.split() if word[:1].isdigit()}
    assert f"current: {head}  head: {head}" in current


def test_installed_wheel_migrates_a_new_postgresql_database(installed, tmp_path, postgres_admin):
    with scratch_database(postgres_admin, "reviewbridge_wheel") as url:
        output = _run([str(installed / "reviewbridge"), "db", "upgrade"], cwd=tmp_path, env=_environ(DATABASE_URL=url))
        assert "database at revision" in output
        migrated = create_engine(url)
        with migrated.connect() as connection:
            names = set(
                connection.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars()
            )
        migrated.dispose()
    assert {"inbox", "ledger", "run", "alembic_version"} <= names


def test_installed_command_prints_its_version_and_help_without_a_valid_configuration(installed, tmp_path):
    broken = _environ(PORT="abc", DATABASE_URL="postgresql://nobody@127.0.0.1:9/none")
    assert (
        _run([str(installed / "reviewbridge"), "--version"], cwd=tmp_path, env=broken).strip() == "reviewbridge 0.1.0"
    )
    result = subprocess.run(
        [str(installed / "reviewbridge"), "--help"],
        cwd=tmp_path,
        env=broken,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and "Usage: reviewbridge" in result.stdout and result.stderr == ""
