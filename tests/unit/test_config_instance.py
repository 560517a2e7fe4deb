"""The embedded mode's kept ADMIN_TOKEN and SECRET_KEY (app/config_instance.py): made once beside the
SQLite database with mode 0600, reused, never made nor used for a variable the environment sets."""

from __future__ import annotations

import json
import stat

import pytest

from app.config import SettingsError, kept_secrets, load_settings

ENV_ADMIN_TOKEN = "env-admin-token-Vb4Nc8Rt3Wz6Ym1Hq2Lx9"
ENV_SECRET_KEY = "env-secret-key-8f2a91c0"


def _sqlite(tmp_path, **extra: str) -> dict[str, str]:
    return {"DATABASE_URL": f"sqlite:///{tmp_path}/instance/reviewbridge.db", **extra}


def _kept_file(tmp_path):
    return tmp_path / "instance" / "secrets.json"


def test_embedded_first_start_makes_both_secrets_beside_the_database_readable_by_its_owner_only(tmp_path):
    kept = kept_secrets(_sqlite(tmp_path), create=True)

    path = _kept_file(tmp_path)
    assert kept.path == path and kept.created == kept.used == ("ADMIN_TOKEN", "SECRET_KEY")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {name: kept.environ[name] for name in kept.used}
    settings = load_settings(kept.environ)  # the made token passes ADMIN_TOKEN's strength check
    assert settings.admin_token and settings.secret_key and settings.admin_token != settings.secret_key


def test_embedded_next_start_reuses_what_the_first_one_kept(tmp_path):
    first = kept_secrets(_sqlite(tmp_path), create=True)
    second = kept_secrets(_sqlite(tmp_path), create=True)

    assert second.created == () and second.used == ("ADMIN_TOKEN", "SECRET_KEY")
    assert {name: second.environ[name] for name in second.used} == {name: first.environ[name] for name in first.used}


@pytest.mark.parametrize(
    ("set_by_environment", "kept_name"),
    [({"ADMIN_TOKEN": ENV_ADMIN_TOKEN}, "SECRET_KEY"), ({"SECRET_KEY": ENV_SECRET_KEY}, "ADMIN_TOKEN")],
)
def test_embedded_variable_set_in_the_environment_wins_and_is_never_written(tmp_path, set_by_environment, kept_name):
    kept = kept_secrets(_sqlite(tmp_path, **set_by_environment), create=True)

    assert kept.created == kept.used == (kept_name,)
    [(name, value)] = set_by_environment.items()
    assert kept.environ[name] == value
    assert set(json.loads(_kept_file(tmp_path).read_text())) == {kept_name}


def test_embedded_environment_with_both_set_writes_no_file(tmp_path):
    environ = _sqlite(tmp_path, ADMIN_TOKEN=ENV_ADMIN_TOKEN, SECRET_KEY=ENV_SECRET_KEY)

    kept = kept_secrets(environ, create=True)

    assert kept.used == kept.created == () and dict(kept.environ) == environ
    assert not _kept_file(tmp_path).exists()


def test_environment_value_wins_over_a_kept_one(tmp_path):
    made = kept_secrets(_sqlite(tmp_path), create=True)

    later = kept_secrets(_sqlite(tmp_path, ADMIN_TOKEN=ENV_ADMIN_TOKEN), create=True)

    assert later.environ["ADMIN_TOKEN"] == ENV_ADMIN_TOKEN and later.used == ("SECRET_KEY",)
    assert later.environ["SECRET_KEY"] == made.environ["SECRET_KEY"]


def test_one_off_commands_read_what_serve_kept_and_make_nothing(tmp_path):
    assert kept_secrets(_sqlite(tmp_path), create=False).used == ()
    assert not _kept_file(tmp_path).exists()

    made = kept_secrets(_sqlite(tmp_path), create=True)
    read = kept_secrets(_sqlite(tmp_path), create=False)

    assert read.created == () and read.environ["SECRET_KEY"] == made.environ["SECRET_KEY"]


@pytest.mark.parametrize(
    "database_url", ["postgresql://postgres@127.0.0.1:5432/reviewbridge", "sqlite://", "sqlite:///:memory:"]
)
def test_a_database_without_a_folder_of_its_own_keeps_nothing(tmp_path, monkeypatch, database_url):
    monkeypatch.chdir(tmp_path)

    kept = kept_secrets({"DATABASE_URL": database_url}, create=True)

    assert kept.path is None and kept.used == () and "ADMIN_TOKEN" not in kept.environ
    assert list(tmp_path.iterdir()) == []


def test_kept_file_readable_by_others_is_made_owner_only_again(tmp_path):
    kept_secrets(_sqlite(tmp_path), create=True)
    _kept_file(tmp_path).chmod(0o644)

    kept_secrets(_sqlite(tmp_path), create=False)

    assert stat.S_IMODE(_kept_file(tmp_path).stat().st_mode) == 0o600


def test_unreadable_kept_file_stops_start_up_naming_the_file_and_the_fix(tmp_path):
    _kept_file(tmp_path).parent.mkdir()
    _kept_file(tmp_path).write_text("ADMIN_TOKEN=half written")

    with pytest.raises(SettingsError) as raised:
        kept_secrets(_sqlite(tmp_path), create=True)

    assert str(_kept_file(tmp_path)) in str(raised.value) and "remove it" in str(raised.value)
