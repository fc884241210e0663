"""Intervals as months, days and nanoseconds, the way PostgreSQL and DuckDB hold them.

A ``timedelta`` cannot say "1 month" (30 days? 31?), so intervals travel as Arrow's
``MonthDayNano`` from source to target: read from PostgreSQL as ISO 8601 text, written back as
text each engine parses, or handed to DuckDB as they are.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pyarrow as pa

_ISO = re.compile(
    r"^P(?:(?P<y>-?\d+)Y)?(?:(?P<mo>-?\d+)M)?(?:(?P<w>-?\d+)W)?(?:(?P<d>-?\d+)D)?"
    r"(?:T(?:(?P<h>-?\d+)H)?(?:(?P<mi>-?\d+)M)?(?:(?P<s>-?\d+(?:\.\d+)?)S)?)?$"
)


def parse_iso_interval(text: str) -> pa.MonthDayNano:
    """Parse PostgreSQL's ``intervalstyle = iso_8601`` output, e.g. ``P1Y2M3DT4H5M6.5S``."""
    match = _ISO.match(text.strip())
    if not match:
        raise ValueError(f"not an ISO 8601 interval: {text!r}")
    part = {k: v or "0" for k, v in match.groupdict().items()}
    months = int(part["y"]) * 12 + int(part["mo"])
    days = int(part["w"]) * 7 + int(part["d"])
    seconds = int(part["h"]) * 3600 + int(part["mi"]) * 60
    nanos = seconds * 1_000_000_000 + round(float(part["s"]) * 1_000_000_000)
    return pa.MonthDayNano([months, days, nanos])


def interval_parts(value: Any) -> tuple[int, int, int]:
    """(months, days, nanoseconds) of a MonthDayNano or a timedelta."""
    if isinstance(value, dt.timedelta):
        micros = value.seconds * 1_000_000 + value.microseconds
        return 0, value.days, micros * 1000
    return int(value.months), int(value.days), int(value.nanoseconds)


def interval_text(value: Any) -> str:
    """PostgreSQL-style text (``1 year 2 mons 3 days 04:05:06.5``), which PostgreSQL parses."""
    months, days, nanos = interval_parts(value)
    parts = []
    years, months = divmod(abs(months), 12) if months >= 0 else (0, months)
    if years:
        parts.append(f"{years} year{'s' if years != 1 else ''}")
    if months:
        parts.append(f"{months} mon{'s' if abs(months) != 1 else ''}")
    if days:
        parts.append(f"{days} day{'s' if abs(days) != 1 else ''}")
    if nanos or not parts:
        sign = "-" if nanos < 0 else ""
        micros = abs(nanos) // 1000
        hours, rest = divmod(micros, 3_600_000_000)
        minutes, rest = divmod(rest, 60_000_000)
        seconds, fraction = divmod(rest, 1_000_000)
        clock = f"{sign}{hours:02d}:{minutes:02d}:{seconds:02d}"
        parts.append(clock + (f".{fraction:06d}".rstrip("0") if fraction else ""))
    return " ".join(parts)
