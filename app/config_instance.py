"""The embedded mode's own ADMIN_TOKEN and SECRET_KEY, kept beside its SQLite database.

On a fresh clone nobody has set either, and without them the admin page is off (404) or refused (503).
So `reviewbridge serve` makes each one the environment leaves unset on its first start
(`secrets.token_urlsafe(32)`, which passes ADMIN_TOKEN's strength check) and keeps it in `secrets.json`
in the database's folder (`instance/` by default), readable by its owner alone (mode 0600). Later
starts, and the one-off commands run against that database, use what is kept: SECRET_KEY seals the
credentials stored in that database, so it stays with it. A variable the environment sets always wins,
and is then neither made nor written down. Only a SQLite file has a folder of its own: with PostgreSQL
(a PaaS, where app.json generates both) nothing is kept anywhere.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url

from app.config_env import SettingsError

__all__ = ["FILE_NAME", "KeptSecrets", "keep_secrets"]

FILE_NAME = "secrets.json"
_NAMES = ("ADMIN_TOKEN", "SECRET_KEY")


@dataclass(frozen=True)
class KeptSecrets:
    #: The environment to read the settings from: the one given, with the kept values it leaves unset.
    environ: Mapping[str, str] = field(repr=False)
    path: Path | None = None  # where they are kept; None: nowhere (not a SQLite file)
    used: tuple[str, ...] = ()  # the variables taken from the file
    created: tuple[str, ...] = ()  # the variables made on this start


def keep_secrets(database_url: str, environ: Mapping[str, str], *, create: bool) -> KeptSecrets:
    """What is kept for the variables `environ` leaves unset; with `create`, the missing ones are made."""
    folder = _folder(database_url)
    if folder is None:
        return KeptSecrets(environ)
    path = folder / FILE_NAME
    unset = [name for name in _NAMES if not environ.get(name, "").strip()]
    if not unset:
        return KeptSecrets(environ, path)
    kept = _read(path)
    made = {name: secrets.token_urlsafe(32) for name in unset if name not in kept} if create else {}
    if made:
        kept = _write(path, kept | made, replace=bool(kept))
    used = tuple(name for name in unset if name in kept)
    created = tuple(name for name in made if kept.get(name) == made[name])
    return KeptSecrets({**environ, **{name: kept[name] for name in used}}, path, used, created)


def _folder(database_url: str) -> Path | None:
    url = make_url(database_url)
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in ("", ":memory:") or url.query.get("mode") == "memory":
        return None
    return Path(database).parent


def _read(path: Path) -> dict[str, str]:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return {}
    if mode & 0o077:  # copied or restored with looser rights: only the owner may read a secret
        path.chmod(0o600)
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        kept = None
    if not isinstance(kept, dict) or not all(isinstance(kept.get(name, ""), str) for name in _NAMES):
        raise SettingsError(
            str(path),
            "is not the JSON object of ADMIN_TOKEN and SECRET_KEY that `reviewbridge serve` keeps: fix it, or "
            "remove it to have new ones made (credentials stored with the old SECRET_KEY will not open)",
        )
    return {name: kept[name] for name in _NAMES if kept.get(name)}


def _write(path: Path, kept: dict[str, str], *, replace: bool) -> dict[str, str]:
    """Write `kept` whole, mode 0600 from the start; returns what the file holds afterwards. A first
    file is linked into place, which fails if another process made one meanwhile: then that one counts."""
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(kept, handle, indent=2)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    try:
        if replace:
            os.replace(draft, path)
            return kept
        os.link(draft, path)
        return kept
    except FileExistsError:
        return _read(path)
    finally:
        draft.unlink(missing_ok=True)
