"""Dates as the REST methods take them: ISO 8601, with a trailing ``Z`` for UTC (which Python 3.10's
``fromisoformat`` does not read), a moment without an offset taken as UTC."""

from __future__ import annotations

from datetime import datetime, timezone

__all__ = ["day_at_midnight", "parse_moment"]


def parse_moment(text: str) -> datetime | None:
    """The moment ``text`` names (offset-aware), or ``None`` when it is not an ISO 8601 date or date-time."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def day_at_midnight(moment: datetime) -> str:
    """The day of ``moment`` (in its own offset) as the portal answers a date: midnight UTC, ISO 8601."""
    day = moment.date()
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc).isoformat()
