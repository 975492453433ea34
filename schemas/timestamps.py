"""RFC 3339 timestamps: an explicit offset is required, values are normalised to UTC.

A naive time or a bare date is ambiguous on the ground (whose midnight?), and numbers are
not RFC 3339, so all of them are refused instead of guessed at."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, ValidationInfo
from pydantic_core import PydanticCustomError

FUTURE_TOLERANCE = timedelta(hours=1)
"""How far ahead of the server clock an ``occurred_at`` may be (clock skew)."""

EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
"""The earliest ``occurred_at`` (CONTRACT 6): older dates are typos, and far-off years
are weeks no report, query or ClickHouse ``DateTime64`` can hold."""


def latest(now: datetime) -> datetime:
    """The latest ``occurred_at`` accepted at server time ``now`` (CONTRACT 6)."""
    return now + FUTURE_TOLERANCE


def in_range(moment: datetime, now: datetime) -> bool:
    """True when ``moment`` lies within CONTRACT 6's bounds, the one home of them: every
    write (``occurred_at``) and every read (weeks, ``since``) is checked here."""
    return EARLIEST <= moment <= latest(now)


def range_text(now: datetime) -> str:
    """The bounds as a user reads them in an error."""
    return f"between {format_utc(EARLIEST)} and {format_utc(latest(now))}"


_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})$"
)


def _invalid(value: object) -> PydanticCustomError:
    return PydanticCustomError(
        "rfc3339",
        "expected an RFC 3339 timestamp with an offset, e.g. 2016-02-27T14:30:00+02:00 "
        "or 2016-02-27T12:30:00Z; got {value}",
        {"value": repr(value)[:80]},
    )


def parse_rfc3339(value: Any) -> datetime:
    """An aware ``datetime`` or an RFC 3339 string with offset, converted to UTC."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and _RFC3339.match(value):
        try:
            moment = datetime.fromisoformat(value.upper())
        except ValueError:
            raise _invalid(value) from None
    else:
        raise _invalid(value)
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise _invalid(value)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise PydanticCustomError(
            "rfc3339_range", "timestamp {value} is out of range", {"value": str(value)[:80]}
        ) from None


def format_utc(moment: datetime) -> str:
    """The one textual form of our timestamps: ISO 8601 in UTC with a 'Z' suffix."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def context_now(info: ValidationInfo) -> datetime:
    """Validation's notion of "now": the ``now`` context key if given, else the clock."""
    context = info.context if isinstance(info.context, dict) else {}
    now = context.get("now")
    if not isinstance(now, datetime):
        return datetime.now(UTC)
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def skips_future_check(info: ValidationInfo) -> bool:
    """True when decoding stored data, where "now" has long moved on."""
    context = info.context if isinstance(info.context, dict) else {}
    return bool(context.get("skip_future_check", False))


def check_not_future(moment: datetime, info: ValidationInfo) -> datetime:
    """Refuse a time before :data:`EARLIEST` or more than :data:`FUTURE_TOLERANCE` ahead
    of the validation's now (CONTRACT 6)."""
    if skips_future_check(info):
        return moment
    now = context_now(info)
    if moment < EARLIEST:
        raise PydanticCustomError(
            "past_timestamp",
            "{moment} is before {earliest}; occurred_at must be {bounds}",
            {
                "moment": format_utc(moment),
                "earliest": format_utc(EARLIEST),
                "bounds": range_text(now),
            },
        )
    if moment > latest(now):
        raise PydanticCustomError(
            "future_timestamp",
            "{moment} is more than 1 hour after the server time {now}; "
            "occurred_at must not be in the future",
            {"moment": format_utc(moment), "now": format_utc(now)},
        )
    return moment


UtcDatetime = Annotated[
    datetime,
    BeforeValidator(parse_rfc3339),
    PlainSerializer(format_utc, return_type=str, when_used="json"),
]
"""A timestamp given with an offset, held and written in UTC."""
