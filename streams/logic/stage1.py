"""Stage one, keyed by report id: fold revisions, refuse what the contract refuses, attach
verification status, and hand each report's current state to stage two keyed by area.

Every call re-emits the current state of what it touched, even when nothing changed:
outputs are versioned snapshots, so a crash between a table write and a send is healed by
the redelivery instead of being lost.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from schemas.reports import AREA_KINDS
from streams.logic.canonical import SEQ_SHIFT, canonical
from streams.logic.folding import History, Outcome, Revision, fold, from_dict, to_dict
from streams.logic.folding import with_verification as set_verification
from streams.logic.records import Emit, Placement, Verdict
from streams.logic.verification import VerificationFact, current_status


def revision_of(envelope: dict[str, Any]) -> Revision:
    report = envelope["report"]
    return Revision(
        report_id=str(report["report_id"]),
        revision=int(report.get("revision", 1)),
        org=str(envelope["org"]),
        content_hash=str(envelope["content_hash"]),
        received_at=str(envelope["received_at"]),
        report=report,
    )


class Stage1:
    """Owns two tables of one partition: report histories and verdicts by subject.

    Two inputs share them: the reports topic (keyed by report id) and the verdicts topic
    (keyed by the report a verification judges), both partitioned alike, so a report and
    every verdict about it meet in one partition whichever partition the verification
    itself lives in."""

    def __init__(
        self,
        histories: MutableMapping[str, dict[str, Any]],
        verifications: MutableMapping[str, dict[str, Any]],
    ) -> None:
        self.histories = histories
        self.verifications = verifications

    def handle(self, envelope: dict[str, Any]) -> list[Emit]:
        rev = revision_of(envelope)
        stored = self.histories.get(rev.report_id)
        before = from_dict(stored) if stored is not None else None
        history, outcome = fold(before, rev)
        if outcome in (Outcome.FOREIGN, Outcome.CONFLICT):
            return [self._dead_letter(rev, outcome, before)]
        assert history is not None
        if history is not before:
            self.histories[rev.report_id] = to_dict(history)
        emits = self._verdicts(history)
        if history.current.report.get("kind") == "verification":
            emits.append(self._canonical_verification(history))
        elif history.current.report.get("kind") == "violation":
            history = self._refresh_verification(history)
        return emits + self._placements(history)

    def handle_verdict(self, data: dict[str, Any]) -> list[Emit]:
        """A verification's verdict about one subject (or its withdrawal) reaches the
        subject's partition: remember it, re-judge the subject, re-emit its placement."""
        verdict = Verdict.of(data)
        subject = verdict.subject
        facts = dict(self.verifications.get(subject, {}))
        held = facts.get(verdict.report_id)  # a fact kept before verdicts had a seq has 0
        if held is None or int(held.get("seq", 0)) <= verdict.seq:
            facts[verdict.report_id] = verdict.wire()
            self.verifications[subject] = facts
        stored = self.histories.get(subject)
        if stored is None:
            return []  # the subject has not arrived; its fold will read the verdicts
        history = from_dict(stored)
        if history.current.report.get("kind") == "violation":
            history = self._refresh_verification(history)
        return self._placements(history)

    # -- verification ----------------------------------------------------------
    def _verdicts(self, history: History) -> list[Emit]:
        """The current verdict of a verification about each report it ever judged: its
        status about the current subject, withdrawn for every other one."""
        current = history.current
        report = current.report
        judging = str(report["subject"]) if report.get("kind") == "verification" else ""
        emits: list[Emit] = []
        for subject in sorted(history.subjects):
            live = subject == judging
            verdict = Verdict(
                current.report_id,
                subject,
                history.seq,
                report["occurred_at"] if live else None,
                report["status"] if live else None,
                bool(report.get("retracted", False)) if live else True,
            )
            emits.append(Emit("verdicts", subject, verdict))
        return emits

    def _refresh_verification(self, history: History) -> History:
        facts = self.verifications.get(history.current.report_id, {})
        status = current_status(
            VerificationFact(f["report_id"], f["occurred_at"], f["status"], f["retracted"])
            for f in facts.values()
            if not f["retracted"]
        )
        updated = set_verification(history, status)
        if updated is not history:
            self.histories[history.current.report_id] = to_dict(updated)
        return updated

    # -- outputs ---------------------------------------------------------------
    def _placements(self, history: History) -> list[Emit]:
        """The report's state for the partition of each area it was ever placed in: live
        in its current area, removed from every other (and from all of them once its kind
        has no area)."""
        current = history.current
        kind = str(current.report.get("kind"))
        area = str(current.report["area"]) if kind in AREA_KINDS else ""

        def placement(where: str, report: dict[str, Any] | None) -> Emit:
            return Emit(
                "folded",
                where,
                Placement(
                    current.report_id,
                    history.seq,
                    kind,
                    history.owner,
                    current.revision,
                    current.received_at,
                    history.verification,
                    where,
                    report is None,
                    report,
                ),
            )

        emits = [placement(old, None) for old in sorted(history.areas - {area})]
        if area:
            emits.append(placement(area, current.report))
        return emits

    def _canonical_verification(self, history: History) -> Emit:
        return Emit(
            "events",
            history.current.report_id,
            canonical(
                history.current.report,
                version=history.seq << SEQ_SHIFT,
                org=history.owner,
                received_at=history.current.received_at,
                exempt_reason="",
                verification="unverified",
            ),
        )

    @staticmethod
    def _dead_letter(rev: Revision, outcome: Outcome, before: History | None) -> Emit:
        detail = (
            f"report belongs to {before.owner!r}"
            if outcome is Outcome.FOREIGN and before is not None
            else "this revision was received before with different content"
        )
        return Emit(
            "deadletter",
            rev.report_id,
            {
                "report_id": rev.report_id,
                "revision": rev.revision,
                "org": rev.org,
                "reason": outcome.value,
                "detail": detail,
                "received_at": rev.received_at,
            },
        )
