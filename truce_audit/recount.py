"""A fold of CONTRACT sections 2, 3, 6 and 9 over the log's entries, written for auditors.

It shares no code with the stream (streams/) nor with the store's SQL recount: it reads
the entries (the reports topic's records, in tree order) and applies the contract's words.
Only the reference data (which parties are designated, which areas besieged) comes from
outside the log."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

KNOWN_SCHEMA_VERSIONS = frozenset({1})


class EntryError(ValueError):
    """An entry is not a report record this auditor understands."""


def utc(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise EntryError(f"timestamp {text!r} has no offset")
    return moment.astimezone(UTC)


def iso_week(moment: datetime) -> str:
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


def week_start(week: str) -> datetime:
    """Monday 00:00 UTC of an ISO week ``YYYY-Www``."""
    return datetime.fromisocalendar(int(week[:4]), int(week[6:]), 1).replace(tzinfo=UTC)


FIELDS = ("kind", "area", "perpetrator", "target", "status", "subject", "effective_to",
          "members")  # fmt: skip
NUMBERS = ("killed", "injured", "beneficiaries")


class Report:
    """The current revision of one report: only what the figures read (a million of them
    fit in a few hundred megabytes)."""

    __slots__ = ("_occurred", "body", "occurred_at", "org", "report_id", "retracted",
                 "revision", "week")  # fmt: skip

    def __init__(self, report_id: str, org: str, revision: int, report: dict[str, Any]) -> None:
        self.report_id = report_id
        self.org = org
        self.revision = revision
        self.retracted = bool(report.get("retracted", False))
        self.occurred_at = str(report["occurred_at"])
        self._occurred: datetime | None = None
        self.week = week_of(self.occurred_at)
        body: dict[str, Any] = {}
        for name in FIELDS:
            value = report.get(name)
            if value is not None:
                body[name] = value
        for name in NUMBERS:
            value = report.get(name)
            if value:
                body[name] = int(value)
        self.body = body

    @property
    def occurred(self) -> datetime:
        if self._occurred is None:
            self._occurred = utc(self.occurred_at)
        return self._occurred

    @property
    def kind(self) -> str:
        return str(self.body["kind"])

    def number(self, name: str) -> int:
        return int(self.body.get(name, 0))


_WEEKS: dict[str, str] = {}


def week_of(occurred_at: str) -> str:
    """ISO week (UTC) of a timestamp; a UTC one ("...Z", as stored) is looked up by its
    day, which spares parsing most of a million timestamps."""
    if occurred_at.endswith("Z") and len(occurred_at) >= 10:
        day = occurred_at[:10]
        week = _WEEKS.get(day)
        if week is None:
            week = _WEEKS[day] = iso_week(utc(occurred_at))
        return week
    return iso_week(utc(occurred_at))


@dataclass
class Fold:
    """Every report's current revision after the ownership and revision rules."""

    current: dict[str, Report] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)
    entries: int = 0

    def add(self, entry: bytes) -> None:
        """One entry in tree order. Within a report, tree order is log order (one
        partition per report, offsets increasing), which decides ownership; and the first
        record of a revision is the one that counts (a later one with the same number is
        a duplicate or a refused conflict), so only a strictly higher revision replaces."""
        self.entries += 1
        try:
            record = json.loads(entry)
            report = record["report"]
            rid, org = str(report["report_id"]), str(record["org"])
            revision = int(report.get("revision", 1))
            version = int(record.get("schema_version", 1))
        except (ValueError, KeyError, TypeError) as exc:
            raise EntryError(f"entry {self.entries - 1} is not a report record: {exc}") from None
        if version not in KNOWN_SCHEMA_VERSIONS:
            raise EntryError(f"entry {self.entries - 1} has schema version {version}")
        owner = self.owners.setdefault(rid, org)
        if owner != org:
            return  # only the first filer's organisation may revise a report
        held = self.current.get(rid)
        if held is None or revision > held.revision:
            try:
                self.current[rid] = Report(rid, org, revision, report)
            except (ValueError, KeyError, TypeError) as exc:
                raise EntryError(f"entry {self.entries - 1}: {exc}") from None

    def live(self) -> list[Report]:
        """Current revisions that are not retracted."""
        return [r for r in self.current.values() if not r.retracted]


@dataclass(frozen=True)
class Classified:
    report: Report
    exempt: bool
    reason: str
    verification: str
    event: bool = False
    """An event of CONTRACT section 9: an incident, or a violation no incident claims."""
    sources: int = 0
    """Organisations behind the event: an incident's members' (1 for a lone violation)."""


