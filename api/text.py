"""Cleaning display text that other people's screens and logs will show.

Control, format (bidi overrides such as U+202E, zero-width characters) and
line/paragraph separator characters let a name disguise itself ("cat\u202egnp.exe")
or forge log lines; names are shown, never parsed, so they are simply dropped.
"""

from __future__ import annotations

import unicodedata

_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def clean_display_name(text: str) -> str:
    """`text` without control/format/bidi characters, whitespace runs collapsed to one space."""
    kept = "".join(
        " " if ch.isspace() else ch
        for ch in text
        if ch.isspace() or unicodedata.category(ch) not in _DROPPED_CATEGORIES
    )
    return " ".join(kept.split())
