"""Query parameters shared by the read endpoints, validated before any SQL runs."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from core.http import Problem
from schemas import areas, parties

_WEEK = re.compile(r"(\d{4})-W(\d{2})", re.ASCII)


def check_week(week: str, where: str = "query") -> str:
    """``week`` if it is a valid ISO 8601 week; ``where`` is the parameter's place (query
    or path) named in the 422's ``loc``."""
    match = _WEEK.fullmatch(week)  # not .match: "$" would let a trailing newline in
    valid = False
    if match:
        try:
            date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1)
            valid = True
        except ValueError:
            valid = False
    if not valid:
        raise Problem(
            422,
            f"week {week!r} is not an ISO 8601 week like 2016-W09",
            errors=[{"loc": [where, "week"], "msg": "expected YYYY-Www"}],
        )
    return week


def check_area(area: str | None) -> str:
    if area and area not in areas():
        raise Problem(
            422,
            f"unknown area code {area!r}",
            errors=[{"loc": ["query", "area"], "msg": "see GET /v1/reference/areas"}],
        )
    return area or ""


def check_party(party: str | None) -> str:
    if party and party not in parties():
        raise Problem(
            422,
            f"unknown party code {party!r}",
            errors=[{"loc": ["query", "party"], "msg": "see GET /v1/reference/parties"}],
        )
    return party or ""


def check_since(since: str | None) -> datetime:
    """An RFC 3339 timestamp with offset (default: the beginning of time), as UTC."""
    if not since:
        return datetime(1970, 1, 1, tzinfo=UTC)
    try:
        moment = datetime.fromisoformat(since.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise Problem(
            422,
            f"since {since!r} is not an RFC 3339 timestamp with an offset",
            errors=[{"loc": ["query", "since"], "msg": "expected e.g. 2016-02-27T00:00:00Z"}],
        )
    return moment.astimezone(UTC)
