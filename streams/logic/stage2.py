"""Stage two, keyed by area: classify (exemption), aggregate per (ISO week, area) and emit
canonical reports and metric snapshots.

Everything an area needs is in one partition: its reports and its designations. Per-report
state (``placed``) and designations are the only persistent tables; the weekly totals are
an in-memory index derived from them, updated by delta on each record and rebuilt from
the tables whenever the worker starts or its partitions change. A crash therefore cannot
leave totals out of step with the per-report state they are derived from.

Snapshots are versioned by the offset of the input record in its partition (monotonic,
and the same on replay); canonical reports by ``seq << 40 | offset``.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from sys import intern
from typing import Any

from schemas.weeks import iso_week, parse_utc
from streams.logic import spikes
from streams.logic.aggregates import (
    ACCESS_FIELDS,
    COMPLIANCE_FIELDS,
    Member,
    access,
    compliance,
    member_of,
)
from streams.logic.canonical import canonical
from streams.logic.exemption import DesignationFact, exemption
from streams.logic.rules import RuleConfig
from streams.logic.stage1 import SEQ_SHIFT, Emit

Table = MutableMapping[str, Any]
COUNTED_KINDS = frozenset({"violation", "delivery", "access_request"})


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

    def show(self, week: str, party: str) -> None:
        """Remember a row was published, so it is re-published (as zero) once emptied."""
        if party:
            self.parties.setdefault(week, set()).add(party)
        else:
            self.access.setdefault(week, dict.fromkeys(ACCESS_FIELDS, 0))

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

    def _apply(self, week: str, member: Member, sign: int) -> None:
        self._apply_rules_inputs(member, sign)
        for party, row in compliance([member]).items():
            totals = self.compliance.setdefault(week, {}).setdefault(
                party, dict.fromkeys(COMPLIANCE_FIELDS, 0)
            )
            for name, value in row.items():
                totals[name] += sign * value
            self.parties.setdefault(week, set()).add(party)
        access_row = access([member])
        if access_row is not None:
            totals = self.access.setdefault(week, dict.fromkeys(ACCESS_FIELDS, 0))
            for name, value in access_row.items():
                totals[name] += sign * value

    def _apply_rules_inputs(self, member: Member, sign: int) -> None:
        if member.retracted:
            return
        day = date.fromordinal(member.day)
        _bump(self.seen, day, sign)
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
        weeks = {iso_week(datetime(d.year, d.month, d.day, tzinfo=UTC)) for d in _days(first, last)}
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


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


class Stage2:
    """Owns the tables of the area partitions assigned to this worker."""

    def __init__(
        self,
        designated: Mapping[str, bool],
        placed: Table,
        designations: Table,
        alerts: Table | None = None,
        rules: RuleConfig | None = None,
        besieged: frozenset[str] = frozenset(),
        defer_rules: bool = False,
    ) -> None:
        self.designated = designated
        # fingerprint -> the last alert sent; "open|<area>" -> {fingerprint: [subject, day]}
        self.alerts = alerts if alerts is not None else {}
        self.rules = rules  # None: no alert rules (unit tests of the metrics)
        self.besieged = besieged
        # deferred: handle() only marks areas, take_dirty()/evaluate() run the rules once
        # per batch (the worker); immediate: after every record (unit tests)
        self.defer_rules = defer_rules
        self._dirty: set[str] = set()
        self._clock: datetime | None = None  # event time: the latest occurred_at seen
        self.placed = placed  # "area|report_id" -> {"folded": ..., "shown": [[week, party]]}
        self.designations = designations  # area -> {designation_id: fact}
        self._areas: dict[str, AreaIndex] | None = None

    def reset(self) -> None:
        """Forget the derived index (partitions changed); it is rebuilt on the next record."""
        self._areas = None
        self._clock = None

    # -- derived index ---------------------------------------------------------
    def _index(self, area: str) -> AreaIndex:
        if self._areas is None:
            self._areas = {}
            # streamed from the store: a list of every entry first held each report's whole
            # state at once (2.9 GB for a million reports, kept by the allocator after)
            for key, state in self.placed.items():
                index = self._get(str(key).partition("|")[0])
                self._place(index, state["folded"])
                for week, party in state["shown"]:
                    index.show(week, party)
        return self._get(area)

    def _get(self, area: str) -> AreaIndex:
        assert self._areas is not None
        index = self._areas.get(area)
        if index is None:
            index = AreaIndex(facts=self._facts(area))
            self._areas[area] = index
        return index

    def _facts(self, area: str) -> list[DesignationFact]:
        return [DesignationFact(**f) for f in self.designations.get(area, {}).values()]

    def _member(self, index: AreaIndex, folded: Mapping[str, Any]) -> Member:
        report = folded["report"]
        reason = ""
        if folded["kind"] == "violation":
            reason = exemption(report, self.designated, index.facts)
        return member_of(
            str(folded["report_id"]),
            str(folded["kind"]),
            report,
            bool(reason),
            str(folded["verification"]),
            parse_utc(str(report["occurred_at"])).toordinal(),
        )

    def _place(self, index: AreaIndex, folded: Mapping[str, Any]) -> None:
        if folded.get("report"):  # event time: the latest occurred_at seen
            moment = parse_utc(str(folded["report"]["occurred_at"]))
            if self._clock is None or moment > self._clock:
                self._clock = moment
        index.remove(str(folded["report_id"]))
        if folded["removed"] or folded["kind"] not in COUNTED_KINDS:
            return
        week = intern(iso_week(parse_utc(str(folded["report"]["occurred_at"]))))
        index.add(week, self._member(index, folded))

    # -- records ---------------------------------------------------------------
    def handle(self, folded: dict[str, Any], offset: int) -> list[Emit]:
        rid, area = str(folded["report_id"]), str(folded["area"])
        key = f"{area}|{rid}"
        index = self._index(area)
        day_before = self._clock.date() if self._clock is not None else None
        stored = self.placed.get(key)
        if stored is not None and int(stored["folded"]["seq"]) > int(folded["seq"]):
            folded = stored["folded"]  # an older state redelivered: keep, but re-emit
        shown = {tuple(pair) for pair in stored["shown"]} if stored else set()
        row = _row_of(folded)
        if row is not None:
            shown.add(row)
        self.placed[key] = {"folded": folded, "shown": sorted(shown)}
        for week, party in shown:
            index.show(week, party)
        emits: list[Emit] = []
        if folded["kind"] == "designation" or rid in self.designations.get(area, {}):
            # a designation, or a report that was one here (moved, retracted or revised
            # into another kind): the area's exemptions are decided again
            self._place(index, folded)
            self._update_designation(area, folded)
            index.facts = self._facts(area)
            for member_folded in self._area_folded(area):
                self._place(index, member_folded)
            every_row = {(w, p) for w, parties in index.parties.items() for p in parties}
            every_row |= {(w, "") for w in index.access}
            emits.extend(self._snapshots(index, every_row, area, offset))
            for week_members in index.members.values():
                for member in week_members.values():
                    if member.kind == "violation":
                        member_folded = self.placed[f"{area}|{member.report_id}"]["folded"]
                        emits.append(self._canonical(member_folded, area, offset))
        else:
            self._place(index, folded)
            emits.extend(self._snapshots(index, shown, area, offset))
        if not folded["removed"]:
            emits.append(self._canonical(folded, area, offset))
        if self.rules is not None and self._clock is not None:
            # a new day of event time ages every area of this worker; otherwise only
            # the area of this record changed
            if day_before is None or self._clock.date() > day_before:
                assert self._areas is not None
                checked = sorted(self._areas)
            else:
                checked = [area]
            if self.defer_rules:
                self._dirty.update(checked)
            else:
                for name in checked:
                    emits.extend(self._evaluate(name, offset))
        return emits

    def take_dirty(self) -> list[str]:
        """Areas whose rule inputs changed since the last call (deferred mode)."""
        dirty, self._dirty = sorted(self._dirty), set()
        return dirty

    def evaluate(self, area: str, offset: int) -> list[Emit]:
        """Run the spike rules of one area now; ``offset`` versions the alerts."""
        if self.rules is None or self._clock is None or self._areas is None:
            return []
        if area not in self._areas:
            return []
        return self._evaluate(area, offset)

    # -- spike rules -------------------------------------------------------------
    def _evaluate(self, area: str, offset: int) -> list[Emit]:
        assert self.rules is not None
        assert self._clock is not None
        assert self._areas is not None
        index, now = self._areas[area], self._clock
        today = now.date()
        first_seen = min(index.seen, default=today)
        spike = spikes.violation_spike(
            index.violations, today, self.rules.violation_spike, history_start=first_seen
        )
        # listing the reports behind a spike scans the window's members: only done for an
        # alert that is sent (next_alert's decision does not depend on the list)
        checks: list[tuple[spikes.Verdict, str, Callable[[], list[str]]]] = [
            (spike, "", lambda: index.violation_ids(spike.window_start, spike.window_end))
        ]
        if area in self.besieged:
            last = max(index.completed.values(), default=None)
            gap = spikes.delivery_gap(last, first_seen, today, self.rules.delivery_gap)
            checks.append((gap, "", list))
        # stale requests: every pending one, and every one with an open alert (so that an
        # answered, retracted or moved request resolves its alert)
        opened: dict[str, list[str]] = dict(self.alerts.get(f"open|{area}", {}))
        subjects = {rid: v for rid, v in index.requests.items() if v[1] == "submitted"}
        for rid, day in opened.values():
            status = index.requests.get(rid, (today, "retracted"))[1]
            subjects[rid] = (date.fromisoformat(day), status)
        stale = self.rules.stale_access_request
        for rid, (submitted, status) in sorted(subjects.items()):
            verdict = spikes.stale_request(submitted, status, today, stale)
            checks.append((verdict, rid, functools.partial(list, (rid,))))
        emits: list[Emit] = []
        for check, subject, ids in checks:
            key = spikes.fingerprint(check.rule, area, "", check.window, subject)
            alert = spikes.next_alert(
                self.alerts.get(key), check, area=area, subject=subject, now=now, version=offset
            )
            if alert is None:
                continue
            alert["report_ids"] = ids()
            self.alerts[key] = alert
            emits.append(Emit("alerts", key, alert))
            if subject and alert["state"] == "firing":
                opened[key] = [subject, subjects[subject][0].isoformat()]
            elif subject:
                opened.pop(key, None)
        if opened != self.alerts.get(f"open|{area}", {}):
            self.alerts[f"open|{area}"] = opened
        return emits

    def _area_folded(self, area: str) -> list[Mapping[str, Any]]:
        assert self._areas is not None
        index = self._areas[area]
        return [
            self.placed[f"{area}|{rid}"]["folded"]
            for members in index.members.values()
            for rid in members
        ]

    def _update_designation(self, area: str, folded: dict[str, Any]) -> None:
        facts = dict(self.designations.get(area, {}))
        if folded["removed"] or folded["kind"] != "designation":
            facts.pop(folded["report_id"], None)
        else:
            report = folded["report"]
            facts[folded["report_id"]] = {
                "report_id": folded["report_id"],
                "party": report["party"],
                "area": area,
                "effective_from": report["occurred_at"],
                "effective_to": report.get("effective_to"),
                "retracted": bool(report.get("retracted", False)),
            }
        self.designations[area] = facts

    # -- outputs ---------------------------------------------------------------
    def _snapshots(
        self, index: AreaIndex, rows: set[tuple[str, str]], area: str, offset: int
    ) -> list[Emit]:
        """The current value of each (week, party) row; party "" is the week's access row."""
        emits: list[Emit] = []
        for week, party in sorted(rows):
            if party:
                totals = index.compliance.get(week, {}).get(party)
                emits.append(
                    Emit(
                        "metrics",
                        f"compliance|{week}|{area}|{party}",
                        {
                            "type": "compliance",
                            "week": week,
                            "area": area,
                            "party": party,
                            **(totals or dict.fromkeys(COMPLIANCE_FIELDS, 0)),
                            "version": offset,
                        },
                    )
                )
            else:
                totals = index.access.get(week)
                emits.append(
                    Emit(
                        "metrics",
                        f"access|{week}|{area}",
                        {
                            "type": "access",
                            "week": week,
                            "area": area,
                            **(totals or dict.fromkeys(ACCESS_FIELDS, 0)),
                            "version": offset,
                        },
                    )
                )
        return emits

    def _canonical(self, folded: Mapping[str, Any], area: str, offset: int) -> Emit:
        report = folded["report"]
        reason = ""
        if folded["kind"] == "violation":
            assert self._areas is not None
            reason = exemption(report, self.designated, self._areas[area].facts)
        return Emit(
            "events",
            str(folded["report_id"]),
            canonical(
                report,
                version=(int(folded["seq"]) << SEQ_SHIFT) | offset,
                org=str(folded["org"]),
                received_at=str(folded["received_at"]),
                exempt_reason=reason,
                verification=str(folded["verification"]),
            ),
        )


def _row_of(folded: Mapping[str, Any]) -> tuple[str, str] | None:
    """The published row a report contributes to: (week, perpetrator) for a violation,
    (week, "") for the access row of a delivery or request; None otherwise."""
    if folded["removed"] or folded["kind"] not in COUNTED_KINDS:
        return None
    report = folded["report"]
    week = iso_week(parse_utc(str(report["occurred_at"])))
    return (week, str(report["perpetrator"])) if folded["kind"] == "violation" else (week, "")
