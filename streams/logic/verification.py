"""The current verification status of a violation (CONTRACT section 2): that of the
non-retracted verification report about it with the latest occurred_at, ties broken by
the greatest report_id; ``unverified`` when there is none."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from schemas.weeks import parse_utc

UNVERIFIED = "unverified"


@dataclass(frozen=True)
class VerificationFact:
    report_id: str
    occurred_at: str
    status: str
    retracted: bool


def current_status(facts: Iterable[VerificationFact]) -> str:
    live = [f for f in facts if not f.retracted]
    if not live:
        return UNVERIFIED
    return max(live, key=lambda f: (parse_utc(f.occurred_at), f.report_id)).status
