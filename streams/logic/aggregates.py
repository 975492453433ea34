"""Weekly metrics of one (ISO week, area) from the current state of its reports
(CONTRACT section 3). Aggregates are always recomputed from per-report state, never
incremented, so a redelivered or replayed event cannot count twice."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from sys import intern
from typing import Any

COMPLIANCE_FIELDS = (
    "violations",
    "violations_verified",
    "violations_exempt",
    "killed",
    "injured",
)
ACCESS_FIELDS = (
    "deliveries_completed",
    "deliveries_partial",
    "deliveries_blocked",
    "deliveries_cancelled",
    "beneficiaries",
    "requests_submitted",
    "requests_approved",
    "requests_denied",
    "requests_withdrawn",
)


@dataclass(frozen=True, slots=True)
class Member:
    """One current report placed in a (week, area), with its classification: only the
    fields the weekly rows and the spike rules read (the worker holds one per live report,
    so no report payload is kept; the full state is in the ``placed`` table)."""

    report_id: str
    kind: str
    exempt: bool
    verification: str
    party: str  # the perpetrator of a violation, else ""
    status: str  # of a delivery or access request, else ""
    killed: int
    injured: int
    beneficiaries: int
    retracted: bool
    day: int  # proleptic ordinal of the UTC day of occurred_at


def member_of(
    report_id: str, kind: str, report: Mapping[str, Any], exempt: bool, verification: str, day: int
) -> Member:
    """The slim member of a report; its small categorical strings are interned so that a
    million members share them."""
    return Member(
        report_id,
        intern(kind),
        exempt,
        intern(verification),
        intern(str(report.get("perpetrator") or "")) if kind == "violation" else "",
        intern(str(report.get("status") or "")),
        int(report.get("killed") or 0),
        int(report.get("injured") or 0),
        int(report.get("beneficiaries") or 0),
        bool(report.get("retracted", False)),
        day,
    )


def compliance(members: Iterable[Member]) -> dict[str, dict[str, int]]:
    """Perpetrator → the five counts, over current (non-retracted) violations."""
    rows: dict[str, dict[str, int]] = {}
    for m in members:
        if m.kind != "violation" or m.retracted:
            continue
        row = rows.setdefault(m.party, dict.fromkeys(COMPLIANCE_FIELDS, 0))
        if m.exempt:
            row["violations_exempt"] += 1
            continue
        row["violations"] += 1
        row["killed"] += m.killed
        row["injured"] += m.injured
        if m.verification == "verified":
            row["violations_verified"] += 1
    return rows


def access(members: Iterable[Member]) -> dict[str, int] | None:
    """The access row, or None when the week has no current delivery or request there."""
    row = dict.fromkeys(ACCESS_FIELDS, 0)
    seen = False
    for m in members:
        if m.retracted:
            continue
        if m.kind == "delivery":
            seen = True
            row[f"deliveries_{m.status}"] += 1
            if m.status in ("completed", "partial"):
                row["beneficiaries"] += m.beneficiaries
        elif m.kind == "access_request":
            seen = True
            row[f"requests_{m.status}"] += 1
    return row if seen else None
