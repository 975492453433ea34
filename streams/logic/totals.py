"""The weekly totals of one area, kept by delta from the classified state of its reports.

Totals are derived, never stored: the worker rebuilds them from the ``placed`` table
whenever it starts or its partitions change, so a crash cannot leave them out of step
with the per-report state. Which report adds what to which figure is decided by
``schemas.figures`` alone."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from sys import intern
from typing import Any

from schemas import FIELD_KINDS
from schemas.figures import ACCESS, COMPLIANCE, EVENT_KINDS, FigureSet
from schemas.weeks import week_of_day
from streams.logic.exemption import DesignationFact


@dataclass(frozen=True, slots=True)
class Member:
    """One current report placed in a (week, area), with its classification: only the
    fields the weekly figures and the spike rules read (the worker holds one per live
    report, so no report payload is kept; the full state is in the ``placed`` table).
    It is a ``schemas.figures.Classified``."""

    report_id: str
    kind: str
    exempt: bool
    verification: str
    party: str  # the perpetrator of a violation or incident, else ""
    status: str  # of a delivery or access request, else ""
    killed: int
    injured: int
    beneficiaries: int
    retracted: bool
    day: int  # proleptic ordinal of the UTC day of occurred_at
    event: bool  # an incident, or a violation in no incident (schemas.figures)
    sources: int  # organisations backing the event
    org: str = ""  # the organisation that owns the report (the reporting-gap rule)


def member_of(
    report_id: str,
    kind: str,
    report: Mapping[str, Any],
    exempt: bool,
    verification: str,
    day: int,
    links: tuple[str, tuple[str, ...]] = ("", ()),
    org: str = "",
) -> Member:
    """The slim member of a report; its small categorical strings are interned so that a
    million members share them. ``links`` is (the incident a violation belongs to, the
    organisations of an incident's members)."""
    incident, orgs = links
    event = kind == "incident" or (kind == "violation" and not incident)
    return Member(
        report_id,
        intern(kind),
        exempt,
        intern(verification),
        intern(str(report.get("perpetrator") or "")) if kind in EVENT_KINDS else "",
        intern(str(report.get("status") or "")) if kind not in EVENT_KINDS else "",
        int(report.get("killed") or 0),
        int(report.get("injured") or 0),
        int(report.get("beneficiaries") or 0),
        bool(report.get("retracted", False)),
        day,
        event,
        len(orgs) if kind == "incident" else int(event),
        intern(org),
    )


def figure_set_of(kind: str) -> FigureSet | None:
    """The weekly row a report of ``kind`` counts in."""
    if kind in COMPLIANCE.kinds:
        return COMPLIANCE
    if kind in ACCESS.kinds:
        return ACCESS
    return None


@dataclass
class AreaIndex:
    """The live reports of one area by week, with running totals per week."""

    where: dict[str, str] = field(default_factory=dict)  # report_id -> week
    members: dict[str, dict[str, Member]] = field(default_factory=dict)  # week -> rid -> member
    compliance: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    access: dict[str, dict[str, int]] = field(default_factory=dict)
    parties: dict[str, set[str]] = field(default_factory=dict)  # week -> parties ever shown
    facts: list[DesignationFact] = field(default_factory=list)
    # inputs of the spike rules, kept by the same deltas as the weekly totals
    violations: Counter[date] = field(default_factory=Counter)  # non-exempt, per UTC day
    seen: Counter[date] = field(default_factory=Counter)  # live reports per UTC day
    completed: dict[str, date] = field(default_factory=dict)  # rid -> completed delivery day
    requests: dict[str, tuple[date, str]] = field(default_factory=dict)  # rid -> (day, status)
    reporters: dict[str, Counter[date]] = field(default_factory=dict)  # org -> reports per day

    def show(self, week: str, party: str) -> None:
        """Remember a row was published, so it is re-published (as zero) once emptied."""
        if party:
            self.parties.setdefault(week, set()).add(party)
        else:
            self.access.setdefault(week, ACCESS.zero())

    def remove(self, rid: str) -> str | None:
        week = self.where.pop(rid, None)
        if week is not None:
            member = self.members[week].pop(rid)
            self._apply(week, member, -1)
        return week

    def add(self, week: str, member: Member) -> None:
        self.where[member.report_id] = week
        self.members.setdefault(week, {})[member.report_id] = member
        self._apply(week, member, +1)

    def every_row(self) -> set[tuple[str, str]]:
        """Every (week, party) row ever shown here; party "" is a week's access row."""
        rows = {(w, p) for w, parties in self.parties.items() for p in parties}
        return rows | {(w, "") for w in self.access}

    def totals(self, week: str, party: str) -> dict[str, int]:
        """The current figures of one row (zero once it has emptied)."""
        if party:
            return self.compliance.get(week, {}).get(party) or COMPLIANCE.zero()
        return self.access.get(week) or ACCESS.zero()

    def _apply(self, week: str, member: Member, sign: int) -> None:
        if member.retracted:
            return
        self._apply_rules_inputs(member, sign)
        figures = figure_set_of(member.kind)
        if figures is COMPLIANCE:
            totals = self.compliance.setdefault(week, {}).setdefault(
                member.party, COMPLIANCE.zero()
            )
            self.parties.setdefault(week, set()).add(member.party)
        elif figures is ACCESS:
            totals = self.access.setdefault(week, ACCESS.zero())
        else:
            return
        for figure in figures.figures:
            value = figure.value(member)
            if value:
                totals[figure.name] += sign * value

    def _apply_rules_inputs(self, member: Member, sign: int) -> None:
        day = date.fromordinal(member.day)
        _bump(self.seen, day, sign)
        if member.kind in FIELD_KINDS:  # the task force's incidents are not reports from there
            per_day = self.reporters.setdefault(member.org, Counter())
            _bump(per_day, day, sign)
            if not per_day:
                del self.reporters[member.org]
        status = member.status
        if member.kind == "violation" and not member.exempt:
            _bump(self.violations, day, sign)
        elif member.kind == "delivery" and status == "completed":
            if sign > 0:
                self.completed[member.report_id] = day
            else:
                self.completed.pop(member.report_id, None)
        elif member.kind == "access_request":
            if sign > 0:
                self.requests[member.report_id] = (day, status)
            else:
                self.requests.pop(member.report_id, None)

    def violation_ids(self, first: date, last: date) -> list[str]:
        """Non-exempt violations between two UTC days (inclusive), for report_ids."""
        days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        weeks = {week_of_day(d) for d in days}
        low, high = first.toordinal(), last.toordinal()
        return sorted(
            m.report_id
            for week in weeks
            for m in self.members.get(week, {}).values()
            if m.kind == "violation" and not m.exempt and not m.retracted and low <= m.day <= high
        )


def _bump(counter: Counter[date], day: date, sign: int) -> None:
    counter[day] += sign
    if counter[day] <= 0:
        del counter[day]
