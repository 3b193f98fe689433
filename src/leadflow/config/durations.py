"""Durations as people write them in the config: ``90s``, ``15m``, ``4h``, ``1h30m``, ``90d``."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+)([smhdw])")
_WHOLE = re.compile(r"(?:\d+[smhdw])+")


def parse_duration(value: object) -> timedelta:
    """Parse ``"1h30m"``-style text (or a number of seconds) into a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("a duration like '15m', '4h' or '7d' is expected")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return timedelta(seconds=value)
    if not isinstance(value, str):
        raise ValueError("a duration like '15m', '4h' or '7d' is expected")
    text = value.strip().lower().replace(" ", "")
    if not _WHOLE.fullmatch(text):
        raise ValueError(
            f"{value!r} is not a duration; write a number and a unit "
            "(s, m, h, d, w), e.g. '15m', '4h', '1h30m', '7d'"
        )
    seconds = sum(int(n) * _UNITS[unit] for n, unit in _PART.findall(text))
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """The shortest ``1h30m``-style text for a duration (inverse of parse_duration)."""
    seconds = int(delta.total_seconds())
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in sorted(_UNITS.items(), key=lambda item: -item[1]):
        if unit == "w":
            continue
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
