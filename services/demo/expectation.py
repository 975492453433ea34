"""What the metrics must say about the scenario, counted straight from the scenario's own
latest revisions by CONTRACT sections 3 and 9 — no stream, no ClickHouse — so `truce demo`
and its test can check the published numbers against an independent count."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas import FIELD_KINDS
from schemas.figures import ACCESS, COMPLIANCE, COUNTED_KINDS, FigureSet, Judged
from schemas.reference import areas, parties
from schemas.weeks import parse_utc, week_of
from services.published import MetricsSet, Row


@dataclass(frozen=True)
class Current(Judged):
    """One current report of the scenario, classified by this module's own fold: what the
    figure definitions read of it, and where it counts."""

    week: str
    area: str
    party: str


def _membership(
    current: list[Mapping[str, Any]], orgs: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, int]]:
    """(violation id → the incident it belongs to, incident id → its organisations): the
    latest current incident listing a violation by occurred_at, ties by greatest id."""
    belongs: dict[str, tuple[datetime, str]] = {}
    for r in current:
        if r["kind"] != "incident":
            continue
        for member in r["members"]:
            candidate = (parse_utc(r["occurred_at"]), r["report_id"])
            if member not in belongs or candidate > belongs[member]:
                belongs[member] = candidate
    violations = {r["report_id"] for r in current if r["kind"] == "violation"}
    incident_of = {m: rid for m, (_, rid) in belongs.items() if m in violations}
    backing: defaultdict[str, set[str]] = defaultdict(set)
    for member, incident in incident_of.items():
        backing[incident].add(orgs.get(member, ""))
    return incident_of, {incident: len(found) for incident, found in backing.items()}


def _verification_status(latest: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Latest non-retracted verdict per subject by occurred_at, ties by greatest id."""
    best: dict[str, tuple[datetime, str, str]] = {}
    for report in latest.values():
        if report["kind"] != "verification" or report.get("retracted", False):
            continue
        candidate = (parse_utc(report["occurred_at"]), report["report_id"], report["status"])
        held = best.get(report["subject"])
        if held is None or candidate[:2] > held[:2]:
            best[report["subject"]] = candidate
    return {subject: status for subject, (_, _, status) in best.items()}


def _exempt(report: Mapping[str, Any], designations: list[Mapping[str, Any]]) -> bool:
    designated = {code for code, party in parties().items() if party.designated}
    if report["perpetrator"] in designated or report["target"] in designated:
        return True
    at = parse_utc(report["occurred_at"])
    for d in designations:
        if d["area"] != report["area"]:
            continue
        until = d.get("effective_to")
        if parse_utc(d["occurred_at"]) <= at and (until is None or at < parse_utc(until)):
            return True
    return False


def _classified(latest: Mapping[str, Mapping[str, Any]], orgs: Mapping[str, str]) -> list[Current]:
    """Every current report the weekly figures count, with its exemption, verdict and
    incident membership (``orgs``: report id → its organisation)."""
    current = [r for r in latest.values() if not r.get("retracted", False)]
    designations = [r for r in current if r["kind"] == "designation"]
    verdicts = _verification_status(latest)
    incident_of, backing = _membership(current, orgs)
    classified = []
    for r in current:
        if r["kind"] not in COUNTED_KINDS:
            continue
        classified.append(
            Current(
                week=week_of(r["occurred_at"]),
                area=r["area"],
                party=r.get("perpetrator", ""),
                kind=r["kind"],
                status=r.get("status", ""),
                exempt=r["kind"] in ("violation", "incident") and _exempt(r, designations),
                verification=verdicts.get(r["report_id"], "unverified"),
                killed=r.get("killed", 0),
                injured=r.get("injured", 0),
                beneficiaries=r.get("beneficiaries", 0),
                event=r["kind"] == "incident"
                or (r["kind"] == "violation" and r["report_id"] not in incident_of),
                sources=backing.get(r["report_id"], 0) if r["kind"] == "incident" else 1,
            )
        )
    return classified


def _rows(figures: FigureSet, reports: Iterable[Current]) -> dict[str, dict[tuple[str, ...], Row]]:
    """week → key → every figure of the set, for the keys the API lists."""
    groups: defaultdict[tuple[str, tuple[str, ...]], list[Current]] = defaultdict(list)
    for report in reports:
        if report.kind in figures.kinds:
            groups[report.week, tuple(getattr(report, k) for k in figures.keys)].append(report)
    rows: defaultdict[str, dict[tuple[str, ...], Row]] = defaultdict(dict)
    for (week, key), group in groups.items():
        row = figures.row(group)
        if figures.present(row):
            rows[week][key] = row
    return dict(rows)


def expected_metrics(
    latest: Mapping[str, Mapping[str, Any]], orgs: Mapping[str, str]
) -> MetricsSet:
    """Count every week of the scenario from its latest revisions and the organisation of
    each report (an incident's sources)."""
    classified = _classified(latest, orgs)
    compliance = _rows(COMPLIANCE, classified)
    access = _rows(ACCESS, classified)
    return MetricsSet(
        compliance={
            w: {(k[0], k[1]): row for k, row in rows.items()} for w, rows in compliance.items()
        },
        access={w: {k[0]: row for k, row in rows.items()} for w, rows in access.items()},
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


REQUESTS = tuple(f.name for f in ACCESS.counting("access_request"))
"""The access-request figures that together count every request once."""


def headline(expected: MetricsSet, week: str) -> Headline:
    rows = expected.compliance.get(week, {}).values()
    access = expected.access.get(week, {}).values()
    to_date = [
        row for w, by_area in expected.access.items() if w <= week for row in by_area.values()
    ]
    return Headline(
        week=week,
        violations=sum(r["violations"] for r in rows),
        violations_verified=sum(r["violations_verified"] for r in rows),
        violations_exempt=sum(r["violations_exempt"] for r in rows),
        killed=sum(r["killed"] for r in rows),
        deliveries_completed=sum(a["deliveries_completed"] for a in access),
        beneficiaries=sum(a["beneficiaries"] for a in access),
        requests_approved_to_date=sum(a["requests_approved"] for a in to_date),
        requests_to_date=sum(a[name] for a in to_date for name in REQUESTS),
    )


def expected_coverage(
    latest: Mapping[str, Mapping[str, Any]], owners: Mapping[str, str], week: str
) -> dict[str, dict[str, int]]:
    """CONTRACT 9 coverage of ``week`` counted from the scenario: per area of the
    reference data, its current (not retracted) field reports that occurred that week,
    the organisations that own them (``owners``: report id -> organisation) and whether
    there was any (``monitored``, 1 or 0)."""
    orgs: defaultdict[str, set[str]] = defaultdict(set)
    reports: defaultdict[str, int] = defaultdict(int)
    for report in latest.values():
        if report["kind"] not in FIELD_KINDS or report.get("retracted", False):
            continue
        if week_of(report["occurred_at"]) == week:
            reports[report["area"]] += 1
            orgs[report["area"]].add(owners[report["report_id"]])
    return {
        code: {
            "reports": reports[code],
            "reporting_orgs": len(orgs[code]),
            "monitored": int(reports[code] > 0),
        }
        for code in sorted(areas())
    }
