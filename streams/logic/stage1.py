"""Stage one, keyed by report id: fold revisions, refuse what the contract refuses, attach
verification status, and hand each report's current state to stage two keyed by area.

Every call re-emits the current state of what it touched, even when nothing changed:
outputs are versioned snapshots, so a crash between a table write and a send is healed by
the redelivery instead of being lost.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from streams.logic.canonical import canonical
from streams.logic.folding import History, Outcome, Revision, fold, from_dict, to_dict
from streams.logic.folding import with_verification as set_verification
from streams.logic.verification import VerificationFact, current_status

AREA_KINDS = frozenset({"violation", "delivery", "access_request", "designation"})
SEQ_SHIFT = 40


@dataclass(frozen=True)
class Emit:
    """One record to send: ``role`` names the topic (folded, events, deadletter)."""

    role: str
    key: str
    value: dict[str, Any]


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
    """Owns two tables of one partition: report histories and verifications by subject."""

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
        if history.current.report.get("kind") == "verification":
            return [self._canonical_verification(history), *self._verify(history)]
        if history.current.report.get("kind") == "violation":
            history = self._refresh_verification(history)
        return self._placements(history)

    # -- verification ----------------------------------------------------------
    def _verify(self, verification: History) -> list[Emit]:
        report = verification.current.report
        subject = str(report["subject"])
        facts = dict(self.verifications.get(subject, {}))
        facts[verification.current.report_id] = {
            "report_id": verification.current.report_id,
            "occurred_at": report["occurred_at"],
            "status": report["status"],
            "retracted": bool(report.get("retracted", False)),
        }
        self.verifications[subject] = facts
        stored = self.histories.get(subject)
        if stored is None:
            return []  # the subject has not arrived; its fold will read the facts
        return self._placements(self._refresh_verification(from_dict(stored)))

    def _refresh_verification(self, history: History) -> History:
        facts = self.verifications.get(history.current.report_id, {})
        status = current_status(VerificationFact(**f) for f in facts.values())
        updated = set_verification(history, status)
        if updated is not history:
            self.histories[history.current.report_id] = to_dict(updated)
        return updated

    # -- outputs ---------------------------------------------------------------
    def _placements(self, history: History) -> list[Emit]:
        current = history.current
        kind = str(current.report.get("kind"))
        if kind not in AREA_KINDS:
            return []
        area = str(current.report["area"])
        base = {
            "report_id": current.report_id,
            "seq": history.seq,
            "kind": kind,
            "org": history.owner,
            "revision": current.revision,
            "received_at": current.received_at,
            "verification": history.verification,
        }
        emits = [
            Emit("folded", old, {**base, "area": old, "removed": True, "report": None})
            for old in sorted(history.areas - {area})
        ]
        emits.append(
            Emit("folded", area, {**base, "area": area, "removed": False, "report": current.report})
        )
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
