"""ISO 8601 weeks in UTC, the unit every weekly figure is keyed by: written once here,
in Python and as the ClickHouse expression, and used by the stream, the store, the
weekly report and the demo alike.

Faust windows are not used: they are epoch-aligned and expire on wall-clock time."""

from __future__ import annotations

import functools
import re
from datetime import UTC, date, datetime, time, timedelta

from schemas.timestamps import EARLIEST, latest

WEEK_PATTERN = re.compile(r"(\d{4})-W(\d{2})", re.ASCII)
"""``YYYY-Www``; a valid week also has to exist in that year (W53 does only in some)."""


def iso_week(moment: datetime) -> str:
    """``YYYY-Www`` of an aware datetime, taken in UTC."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: occurred_at must carry an offset")
    year, week, _ = moment.astimezone(UTC).isocalendar()
    return f"{year:04d}-W{week:02d}"


def week_of_day(day: date) -> str:
    """The ISO week of a calendar day (a UTC day)."""
    year, week, _ = day.isocalendar()
    return f"{year:04d}-W{week:02d}"


def week_of(text: str) -> str:
    """The ISO week, in UTC, of an RFC 3339 timestamp string."""
    return iso_week(parse_utc(text))


def is_week(text: str) -> bool:
    """True for a well-formed ``YYYY-Www`` that exists in the calendar."""
    match = WEEK_PATTERN.fullmatch(text)  # not .match: "$" would let a trailing newline in
    if match is None:
        return False
    try:
        date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1)
    except ValueError:
        return False
    return True


def week_in_range(week: str, now: datetime) -> bool:
    """True when a valid week overlaps the dates a report may carry (CONTRACT 6): any
    other week can hold no report, and years far off overflow ClickHouse's dates."""
    start = datetime.combine(week_monday(week), time(), tzinfo=UTC)
    return start > EARLIEST - timedelta(days=7) and start <= latest(now)  # no end: 9999-W52


def week_monday(week: str) -> date:
    """The Monday that starts an ISO week string."""
    year, _, number = week.partition("-W")
    return date.fromisocalendar(int(year), int(number), 1)


def week_bounds(week: str) -> tuple[datetime, datetime]:
    """[Monday 00:00, next Monday 00:00) in UTC."""
    start = datetime.combine(week_monday(week), time(), tzinfo=UTC)
    return start, start + timedelta(days=7)


def previous_week(week: str) -> str:
    return week_of_day(week_monday(week) - timedelta(days=7))


@functools.lru_cache(maxsize=1 << 14)
def parse_utc(text: str) -> datetime:
    """Timestamps travel as ISO strings; read them back as aware UTC datetimes (cached:
    one record's timestamp is read by several stages, and datetimes are immutable)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"timestamp without offset: {text!r}")
    return moment.astimezone(UTC)


def iso_week_sql(column: str) -> str:
    """The same ``YYYY-Www`` as :func:`iso_week`, as a ClickHouse expression over a
    DateTime64 column in UTC (``column`` is a column name of ours, never user input)."""
    return (
        f"concat(leftPad(toString(toISOYear({column})), 4, '0'), '-W', "
        f"leftPad(toString(toISOWeek({column})), 2, '0'))"
    )
