"""Weekly metrics of one (ISO week, area) from the current state of its reports
(CONTRACT section 3). Aggregates are always recomputed from per-report state, never
incremented, so a redelivered or replayed event cannot count twice."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Member:
    """One current report placed in a (week, area), with its classification."""

    report_id: str
    kind: str
    report: Mapping[str, Any]
    exempt: bool
    verification: str


def compliance(members: Iterable[Member]) -> dict[str, dict[str, int]]:
    """Perpetrator → the five counts, over current (non-retracted) violations."""
    rows: dict[str, dict[str, int]] = {}
    for m in members:
        if m.kind != "violation" or m.report.get("retracted"):
            continue
        row = rows.setdefault(str(m.report["perpetrator"]), dict.fromkeys(COMPLIANCE_FIELDS, 0))
        if m.exempt:
            row["violations_exempt"] += 1
            continue
        row["violations"] += 1
        row["killed"] += int(m.report.get("killed", 0))
        row["injured"] += int(m.report.get("injured", 0))
        if m.verification == "verified":
            row["violations_verified"] += 1
    return rows


def access(members: Iterable[Member]) -> dict[str, int] | None:
    """The access row, or None when the week has no current delivery or request there."""
    row = dict.fromkeys(ACCESS_FIELDS, 0)
    seen = False
    for m in members:
        if m.report.get("retracted"):
            continue
        status = str(m.report.get("status"))
        if m.kind == "delivery":
            seen = True
            row[f"deliveries_{status}"] += 1
            if status in ("completed", "partial"):
                row["beneficiaries"] += int(m.report.get("beneficiaries", 0))
        elif m.kind == "access_request":
            seen = True
            row[f"requests_{status}"] += 1
    return row if seen else None
