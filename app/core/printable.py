"""Text from a platform as a log line or a terminal may show it: control characters as escapes.

A review id holding a line break would otherwise start a forged log line, and an ESC would drive
the terminal of whoever reads `reviewbridge status`."""

from __future__ import annotations

import re

__all__ = ["printable"]

#: C0 controls, DEL, C1 controls, and the Unicode line and paragraph separators.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str, *, tab: bool = True) -> str:
    """`text` with each control character written as an escape (`\\n`, `\\x1b`); a tab is kept
    when `tab` (a log line), escaped otherwise (a table cell, where it would break the columns)."""
    return _CONTROLS.sub(lambda found: _escape(found.group(), tab), text)


def _escape(char: str, tab: bool) -> str:
    if char == "\t" and tab:
        return char
    return _NAMED.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")
