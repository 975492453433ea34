"""Exemption from the cessation of hostilities (CONTRACT section 2): a violation is exempt
when its perpetrator or target is a designated party, or when a current designation covers
its area at its occurred_at (effective_from <= occurred_at < effective_to)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from schemas.weeks import parse_utc


@dataclass(frozen=True)
class DesignationFact:
    report_id: str
    party: str
    area: str
    effective_from: str
    effective_to: str | None
    retracted: bool

    def covers(self, area: str, moment: datetime) -> bool:
        if self.retracted or self.area != area:
            return False
        if moment < parse_utc(self.effective_from):
            return False
        return self.effective_to is None or moment < parse_utc(self.effective_to)


def exemption(
    violation: Mapping[str, object],
    designated: Mapping[str, bool],
    designations: Iterable[DesignationFact],
) -> str:
    """'' when not exempt, else why: designated_perpetrator, designated_target or
    designation:<report_id> (the earliest-sorting covering designation, for stability)."""
    if designated.get(str(violation.get("perpetrator")), False):
        return "designated_perpetrator"
    if designated.get(str(violation.get("target")), False):
        return "designated_target"
    area = str(violation.get("area"))
    moment = parse_utc(str(violation["occurred_at"]))
    covering = sorted(d.report_id for d in designations if d.covers(area, moment))
    return f"designation:{covering[0]}" if covering else ""
