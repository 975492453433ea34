"""An independent, deliberately plain fold of CONTRACT sections 2, 3 and 9 over a whole log.

It shares no code with streams/: it reads the contract's words and applies them to the
complete list of envelopes in log order, the way a careful analyst with a spreadsheet
would. The stream processor must agree with it whatever the arrival order.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _week(text: str) -> str:
    year, week, _ = _utc(text).isocalendar()
    return f"{year}-W{week:02d}"


def owners(log: list[dict[str, Any]]) -> dict[str, str]:
    """report_id → the organisation whose revision of it came first in the log."""
    first: dict[str, str] = {}
    for envelope in log:
        first.setdefault(envelope["report"]["report_id"], envelope["org"])
    return first


def current_reports(log: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """report_id → current revision's report, after ownership and conflict rules."""
    owner: dict[str, str] = {}
    content: dict[tuple[str, int], str] = {}
    best: dict[str, dict[str, Any]] = {}
    for envelope in log:
        report = envelope["report"]
        rid, rev = report["report_id"], report.get("revision", 1)
        if rid in owner and owner[rid] != envelope["org"]:
            continue  # another organisation's revision: refused
        if (rid, rev) in content:
            continue  # duplicate (same hash) or conflict (other hash): no effect either way
        owner.setdefault(rid, envelope["org"])
        content[(rid, rev)] = envelope["content_hash"]
        if rid not in best or rev > best[rid].get("revision", 1):
            best[rid] = report
    return best


def classify(log: list[dict[str, Any]], designated_parties: set[str]) -> dict[str, dict[str, Any]]:
    """report_id -> its current, non-retracted report with ``exempt`` (bool) and
    ``verification`` decided, for every report (of any kind) the log holds."""
    current = current_reports(log)
    live = {rid: r for rid, r in current.items() if not r.get("retracted", False)}

    verdicts: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for report in live.values():
        if report["kind"] == "verification":
            verdicts[report["subject"]].append(report)

    def verification(rid: str) -> str:
        candidates = verdicts.get(rid)
        if not candidates:
            return "unverified"
        latest = max(candidates, key=lambda r: (_utc(r["occurred_at"]), r["report_id"]))
        return str(latest["status"])

    designations = [r for r in live.values() if r["kind"] == "designation"]

    def exempt(violation: dict[str, Any]) -> bool:
        if violation["perpetrator"] in designated_parties:
            return True
        if violation["target"] in designated_parties:
            return True
        when = _utc(violation["occurred_at"])
        for d in designations:
            if d["area"] != violation["area"]:
                continue
            starts = _utc(d["occurred_at"])
            ends = _utc(d["effective_to"]) if d.get("effective_to") else None
            if starts <= when and (ends is None or when < ends):
                return True
        return False

    # CONTRACT section 9: a violation belongs to the current, non-retracted incident that
    # lists it with the latest occurred_at (ties: greatest report_id)
    incidents = [r for r in live.values() if r["kind"] == "incident"]

    def belongs_to(rid: str) -> str:
        claiming = [i for i in incidents if rid in i["members"]]
        if not claiming:
            return ""
        latest = max(claiming, key=lambda i: (_utc(i["occurred_at"]), i["report_id"]))
        return str(latest["report_id"])

    org = owners(log)
    incident_of = {rid: belongs_to(rid) for rid, r in live.items() if r["kind"] == "violation"}

    def sources(incident: str) -> int:
        """Organisations of the incident's current members."""
        return len({org[rid] for rid, mine in incident_of.items() if mine == incident})

    def judged(rid: str, r: dict[str, Any]) -> dict[str, Any]:
        kind = r["kind"]
        return {
            **r,
            "exempt": kind in ("violation", "incident") and exempt(r),
            "verification": verification(rid) if kind == "violation" else "",
            # an event: each incident, and each violation in no incident
            "event": kind == "incident" or (kind == "violation" and not incident_of[rid]),
            # a lone violation is backed by its own organisation only
            "sources": sources(rid) if kind == "incident" else 1,
        }

    return {rid: judged(rid, r) for rid, r in live.items()}


def weekly_metrics(
    log: list[dict[str, Any]], designated_parties: set[str]
) -> tuple[dict[tuple[str, str, str], dict[str, int]], dict[tuple[str, str], dict[str, int]]]:
    """(week, area, party) → compliance counts and (week, area) → access counts."""
    live = classify(log, designated_parties)

    compliance: dict[tuple[str, str, str], dict[str, int]] = {}
    access: dict[tuple[str, str], dict[str, int]] = {}
    for report in live.values():
        week = _week(report["occurred_at"])
        if report["kind"] in ("violation", "incident"):
            key = (week, report["area"], report["perpetrator"])
            row = compliance.setdefault(
                key,
                {
                    "violations": 0,
                    "violations_verified": 0,
                    "violations_exempt": 0,
                    "killed": 0,
                    "injured": 0,
                    "incidents": 0,
                    "incidents_exempt": 0,
                    "incidents_corroborated": 0,
                    "incident_killed": 0,
                    "incident_injured": 0,
                },
            )
            if report["event"] and report["exempt"]:
                row["incidents_exempt"] += 1
            elif report["event"]:
                row["incidents"] += 1
                row["incident_killed"] += report.get("killed", 0)
                row["incident_injured"] += report.get("injured", 0)
                if report["sources"] >= 2:
                    row["incidents_corroborated"] += 1
            if report["kind"] == "incident":
                continue
            if report["exempt"]:
                row["violations_exempt"] += 1
            else:
                row["violations"] += 1
                row["killed"] += report.get("killed", 0)
                row["injured"] += report.get("injured", 0)
                if report["verification"] == "verified":
                    row["violations_verified"] += 1
        elif report["kind"] in ("delivery", "access_request"):
            row = access.setdefault(
                (week, report["area"]),
                {
                    "deliveries_completed": 0,
                    "deliveries_partial": 0,
                    "deliveries_blocked": 0,
                    "deliveries_cancelled": 0,
                    "beneficiaries": 0,
                    "requests_submitted": 0,
                    "requests_approved": 0,
                    "requests_denied": 0,
                    "requests_withdrawn": 0,
                },
            )
            if report["kind"] == "delivery":
                row[f"deliveries_{report['status']}"] += 1
                if report["status"] in ("completed", "partial"):
                    row["beneficiaries"] += report["beneficiaries"]
            else:
                row[f"requests_{report['status']}"] += 1
    return compliance, access


def lone_events(row: dict[str, int]) -> dict[str, int]:
    """A compliance row whose violations are in no incident, completed with the event
    figures of CONTRACT section 9: each violation is an event of its one organisation."""
    events = {event: row[figure] for figure, event in LONE_EVENT_FIGURES.items()}
    return {**row, **events, "incidents_corroborated": 0}


LONE_EVENT_FIGURES = {"violations": "incidents", "violations_exempt": "incidents_exempt",
                      "killed": "incident_killed", "injured": "incident_injured"}  # fmt: skip
"""The event figure each report-level figure equals while no incident links anything."""


def with_lone_events(restated: dict[tuple[str, str, Any], Any]) -> dict[tuple[str, str, Any], Any]:
    """Restatements keyed (figure, area, party), completed with the event figures that
    change with them while every violation is in no incident (each is its own event)."""
    twins = {
        (LONE_EVENT_FIGURES[figure], area, party): change
        for (figure, area, party), change in restated.items()
        if figure in LONE_EVENT_FIGURES
    }
    return restated | twins
