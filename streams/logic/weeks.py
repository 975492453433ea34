"""ISO 8601 weeks in UTC: the unit every weekly metric is keyed by (not Faust windows,
which are epoch-aligned and expire on wall-clock time)."""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, timedelta


def iso_week(moment: datetime) -> str:
    """``YYYY-Www`` of an aware datetime, taken in UTC."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: occurred_at must carry an offset")
    year, week, _ = moment.astimezone(UTC).isocalendar()
    return f"{year:04d}-W{week:02d}"


def week_monday(week: str) -> date:
    """The Monday that starts an ISO week string."""
    year, _, number = week.partition("-W")
    return date.fromisocalendar(int(year), int(number), 1)


def previous_week(week: str) -> str:
    monday = week_monday(week) - timedelta(days=7)
    year, number, _ = monday.isocalendar()
    return f"{year:04d}-W{number:02d}"


@functools.lru_cache(maxsize=1 << 14)
def parse_utc(text: str) -> datetime:
    """Timestamps travel as ISO strings; read them back as aware UTC datetimes (cached:
    one record's timestamp is read by several stages, and datetimes are immutable)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"timestamp without offset: {text!r}")
    return moment.astimezone(UTC)
