"""How the dashboard writes instants and durations (the Jinja filters ``when`` and
``duration``).

An instant is a ``<time>`` element: its ``datetime`` attribute holds the exact instant in
ISO 8601 UTC, its text the instant in UTC to the second (never microseconds), and its title
the instant in UTC and, where one is given, in the job's zone. ``static/times.js`` then
rewrites the text in the viewer's own zone with a relative part ("4 min ago", "in 3 h")
and adds the local time to the title; without script the UTC text stands.
"""

from __future__ import annotations

from datetime import UTC, datetime

from markupsafe import Markup, escape

from hub_scheduler.domain.schedule import load_timezone


def _parse(value: datetime | str) -> datetime:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _instant(value: datetime | str) -> datetime:
    return _parse(value).astimezone(UTC).replace(microsecond=0)


def when(value: datetime | str | None, zone: str | None = None, empty: str = "-") -> Markup:
    """A ``<time>`` element for `value` (an aware datetime or ISO text), or `empty` for
    None; `zone` (an IANA name) adds the instant in that zone to the title."""
    if value is None:
        return escape(empty)
    instant = _instant(value)
    text = instant.strftime("%Y-%m-%d %H:%M:%S UTC")
    title = text
    if zone and zone != "UTC":
        local = instant.astimezone(load_timezone(zone))
        title += f" · {local.strftime('%Y-%m-%d %H:%M:%S %Z')} ({zone})"
    iso = instant.isoformat().replace("+00:00", "Z")
    return Markup('<time datetime="{}" title="{}">{}</time>').format(iso, title, text)


def duration(seconds: float | None, empty: str = "-") -> str:  # noqa: PLR0911 - one per unit
    """A human duration: "0.4 ms", "12 ms", "1.4 s", "42 s", "3 min 5 s", "2 h 5 min",
    "3 d 4 h" (never "0.0 s")."""
    if seconds is None:
        return empty
    if seconds < 0.01:
        ms = seconds * 1000
        return f"{ms:.1f} ms" if ms else "0 ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min {secs} s" if secs else f"{minutes} min"


def between(start: datetime | str | None, end: datetime | str | None) -> float | None:
    """Seconds from `start` to `end`, None unless both are known."""
    if start is None or end is None:
        return None
    return max(0.0, (_parse(end) - _parse(start)).total_seconds())
