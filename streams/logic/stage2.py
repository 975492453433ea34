"""Stage two, keyed by area: each placement is classified (classification), counted into
the area's weekly totals (totals), published as the rows it changed (snapshots) and
judged by the spike rules (alerting), once per batch.

Everything an area needs is in one partition: its reports and its designations. Per-report
state (``placed``) and designations are the only persistent tables; the weekly totals are
an in-memory index derived from them, rebuilt whenever the worker starts or its
partitions change.

Snapshots are versioned by the offset of the input record in its partition (monotonic,
and the same on replay); canonical reports by ``seq << 40 | offset``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from datetime import datetime
from sys import intern
from typing import Any

from schemas.figures import ACCESS, COMPLIANCE, COUNTED_KINDS
from schemas.weeks import iso_week, parse_utc
from streams.logic.alerting import SpikeRules
from streams.logic.classification import Classifier
from streams.logic.exemption import DesignationFact
from streams.logic.records import Emit, Placement, Snapshot
from streams.logic.totals import AreaIndex

Table = MutableMapping[str, Any]


class Stage2:
    """Owns the tables of the area partitions assigned to this worker.

    ``handle`` takes one placement and returns what it changed; the spike rules of the
    areas it touched run when the worker calls ``evaluate`` for each of ``take_dirty``
    (once per batch, in the partition of the area)."""

    def __init__(
        self,
        designated: Mapping[str, bool],
        placed: Table,
        designations: Table,
        spike_rules: SpikeRules,
    ) -> None:
        self.classifier = Classifier(designated)
        self.spike_rules = spike_rules
        self.placed = placed  # "area|report_id" -> {"folded": placement, "shown": [[w, p]]}
        self.designations = designations  # area -> {designation_id: fact}
        self._areas: dict[str, AreaIndex] | None = None
        self._clock: datetime | None = None  # event time: the latest occurred_at seen
        self._dirty: set[str] = set()

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
                self._place(index, Placement.of(state["folded"]))
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

    def _place(self, index: AreaIndex, placement: Placement) -> None:
        report = placement.live
        if report is not None:  # event time: the latest occurred_at seen
            moment = parse_utc(str(report["occurred_at"]))
            if self._clock is None or moment > self._clock:
                self._clock = moment
        index.remove(placement.report_id)
        if report is None or placement.kind not in COUNTED_KINDS:
            return
        week = intern(iso_week(parse_utc(str(report["occurred_at"]))))
        index.add(week, self.classifier.member(placement, index.facts))

    # -- records ---------------------------------------------------------------
    def handle(self, data: Mapping[str, Any], offset: int) -> list[Emit]:
        placement = Placement.of(data)
        rid, area = placement.report_id, placement.area
        key = f"{area}|{rid}"
        index = self._index(area)
        day_before = self._clock.date() if self._clock is not None else None
        stored = self.placed.get(key)
        if stored is not None and int(stored["folded"]["seq"]) > placement.seq:
            placement = Placement.of(stored["folded"])  # an older state redelivered: re-emit
        shown = {(str(w), str(p)) for w, p in stored["shown"]} if stored else set()
        row = _row_of(placement)
        if row is not None:
            shown.add(row)
        self.placed[key] = {"folded": placement.wire(), "shown": sorted(shown)}
        for week, party in shown:
            index.show(week, party)
        emits: list[Emit] = []
        if placement.kind == "designation" or rid in self.designations.get(area, {}):
            # a designation, or a report that was one here (moved, retracted or revised
            # into another kind): the area's exemptions are decided again
            self._place(index, placement)
            self._update_designation(placement)
            index.facts = self._facts(area)
            for member_placement in self._area_placements(area):
                self._place(index, member_placement)
            emits.extend(self._snapshots(index, index.every_row(), area, offset))
            emits.extend(
                Emit("events", p.report_id, self.classifier.canonical(p, index.facts, offset))
                for p in self._area_placements(area)
                if p.kind == "violation"
            )
        else:
            self._place(index, placement)
            emits.extend(self._snapshots(index, shown, area, offset))
        if not placement.removed:
            emits.append(
                Emit("events", rid, self.classifier.canonical(placement, index.facts, offset))
            )
        if self._clock is not None:
            # a new day of event time ages every area of this worker; otherwise only
            # the area of this record changed
            if day_before is None or self._clock.date() > day_before:
                assert self._areas is not None
                self._dirty.update(self._areas)
            else:
                self._dirty.add(area)
        return emits

    def take_dirty(self) -> list[str]:
        """Areas whose rule inputs changed since the last call."""
        dirty, self._dirty = sorted(self._dirty), set()
        return dirty

    def evaluate(self, area: str, offset: int) -> list[Emit]:
        """Run the spike rules of one area now; ``offset`` versions the alerts."""
        if self._clock is None or self._areas is None or area not in self._areas:
            return []
        return self.spike_rules.evaluate(area, self._areas[area], self._clock, offset)

    def _area_placements(self, area: str) -> list[Placement]:
        assert self._areas is not None
        index = self._areas[area]
        return [
            Placement.of(self.placed[f"{area}|{rid}"]["folded"])
            for members in index.members.values()
            for rid in members
        ]

    def _update_designation(self, placement: Placement) -> None:
        facts = dict(self.designations.get(placement.area, {}))
        report = placement.live
        if report is None or placement.kind != "designation":
            facts.pop(placement.report_id, None)
        else:
            facts[placement.report_id] = {
                "report_id": placement.report_id,
                "party": report["party"],
                "area": placement.area,
                "effective_from": report["occurred_at"],
                "effective_to": report.get("effective_to"),
                "retracted": bool(report.get("retracted", False)),
            }
        self.designations[placement.area] = facts

    @staticmethod
    def _snapshots(
        index: AreaIndex, rows: Iterable[tuple[str, str]], area: str, offset: int
    ) -> list[Emit]:
        """The current value of each (week, party) row; party "" is the week's access row."""
        emits: list[Emit] = []
        for week, party in sorted(rows):
            figures = COMPLIANCE if party else ACCESS
            values = dict(index.totals(week, party))
            snapshot = Snapshot(figures, week, area, party, values, offset)
            emits.append(Emit("metrics", snapshot.key, snapshot))
        return emits


def _row_of(placement: Placement) -> tuple[str, str] | None:
    """The published row a report contributes to: (week, perpetrator) for a violation,
    (week, "") for the access row of a delivery or request; None otherwise."""
    report = placement.live
    if report is None or placement.kind not in COUNTED_KINDS:
        return None
    week = iso_week(parse_utc(str(report["occurred_at"])))
    return (week, str(report["perpetrator"])) if placement.kind in COMPLIANCE.kinds else (week, "")