def memberships(live: list[Report]) -> tuple[dict[str, str], dict[str, int]]:
    """(violation → its incident, incident → its members' organisations): a violation
    belongs to the live incident listing it with the latest occurred_at, then greatest id."""
    claimed: dict[str, Report] = {}
    for r in live:
        if r.kind != "incident":
            continue
        for member in r.body.get("members", ()):
            best = claimed.get(member)
            if best is None or (r.occurred, r.report_id) > (best.occurred, best.report_id):
                claimed[str(member)] = r
    incident_of: dict[str, str] = {}
    orgs: dict[str, set[str]] = {}
    for r in live:
        if r.kind == "violation" and r.report_id in claimed:
            incident = claimed[r.report_id].report_id
            incident_of[r.report_id] = incident
            orgs.setdefault(incident, set()).add(r.org)
    return incident_of, {incident: len(found) for incident, found in orgs.items()}


def classify(fold: Fold, designated: frozenset[str]) -> list[Classified]:
    """Exemption (designated parties, current designations), verification status and
    incident membership of every live violation, incident, delivery and access request."""
    live = fold.live()
    incident_of, backing = memberships(live)
    verdicts: dict[str, Report] = {}
    for r in live:
        if r.kind != "verification":
            continue
        subject = str(r.body["subject"])
        best = verdicts.get(subject)
        if best is None or (r.occurred, r.report_id) > (best.occurred, best.report_id):
            verdicts[subject] = r
    designations: dict[str, list[Report]] = {}
    for r in live:
        if r.kind == "designation":
            designations.setdefault(str(r.body["area"]), []).append(r)
    out: list[Classified] = []
    for r in live:
        if r.kind == "violation":
            reason = _exemption(r, designated, designations)
            verdict = verdicts.get(r.report_id)
            status = str(verdict.body["status"]) if verdict else "unverified"
            lone = r.report_id not in incident_of
            out.append(Classified(r, bool(reason), reason, status, lone, int(lone)))
        elif r.kind == "incident":
            reason = _exemption(r, designated, designations)
            sources = backing.get(r.report_id, 0)
            out.append(Classified(r, bool(reason), reason, "", True, sources))
        elif r.kind in ("delivery", "access_request"):
            out.append(Classified(r, False, "", "unverified"))
    return out


def _exemption(v: Report, designated: frozenset[str], designations: dict[str, list[Report]]) -> str:
    if v.body["perpetrator"] in designated:
        return "designated_perpetrator"
    if v.body["target"] in designated:
        return "designated_target"
    in_area = designations.get(str(v.body["area"]))
    if not in_area:
        return ""
    when = v.occurred
    covering = sorted(
        d.report_id
        for d in in_area
        if d.occurred <= when
        and (not d.body.get("effective_to") or when < utc(str(d.body["effective_to"])))
    )
    return f"designation:{covering[0]}" if covering else ""


COMPLIANCE_FIGURES = ("violations", "violations_verified", "violations_exempt", "killed", "injured",
                      "incidents", "incidents_exempt", "incidents_corroborated",
                      "incident_killed", "incident_injured")  # fmt: skip
DELIVERY_STATUSES = ("completed", "partial", "blocked", "cancelled")
REQUEST_STATUSES = ("submitted", "approved", "denied", "withdrawn")
ACCESS_FIGURES = (
    *(f"deliveries_{s}" for s in DELIVERY_STATUSES),
    "beneficiaries",
    *(f"requests_{s}" for s in REQUEST_STATUSES),
)


@dataclass
class Recount:
    """The weekly rows of CONTRACT section 3, recounted from entries."""

    classified: list[Classified]
    compliance: dict[tuple[str, str, str], dict[str, int]]
    access: dict[tuple[str, str], dict[str, int]]


def recount(entries: Iterable[bytes], designated: Iterable[str]) -> Recount:
    """Fold the entries (tree order) and count every weekly row."""
    fold = Fold()
    for entry in entries:
        fold.add(entry)
    return count(fold, designated)


def count(fold: Fold, designated: Iterable[str]) -> Recount:
    """Every weekly row of a folded log."""
    classified = classify(fold, frozenset(designated))
    compliance: dict[tuple[str, str, str], dict[str, int]] = {}
    access: dict[tuple[str, str], dict[str, int]] = {}
    for c in classified:
        r = c.report
        if r.kind in ("violation", "incident"):
            row = compliance.setdefault(
                (r.week, r.body["area"], r.body["perpetrator"]),
                dict.fromkeys(COMPLIANCE_FIGURES, 0),
            )
            if c.event and c.exempt:
                row["incidents_exempt"] += 1
            elif c.event:
                row["incidents"] += 1
                row["incidents_corroborated"] += c.sources >= 2
                row["incident_killed"] += r.number("killed")
                row["incident_injured"] += r.number("injured")
            if r.kind == "incident":
                continue
            if c.exempt:
                row["violations_exempt"] += 1
                continue
            row["violations"] += 1
            row["killed"] += r.number("killed")
            row["injured"] += r.number("injured")
            row["violations_verified"] += c.verification == "verified"
        else:
            row = access.setdefault((r.week, r.body["area"]), dict.fromkeys(ACCESS_FIGURES, 0))
            status = str(r.body["status"])
            if r.kind == "delivery":
                row[f"deliveries_{status}"] += 1
                if status in ("completed", "partial"):
                    row["beneficiaries"] += r.number("beneficiaries")
            else:
                row[f"requests_{status}"] += 1
    return Recount(classified, compliance, access)


