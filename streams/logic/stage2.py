"""Stage two, keyed by area: classify (exemption), aggregate per (ISO week, area) and emit
canonical reports and metric snapshots.

Everything an area needs is in one partition: its reports, its designations and its
weekly buckets. Snapshots are versioned by the offset of the input record in that
partition (monotonic, deterministic on replay); canonical reports by
``seq << 40 | offset``. Buckets are recomputed from per-report state, never incremented,
and every week a report was ever placed in is recomputed, so replays after a crash heal.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

from streams.logic.aggregates import ACCESS_FIELDS, COMPLIANCE_FIELDS, Member, access, compliance
from streams.logic.canonical import canonical
from streams.logic.exemption import DesignationFact, exemption
from streams.logic.stage1 import SEQ_SHIFT, Emit
from streams.logic.weeks import iso_week, parse_utc

Table = MutableMapping[str, Any]


class Stage2:
    """Owns the tables of one area partition."""

    def __init__(
        self,
        designated: Mapping[str, bool],
        placed: Table,
        buckets: Table,
        area_weeks: Table,
        designations: Table,
    ) -> None:
        self.designated = designated
        self.placed = placed  # "area|report_id" -> {"folded": ..., "weeks": [...]}
        self.buckets = (
            buckets  # "week|area" -> {"members": [...], "parties": [...], "access": bool}
        )
        self.area_weeks = area_weeks  # area -> [weeks]
        self.designations = designations  # area -> {designation_id: fact}

    def handle(self, folded: dict[str, Any], offset: int) -> list[Emit]:
        rid, area = str(folded["report_id"]), str(folded["area"])
        stored = self.placed.get(f"{area}|{rid}")
        if stored is not None and int(stored["folded"]["seq"]) > int(folded["seq"]):
            folded = stored["folded"]  # an older state redelivered: keep, but re-emit
        weeks = set(stored["weeks"]) if stored else set()
        if not folded["removed"]:
            week = iso_week(parse_utc(str(folded["report"]["occurred_at"])))
            weeks.add(week)
            self._join_bucket(week, area, rid)
        self.placed[f"{area}|{rid}"] = {"folded": folded, "weeks": sorted(weeks)}
        emits: list[Emit] = []
        if folded["kind"] == "designation":
            self._update_designation(area, folded)
            weeks = set(self.area_weeks.get(area, []))
            for week in sorted(weeks):
                emits.extend(self._recompute(week, area, offset, canonical_for="violation"))
            if not folded["removed"]:
                emits.append(self._canonical(folded, area, offset))
            return emits
        for week in sorted(weeks):
            emits.extend(self._recompute(week, area, offset, canonical_for=None))
        if not folded["removed"]:
            emits.append(self._canonical(folded, area, offset))
        return emits

    # -- state -----------------------------------------------------------------
    def _join_bucket(self, week: str, area: str, rid: str) -> None:
        key = f"{week}|{area}"
        bucket = self.buckets.get(key) or {"members": [], "parties": [], "access": False}
        if rid not in bucket["members"]:
            bucket = {**bucket, "members": [*bucket["members"], rid]}
            self.buckets[key] = bucket
        weeks = self.area_weeks.get(area, [])
        if week not in weeks:
            self.area_weeks[area] = sorted([*weeks, week])

    def _update_designation(self, area: str, folded: dict[str, Any]) -> None:
        facts = dict(self.designations.get(area, {}))
        if folded["removed"]:
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

    def _facts(self, area: str) -> list[DesignationFact]:
        return [DesignationFact(**f) for f in self.designations.get(area, {}).values()]

    def _exempt_reason(self, report: Mapping[str, Any], area: str) -> str:
        if report.get("kind") != "violation":
            return ""
        return exemption(report, self.designated, self._facts(area))

    # -- outputs ---------------------------------------------------------------
    def _members(self, week: str, area: str) -> tuple[list[Member], list[str]]:
        bucket = self.buckets.get(f"{week}|{area}") or {"members": []}
        members: list[Member] = []
        for rid in bucket["members"]:
            state = self.placed.get(f"{area}|{rid}")
            if state is None:
                continue
            folded = state["folded"]
            if folded["removed"] or folded["area"] != area:
                continue
            report = folded["report"]
            if iso_week(parse_utc(str(report["occurred_at"]))) != week:
                continue
            exempt = bool(self._exempt_reason(report, area))
            members.append(Member(rid, folded["kind"], report, exempt, folded["verification"]))
        return members, [m.report_id for m in members]

    def _recompute(
        self, week: str, area: str, offset: int, canonical_for: str | None
    ) -> list[Emit]:
        key = f"{week}|{area}"
        members, live = self._members(week, area)
        bucket = self.buckets.get(key) or {"members": [], "parties": [], "access": False}
        rows = compliance(members)
        access_row = access(members)
        parties = sorted(set(bucket["parties"]) | set(rows))
        had_access = bool(bucket["access"]) or access_row is not None
        self.buckets[key] = {"members": live, "parties": parties, "access": had_access}
        emits = [
            Emit(
                "metrics",
                f"compliance|{week}|{area}|{party}",
                {
                    "type": "compliance",
                    "week": week,
                    "area": area,
                    "party": party,
                    **rows.get(party, dict.fromkeys(COMPLIANCE_FIELDS, 0)),
                    "version": offset,
                },
            )
            for party in parties
        ]
        if had_access:
            emits.append(
                Emit(
                    "metrics",
                    f"access|{week}|{area}",
                    {
                        "type": "access",
                        "week": week,
                        "area": area,
                        **(access_row or dict.fromkeys(ACCESS_FIELDS, 0)),
                        "version": offset,
                    },
                )
            )
        if canonical_for is not None:
            for member in members:
                if member.kind == canonical_for:
                    folded = self.placed[f"{area}|{member.report_id}"]["folded"]
                    emits.append(self._canonical(folded, area, offset))
        return emits

    def _canonical(self, folded: dict[str, Any], area: str, offset: int) -> Emit:
        report = folded["report"]
        return Emit(
            "events",
            str(folded["report_id"]),
            canonical(
                report,
                version=(int(folded["seq"]) << SEQ_SHIFT) | offset,
                org=str(folded["org"]),
                received_at=str(folded["received_at"]),
                exempt_reason=self._exempt_reason(report, area),
                verification=str(folded["verification"]),
            ),
        )
