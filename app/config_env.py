"""Reading one variable of the environment mapping `app/config.py` was given, as the type it holds."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

__all__ = ["Env", "SettingsError"]

_FLAGS = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False, "off": False}


class SettingsError(ValueError):
    """A variable has a value we cannot use; the message names it."""

    def __init__(self, variable: str, problem: str):
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


class Env:
    """Typed reads of one environment mapping: each refuses a value it cannot use with a SettingsError
    naming the variable, and never puts a secret's value in the message."""

    def __init__(self, environ: Mapping[str, str]):
        self._environ = environ

    def text(self, name: str) -> str | None:
        value = self._environ.get(name, "").strip()
        return value or None

    def integer(self, name: str, default: int, *, low: int, high: int) -> int:
        return int(self._bounded(name, default, low, high, int))

    def optional_integer(self, name: str, *, low: int, high: int) -> int | None:
        return None if self.text(name) is None else self.integer(name, 0, low=low, high=high)

    def number(self, name: str, default: float, *, low: float, high: float) -> float:
        return float(self._bounded(name, default, low, high, float))

    def _bounded(self, name, default, low, high, kind):
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = kind(raw)
        except ValueError:
            raise SettingsError(name, f"{raw!r} is not a {'whole ' if kind is int else ''}number") from None
        if not low <= value <= high:
            raise SettingsError(name, f"{raw} is outside {low}..{high}")
        return value

    def choice(self, name: str, default: str, allowed: tuple[str, ...], *, upper: bool = False) -> str:
        raw = self.text(name)
        if raw is None:
            return default
        value = raw.upper() if upper else raw.lower()
        if value not in allowed:
            raise SettingsError(name, f"{raw!r} is not one of {', '.join(allowed)}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        raw = self.text(name)
        if raw is None:
            return default
        if raw.lower() not in _FLAGS:
            raise SettingsError(name, f"{raw!r} is not one of true, false, 1, 0, yes, no, on, off")
        return _FLAGS[raw.lower()]

    def secret(self, name: str, *, min_length: int) -> str | None:
        value = self.text(name)
        if value is not None and len(value) < min_length:
            # The message names the rule, never the value.
            raise SettingsError(name, f"is shorter than {min_length} characters")
        return value

    def strong_secret(self, name: str, *, min_length: int) -> str | None:
        """A secret people type or paste to sign in: long, and not one anybody could guess."""
        value = self.text(name)
        if value is None:
            return None
        weakness = _weakness(value, min_length)
        if weakness:
            raise SettingsError(
                name, f"{weakness}; generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return value

    def secret_list(self, name: str, *, min_length: int = 1) -> tuple[str, ...]:
        raw = self.text(name)
        if raw is None:
            return ()
        values = tuple(part.strip() for part in raw.split(","))
        if not all(values):
            raise SettingsError(name, "has an empty entry in its comma-separated list")
        if any(len(value) < min_length for value in values):
            raise SettingsError(name, f"has an entry shorter than {min_length} characters")
        return values

    def url(self, name: str, default: str) -> str:
        value = self.text(name) or default
        if not value.startswith(("http://", "https://")):
            raise SettingsError(name, "must start with http:// or https://")
        return value.rstrip("/")

    def optional_url(self, name: str) -> str | None:
        """An http(s) URL with a host, or None when unset. The message never shows the value: some
        URLs carry a token (a Slack webhook's)."""
        value = self.text(name)
        if value is None:
            return None
        try:
            parts = urlsplit(value)
            usable = parts.scheme in ("http", "https") and bool(parts.hostname)
        except ValueError:  # e.g. an unclosed [IPv6 host
            usable = False
        if not usable:
            raise SettingsError(name, "must be an http:// or https:// URL with a host")
        return value


#: Runs a person types for "random": the alphabet and digits (both ways round) and the keyboard's rows.
_RUNS = ("0123456789abcdefghijklmnopqrstuvwxyz", "abcdefghijklmnopqrstuvwxyz0123456789", "qwertyuiopasdfghjklzxcvbnm")
_MIN_DISTINCT = 10


def _weakness(value: str, min_length: int) -> str | None:
    """What makes a secret easy to guess, in words that never quote it; None when nothing does."""
    if len(value) < min_length:
        return f"is shorter than {min_length} characters"
    if len(set(value)) < _MIN_DISTINCT:
        return f"has fewer than {_MIN_DISTINCT} different characters"
    # A value made of one short pattern over and over (abcabcabc…) repeats itself at its period.
    if any(value[period:] == value[:-period] for period in range(1, len(value) // 2 + 1)):
        return "repeats one short pattern"
    letters = "".join(char for char in value.lower() if char.isalnum())
    if len(letters) >= _MIN_DISTINCT and any(letters in run or letters in run[::-1] for run in (r * 2 for r in _RUNS)):
        return "is a run of the alphabet, the digits or the keyboard"
    return None