def weekly_rows(count: Recount, week: str) -> list[dict[str, Any]]:
    """The rows of ``GET /v1/metrics/weekly?week=`` (sorted by area, party)."""
    return [
        {"area": a, "party": p, **figures}
        for (w, a, p), figures in sorted(count.compliance.items())
        if w == week
    ]


def access_rows(count: Recount, week: str) -> list[dict[str, Any]]:
    """The rows of ``GET /v1/metrics/access?week=`` (sorted by area)."""
    return [{"area": a, **f} for (w, a), f in sorted(count.access.items()) if w == week]


def _events(count: Recount, week: str) -> dict[str, Any]:
    """The weekly report's events section (CONTRACT 9): totals over the week's rows, and
    the non-exempt events by their number of sources."""
    rows = [f for (w, _, _), f in count.compliance.items() if w == week]
    total = {
        "reports": sum(f["violations"] for f in rows),
        "events": sum(f["incidents"] for f in rows),
        "corroborated": sum(f["incidents_corroborated"] for f in rows),
        "killed": sum(f["incident_killed"] for f in rows),
        "injured": sum(f["incident_injured"] for f in rows),
    }
    sources: dict[int, int] = {}
    for c in count.classified:
        if c.event and not c.exempt and c.report.week == week:
            sources[c.sources] = sources.get(c.sources, 0) + 1
    return {
        "total": total,
        "exempt": sum(f["incidents_exempt"] for f in rows),
        "sources": [{"sources": n, "events": sources[n]} for n in sorted(sources)],
    }


def report_figures(
    count: Recount, week: str, areas: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """The figures of the weekly report of ``week`` (CONTRACT 4; its JSON format) that
    follow from the log: violations per party this and the previous week, the exempt
    list, aid to besieged areas and access requests. ``areas``: the reference data by code."""
    previous = iso_week(week_start(week) - timedelta(days=7))
    end = week_start(week) + timedelta(days=7)
    parties: dict[str, dict[str, int]] = {}
    for (w, _, party), f in count.compliance.items():
        if w not in (week, previous):
            continue
        row = parties.setdefault(
            party, {"violations": 0, "previous_week": 0, "verified": 0, "killed": 0, "injured": 0}
        )
        if w == previous:
            row["previous_week"] += f["violations"]
        else:
            row["violations"] += f["violations"]
            row["verified"] += f["violations_verified"]
            row["killed"] += f["killed"]
            row["injured"] += f["injured"]
    parties = {p: f for p, f in parties.items() if f["violations"] or f["previous_week"]}
    total = {k: sum(f[k] for f in parties.values()) for k in
             ("violations", "previous_week", "verified", "killed", "injured")}  # fmt: skip
    exempt = sorted(
        (
            c
            for c in count.classified
            if c.exempt and c.report.kind == "violation" and c.report.week == week
        ),
        key=lambda c: (c.report.occurred, c.report.report_id),
    )
    besieged: dict[str, dict[str, Any]] = {}
    for code, area in areas.items():
        if not area.get("besieged"):
            continue
        figures = count.access.get((week, code), dict.fromkeys(ACCESS_FIGURES, 0))
        completed = [
            c.report.occurred
            for c in count.classified
            if c.report.kind == "delivery"
            and c.report.body["area"] == code
            and c.report.body["status"] == "completed"
            and c.report.occurred < end
        ]
        besieged[code] = {
            **{k: figures[k] for k in ACCESS_FIGURES if k.startswith("deliveries_")},
            "beneficiaries": figures["beneficiaries"],
            "last_completed_delivery": max(completed).date().isoformat() if completed else None,
        }
    requests = {"week": dict.fromkeys(REQUEST_STATUSES, 0),
                "cumulative": dict.fromkeys(REQUEST_STATUSES, 0)}  # fmt: skip
    for (w, _), f in count.access.items():
        for status in REQUEST_STATUSES:
            if w <= week:  # ISO week strings of one width order like the weeks
                requests["cumulative"][status] += f[f"requests_{status}"]
            if w == week:
                requests["week"][status] += f[f"requests_{status}"]
    return {
        "parties": parties,
        "total": total,
        "incidents": _events(count, week),
        "exempt": [
            {
                "report_id": c.report.report_id,
                "reason": c.reason,
                "killed": c.report.number("killed"),
                "injured": c.report.number("injured"),
            }
            for c in exempt
        ],
        "besieged": besieged,
        "requests": {
            scope: {**counts, "pending": counts["submitted"], "submitted": sum(counts.values())}
            for scope, counts in requests.items()
        },
    }
