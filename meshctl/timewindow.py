"""`--since` / `--until` values: durations (`30m`, `1h30m`, `2d`) or absolute times (RFC 3339, epoch).

A duration is measured back from an anchor. For commands that talk to a live cluster the anchor is
now (as `kubectl logs --since`). For commands that analyze a stored dataset the anchor is the newest
row in the data, so `meshctl graph --since 10m` means "the last 10 minutes of what was recorded",
which is what one wants from yesterday's capture as much as from a live one.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from meshctl.errors import InputError

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta | None:
    """`90s`, `30m`, `1h30m`, `2d` → timedelta; None if `text` is not a duration."""
    text = text.strip()
    if not re.fullmatch(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+", text):
        return None
    total = sum(float(n) * _UNIT[u] for n, u in _DURATION.findall(text))
    return timedelta(seconds=total)


def parse_time(text: str, *, option: str = "--since") -> datetime:
    """An absolute time: RFC 3339 / ISO 8601 (naive = UTC) or Unix epoch seconds."""
    t = text.strip()
    if re.fullmatch(r"\d{9,}(\.\d+)?", t):
        return datetime.fromtimestamp(float(t), tz=timezone.utc)
    try:
        dt = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(
            f"{text!r} is neither a duration (30m, 1h30m) nor a time (2026-01-02T15:04:05Z, epoch seconds)",
            field=option,
        ) from None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def resolve_window(
    since: str | None, until: str | None, *, anchor: datetime | None = None
) -> tuple[datetime | None, datetime | None]:
    """Turn --since/--until into absolute [start, end) bounds. Durations count back from `anchor`
    (default: now). `until` as a duration means "that long before the anchor"."""
    anchor = anchor or datetime.now(timezone.utc)

    def one(value: str | None, option: str) -> datetime | None:
        if value is None:
            return None
        d = parse_duration(value)
        return anchor - d if d is not None else parse_time(value, option=option)

    start, end = one(since, "--since"), one(until, "--until")
    if start and end and start >= end:
        raise InputError(f"--since ({start.isoformat()}) is not before --until ({end.isoformat()})", field="--since")
    return start, end
