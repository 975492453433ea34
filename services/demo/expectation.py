"""What the metrics must say about the scenario, counted straight from the scenario's own
latest revisions by CONTRACT section 3 — no stream, no ClickHouse — so `truce demo` and
its test can check the published numbers against an independent count."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from schemas.reference import parties
from services.published import AccessRow, ComplianceRow, MetricsSet


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _week(text: str) -> str:
    year, week, _ = _at(text).isocalendar()
    return f"{year:04d}-W{week:02d}"


def _verification_status(latest: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Latest non-retracted verdict per subject by occurred_at, ties by greatest id."""
    best: dict[str, tuple[datetime, str, str]] = {}
    for report in latest.values():
        if report["kind"] != "verification" or report.get("retracted", False):
            continue
        candidate = (_at(report["occurred_at"]), report["report_id"], report["status"])
        held = best.get(report["subject"])
        if held is None or candidate[:2] > held[:2]:
            best[report["subject"]] = candidate
    return {subject: status for subject, (_, _, status) in best.items()}


def _exempt(report: Mapping[str, Any], designations: list[Mapping[str, Any]]) -> bool:
    designated = {code for code, party in parties().items() if party.designated}
    if report["perpetrator"] in designated or report["target"] in designated:
        return True
    at = _at(report["occurred_at"])
    for d in designations:
        if d["area"] != report["area"]:
            continue
        until = d.get("effective_to")
        if _at(d["occurred_at"]) <= at and (until is None or at < _at(until)):
            return True
    return False


def expected_metrics(latest: Mapping[str, Mapping[str, Any]]) -> MetricsSet:
    """Count every week of the scenario from its latest revisions."""
    current = [r for r in latest.values() if not r.get("retracted", False)]
    designations = [r for r in current if r["kind"] == "designation"]
    verdicts = _verification_status(latest)
    compliance: defaultdict[str, defaultdict[tuple[str, str], ComplianceRow]] = defaultdict(
        lambda: defaultdict(ComplianceRow)
    )
    access: defaultdict[str, defaultdict[str, AccessRow]] = defaultdict(
        lambda: defaultdict(AccessRow)
    )
    for r in current:
        week = _week(r["occurred_at"])
        if r["kind"] == "violation":
            row = compliance[week][(r["area"], r["perpetrator"])]
            if _exempt(r, designations):
                row.violations_exempt += 1
                continue
            row.violations += 1
            row.killed += r.get("killed", 0)
            row.injured += r.get("injured", 0)
            if verdicts.get(r["report_id"]) == "verified":
                row.violations_verified += 1
        elif r["kind"] == "delivery":
            a = access[week][r["area"]]
            status = r["status"]
            setattr(a, f"deliveries_{status}", getattr(a, f"deliveries_{status}") + 1)
            if status in {"completed", "partial"}:
                a.beneficiaries += r["beneficiaries"]
        elif r["kind"] == "access_request":
            a = access[week][r["area"]]
            status = r["status"]
            setattr(a, f"requests_{status}", getattr(a, f"requests_{status}") + 1)
    return MetricsSet(
        compliance={w: dict(rows) for w, rows in compliance.items()},
        access={w: dict(rows) for w, rows in access.items()},
    )


@dataclass(frozen=True)
class Headline:
    """The figures `truce demo` prints and checks for its report week."""

    week: str
    violations: int
    violations_verified: int
    violations_exempt: int
    killed: int
    deliveries_completed: int
    beneficiaries: int
    requests_approved_to_date: int
    requests_to_date: int


def headline(expected: MetricsSet, week: str) -> Headline:
    rows = expected.compliance.get(week, {}).values()
    access = expected.access.get(week, {}).values()
    to_date = [
        row for w, by_area in expected.access.items() if w <= week for row in by_area.values()
    ]
    return Headline(
        week=week,
        violations=sum(r.violations for r in rows),
        violations_verified=sum(r.violations_verified for r in rows),
        violations_exempt=sum(r.violations_exempt for r in rows),
        killed=sum(r.killed for r in rows),
        deliveries_completed=sum(a.deliveries_completed for a in access),
        beneficiaries=sum(a.beneficiaries for a in access),
        requests_approved_to_date=sum(a.requests_approved for a in to_date),
        requests_to_date=sum(
            a.requests_submitted + a.requests_approved + a.requests_denied + a.requests_withdrawn
            for a in to_date
        ),
    )
