"""The deploy files agree with the code: every variable the service reads is in app.json."""

import json
import os
import re
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[2]


def _variables_read() -> set[str]:
    source = (ROOT / "app" / "config.py").read_text()
    return set(re.findall(r'env\.\w+\(\s*"([A-Z0-9_]+)"', source))


def test_app_json_describes_every_variable_the_config_reads():
    manifest = json.loads((ROOT / "app.json").read_text())
    missing = _variables_read() - set(manifest["env"]) - {"DATABASE_URL", "PORT"}  # set by the PaaS itself
    assert missing == set()
    assert all(spec.get("description") for spec in manifest["env"].values())


def test_app_json_generates_the_secrets_and_adds_postgres():
    manifest = json.loads((ROOT / "app.json").read_text())
    assert manifest["env"]["SECRET_KEY"]["generator"] == "secret"
    assert manifest["env"]["ADMIN_TOKEN"]["generator"] == "secret"
    assert any(addon["plan"].startswith("heroku-postgresql") for addon in manifest["addons"])


def test_procfile_runs_release_web_and_worker():
    processes = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line)
    assert processes["release"] == "reviewbridge db upgrade && reviewbridge setup commercetools --if-configured"
    assert processes["web"].startswith("gunicorn 'app:create_app(role=\"web\")' --bind 0.0.0.0:$PORT")
    assert processes["worker"] == "reviewbridge worker"


def test_every_variable_is_in_the_readme_table():
    readme = (ROOT / "README.md").read_text()
    assert {name for name in _variables_read() if f"`{name}`" not in readme} == set()


def _gunicorn_conf() -> dict:
    import runpy

    return runpy.run_path(str(ROOT / "gunicorn.conf.py"))


def test_gunicorn_conf_gives_the_web_process_a_metrics_folder_of_its_own_and_removes_it(monkeypatch):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")  # unset, as on a PaaS; restored afterwards
    conf = _gunicorn_conf()
    folder = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    assert folder.is_dir()

    conf["on_exit"](None)

    assert not folder.exists()


def test_gunicorn_conf_empties_a_chosen_metrics_folder_at_start_and_keeps_it(monkeypatch, tmp_path):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    (tmp_path / "counter_4242.db").write_bytes(b"from an earlier run")
    (tmp_path / "notes.txt").write_text("not ours")
    conf = _gunicorn_conf()

    conf["on_starting"](None)
    conf["child_exit"](None, SimpleNamespace(pid=4242))
    conf["on_exit"](None)

    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.txt"]


def test_gunicorn_conf_trusts_forwarded_headers_from_forwarded_allow_ips_only(monkeypatch):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")
    trusted = []
    for value in (None, "10.0.0.0/8"):
        if value is None:
            monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
        else:
            monkeypatch.setenv("FORWARDED_ALLOW_IPS", value)
        conf = _gunicorn_conf()
        conf["on_exit"](None)  # removes the metrics folder it made
        trusted.append(conf["forwarded_allow_ips"])
    assert trusted == ["127.0.0.1,::1", "10.0.0.0/8"]


def test_app_json_trusts_the_paas_router_whose_address_is_not_known():
    manifest = json.loads((ROOT / "app.json").read_text())
    assert manifest["env"]["FORWARDED_ALLOW_IPS"]["value"] == "*"


#: Connection limits of the Heroku Postgres plans app.json might name, from Heroku's Dev Center
#: (https://devcenter.heroku.com/articles/heroku-postgres-plans and .../postgres-essential-tier).
HEROKU_POSTGRES_CONNECTIONS = {
    "heroku-postgresql:essential-0": 20,
    "heroku-postgresql:essential-1": 20,
    "heroku-postgresql:essential-2": 40,
    "heroku-postgresql:standard-0": 120,
}


def _most_connections(settings, role) -> int:
    from app.bootstrap import most_connections

    return most_connections(settings, role)


def test_app_json_database_plan_holds_the_connections_of_its_dynos_and_a_one_off_command():
    from app.config import load_settings

    manifest = json.loads((ROOT / "app.json").read_text())
    values = {name: spec["value"] for name, spec in manifest["env"].items() if "value" in spec}
    settings = load_settings(values)
    formation = manifest["formation"]

    web = formation["web"]["quantity"] * int(values["WEB_CONCURRENCY"]) * _most_connections(settings, "web")
    worker = formation["worker"]["quantity"] * _most_connections(settings, "worker")
    # A deploy's release phase (or a `heroku run`) opens its own while the running dynos keep theirs.
    one_off = _most_connections(settings, "command")
    [plan] = [addon["plan"] for addon in manifest["addons"] if addon["plan"].startswith("heroku-postgresql")]

    assert web + worker + one_off <= HEROKU_POSTGRES_CONNECTIONS[plan]


def test_readme_states_each_process_s_connections_as_the_pools_are_sized():
    from app.config import load_settings

    readme = (ROOT / "README.md").read_text()
    base = load_settings({"WORKER_CONCURRENCY": "1", "WEB_THREADS": "1"})
    web_extra = _most_connections(base, "web") - 1
    worker_extra = _most_connections(base, "worker") - 1

    assert f"`WEB_CONCURRENCY` \u00d7 (`WEB_THREADS` + {web_extra})" in readme
    assert f"`WORKER_CONCURRENCY` + {worker_extra}" in readme
    assert f"| one-off (`release`, `heroku run …`) | {_most_connections(base, 'command')} |" in readme
