"""What the admin page may show of a payload or an error: never a secret.

Two rules, both applied everywhere in a value: any configured secret (a Settings field kept out of
repr) is replaced wherever it appears in text, and any mapping key that names a credential
(token, secret, password, authorization, signature, api key, …) has its value replaced whole.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from app.config import Settings

__all__ = ["REDACTED", "redact", "secrets_of"]

REDACTED = "[redacted]"
_SECRET_KEY_NAME = re.compile(
    r"token|secret|passw|authori[sz]ation|signature|^sign$|api[-_]?key|private|"
    r"credential|cookie|session",
    re.IGNORECASE,
)
_SHORTEST = 6  # shorter values would blank out ordinary words and numbers


def secrets_of(settings: Settings) -> list[str]:
    """Every secret value the settings hold (the fields kept out of repr), longest first."""
    values: list[str] = []
    for field in dataclasses.fields(settings):
        if field.repr:
            continue
        value = getattr(settings, field.name)
        values.extend(value if isinstance(value, tuple) else [value])
    return sorted({v for v in values if isinstance(v, str) and len(v) >= _SHORTEST}, key=len, reverse=True)


def redact(value: Any, secrets: list[str]) -> Any:
    """A copy of `value` (JSON-like: dicts, lists, text, numbers) with every secret replaced."""
    if isinstance(value, dict):
        return {
            key: REDACTED
            if isinstance(key, str) and _SECRET_KEY_NAME.search(key) and value[key] not in (None, "")
            else redact(item, secrets)
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact(item, secrets) for item in value]
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, REDACTED)
        return value
    return value
