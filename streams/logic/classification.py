"""Classifying a placed report in its area: its exemption (CONTRACT section 2, from the
reference data's designated parties and the area's designations), the member the weekly
totals and spike rules read, and the canonical record of its current state."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from schemas.figures import EVENT_KINDS
from schemas.weeks import parse_utc
from streams.logic.canonical import SEQ_SHIFT, canonical
from streams.logic.exemption import DesignationFact, exemption
from streams.logic.records import Placement
from streams.logic.totals import Member, member_of


class Classifier:
    def __init__(self, designated: Mapping[str, bool]) -> None:
        self.designated = designated

    def exempt_reason(self, placement: Placement, facts: Iterable[DesignationFact]) -> str:
        """'' when the report is not an exempt violation or incident (judged by its own
        fields, CONTRACT section 9), else why it is."""
        if placement.kind not in EVENT_KINDS or placement.report is None:
            return ""
        return exemption(placement.report, self.designated, facts)

    def member(self, placement: Placement, facts: Iterable[DesignationFact]) -> Member:
        report: Mapping[str, Any] = placement.report or {}
        return member_of(
            placement.report_id,
            placement.kind,
            report,
            bool(self.exempt_reason(placement, facts)),
            placement.verification,
            parse_utc(str(report["occurred_at"])).toordinal(),
            (placement.incident, placement.sources),
            placement.org,
        )

    def canonical(
        self, placement: Placement, facts: Iterable[DesignationFact], offset: int
    ) -> dict[str, Any]:
        assert placement.report is not None
        member = self.member(placement, facts)
        return canonical(
            placement.report,
            version=(placement.seq << SEQ_SHIFT) | offset,
            org=placement.org,
            received_at=placement.received_at,
            exempt_reason=self.exempt_reason(placement, facts),
            verification=placement.verification,
            links=(placement.incident, member.event, member.sources),
        )
