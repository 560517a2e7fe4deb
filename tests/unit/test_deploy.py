"""The deploy files agree with the code: every variable the service reads is in app.json."""

import json
import re
from pathlib import Path

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
    assert processes["release"] == "reviewbridge db upgrade"
    assert processes["web"].startswith("gunicorn 'app:create_app()' --bind 0.0.0.0:$PORT")
    assert processes["worker"] == "reviewbridge worker"


def test_every_variable_is_in_the_readme_table():
    readme = (ROOT / "README.md").read_text()
    assert {name for name in _variables_read() if f"`{name}`" not in readme} == set()
