"""Query parameters shared by the read endpoints, validated before any SQL runs."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import get_args

from core.errors import InvalidInput
from schemas import KINDS, Report, VerificationStatus, areas, parties
from schemas.timestamps import in_range, parse_rfc3339, range_text
from schemas.weeks import is_week, week_in_range

STATUSES = frozenset(
    status
    for model in get_args(get_args(Report)[0])  # every kind's model, from the union
    if "status" in model.model_fields
    for status in get_args(model.model_fields["status"].annotation)
)
VERIFICATIONS = frozenset(get_args(VerificationStatus))


def check_week(week: str, where: str = "query") -> str:
    """``week`` if it is a valid ISO 8601 week; ``where`` is the parameter's place (query
    or path) named in the 422's ``loc``."""
    if not is_week(week):
        raise InvalidInput(
            f"week {week!r} is not an ISO 8601 week like 2016-W09",
            errors=[{"loc": [where, "week"], "msg": "expected YYYY-Www"}],
        )
    now = datetime.now(UTC)
    if not week_in_range(week, now):
        raise InvalidInput(
            f"week {week} holds no reports: dates are {range_text(now)}",
            errors=[{"loc": [where, "week"], "msg": f"expected a week {range_text(now)}"}],
        )
    return week


def check_area(area: str | None) -> str:
    if area and area not in areas():
        raise InvalidInput(
            f"unknown area code {area!r}",
            errors=[{"loc": ["query", "area"], "msg": "see GET /v1/reference/areas"}],
        )
    return area or ""


def check_party(party: str | None) -> str:
    if party and party not in parties():
        raise InvalidInput(
            f"unknown party code {party!r}",
            errors=[{"loc": ["query", "party"], "msg": "see GET /v1/reference/parties"}],
        )
    return party or ""


def check_since(since: str | None, name: str = "since") -> datetime:
    """An RFC 3339 timestamp with offset (default: the beginning of time), as UTC."""
    if not since:
        return datetime(1970, 1, 1, tzinfo=UTC)
    return check_time(name, since)


def check_time(name: str, text: str) -> datetime:
    """The query parameter ``name``: an RFC 3339 timestamp with offset within CONTRACT 6's
    bounds, as UTC (otherwise a 422)."""
    try:
        moment = parse_rfc3339(text)
    except ValueError:  # pydantic's custom errors are ValueErrors
        raise InvalidInput(
            f"{name} {text[:80]!r} is not an RFC 3339 timestamp with an offset",
            errors=[{"loc": ["query", name], "msg": "expected e.g. 2016-02-27T00:00:00Z"}],
        ) from None
    now = datetime.now(UTC)
    if not in_range(moment, now):
        raise InvalidInput(
            f"{name} {text[:80]!r} is out of range: times are {range_text(now)}",
            errors=[{"loc": ["query", name], "msg": f"expected a time {range_text(now)}"}],
        )
    return moment


def check_choice(name: str, value: str | None, allowed: Iterable[str]) -> str:
    """``value`` if it is one of ``allowed`` (or empty: no filter), else a 422."""
    choices = sorted(allowed)
    if value and value not in choices:
        raise InvalidInput(
            f"{name} {value!r} is not one of {', '.join(choices)}",
            errors=[{"loc": ["query", name], "msg": f"expected one of {choices}"}],
        )
    return value or ""


def report_filters(
    week: str | None,
    area: str | None,
    party: str | None,
    kind: str | None,
    status: str | None,
    verification: str | None,
    exempt: bool | None,
    *,
    org: str = "",
    updated_after: str | None = None,
    retracted: bool = False,
) -> dict[str, object]:
    """The drill-down's filters, checked, as the bound parameters of its SQL."""
    return {
        "org": org,
        "updated_after": check_since(updated_after, "updated_after"),
        "retracted": int(retracted),
        "week": check_week(week) if week else "",
        "area": check_area(area),
        "party": check_party(party),
        "kind": check_choice("kind", kind, KINDS),
        "status": check_choice("status", status, STATUSES),
        "verification": check_choice("verification", verification, VERIFICATIONS),
        "exempt": -1 if exempt is None else int(exempt),
    }
