"""Stage one, keyed by report id: fold revisions, refuse what the contract refuses, attach
verification status and incident membership, and hand each report's current state to stage
two keyed by area (how incident claims and memberships cross partitions: see
streams.logic.incidents).

Every call re-emits the current state of what it touched, even when nothing changed:
outputs are versioned snapshots, so a crash between a table write and a send is healed by
the redelivery instead of being lost.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from schemas.reports import AREA_KINDS
from streams.logic.canonical import SEQ_SHIFT, canonical
from streams.logic.folding import (
    History,
    Outcome,
    Revision,
    fold,
    from_dict,
    to_dict,
    with_incident,
    with_sources,
)
from streams.logic.folding import with_verification as set_verification
from streams.logic.incidents import claims_of, keep_newer, membership_version, sources, winner
from streams.logic.records import Claim, Emit, Membership, Placement, Verdict
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
    """Owns three tables of one partition: report histories, verdicts by subject, and
    incident links by report (the claims of the incidents that list it, and, for an
    incident, the memberships of the reports it lists).

    Two inputs share them: the reports topic (keyed by report id) and the references
    topic (verdicts keyed by the report a verification judges, claims by the member,
    memberships by the incident), both partitioned alike, so a report and every reference
    to it meet in one partition whichever partition the referring report lives in."""

    def __init__(
        self,
        histories: MutableMapping[str, dict[str, Any]],
        verifications: MutableMapping[str, dict[str, Any]],
        links: MutableMapping[str, dict[str, Any]],
    ) -> None:
        self.histories = histories
        self.verifications = verifications
        self.links = links  # report_id -> {"claims": {incident: claim},
        #                                  "members": {member: membership}}

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
        emits = self._verdicts(history) + self._claims(history)
        if history.current.report.get("kind") == "verification":
            emits.append(self._canonical_verification(history))
        elif history.current.report.get("kind") == "violation":
            history = self._refresh_verification(history)
        history = self._refresh_links(history)
        return emits + self._memberships(history) + self._placements(history)

    def handle_reference(self, data: dict[str, Any]) -> list[Emit]:
        """A record of the references topic: a verdict, a claim or a membership."""
        kind = data.get("type")
        if kind == "claim":
            return self.handle_claim(Claim.of(data))
        if kind == "membership":
            return self.handle_membership(Membership.of(data))
        return self.handle_verdict(data)

    def handle_claim(self, claim: Claim) -> list[Emit]:
        """An incident's claim on a report of this partition: remember it, decide the
        report's incident again, and answer every incident that claims it."""
        links = self._links(claim.member)
        if not keep_newer(links["claims"], claim.incident, claim):
            return []
        self.links[claim.member] = links
        stored = self.histories.get(claim.member)
        if stored is None:
            return []  # the member has not arrived; its fold will read the claims
        history = self._refresh_links(from_dict(stored))
        return self._memberships(history) + self._placements(history)

    def handle_membership(self, membership: Membership) -> list[Emit]:
        """A listed report's answer to an incident of this partition: remember it, count
        the incident's sources again, re-emit its placement."""
        links = self._links(membership.incident)
        if not keep_newer(links["members"], membership.member, membership):
            return []
        self.links[membership.incident] = links
        stored = self.histories.get(membership.incident)
        if stored is None:
            return []  # the incident has not arrived; its fold will read the memberships
        return self._placements(self._refresh_links(from_dict(stored)))

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

    # -- incidents -------------------------------------------------------------
    def _links(self, report_id: str) -> dict[str, Any]:
        held = self.links.get(report_id) or {}
        return {"claims": dict(held.get("claims", {})), "members": dict(held.get("members", {}))}

    def _claims(self, history: History) -> list[Emit]:
        """An incident's claim on each report it ever listed: live on those its current
        revision lists (unless retracted), withdrawn on every other one."""
        current = history.current
        report = current.report
        listing = (
            {str(m) for m in report.get("members") or ()}
            if report.get("kind") == "incident" and not report.get("retracted", False)
            else set()
        )
        return [
            Emit(
                "verdicts",
                member,
                Claim(
                    current.report_id,
                    member,
                    current.revision,
                    str(report["occurred_at"]) if member in listing else None,
                    member in listing,
                ),
            )
            for member in sorted(history.members)
        ]

    def _refresh_links(self, history: History) -> History:
        """The report's incident (from the claims about it) and, as an incident, its
        sources (from the memberships of its members), stored when they changed."""
        links = self._links(history.current.report_id)
        updated = with_incident(history, winner(claims_of(links["claims"])))
        held = [Membership.of(m) for m in links["members"].values()]
        updated = with_sources(updated, sources(held))
        if updated is not history:
            self.histories[history.current.report_id] = to_dict(updated)
        return updated

    def _memberships(self, history: History) -> list[Emit]:
        """The report's answer to every incident that ever claimed it."""
        current = history.current
        claims = claims_of(self._links(current.report_id)["claims"])
        member = current.report.get("kind") == "violation" and not current.report.get(
            "retracted", False
        )
        version = membership_version(current.revision, claims)
        return [
            Emit(
                "verdicts",
                claim.incident,
                Membership(
                    current.report_id,
                    claim.incident,
                    version,
                    history.owner,
                    member and history.incident == claim.incident,
                ),
            )
            for claim in sorted(claims, key=lambda c: c.incident)
        ]

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
                    history.incident,
                    history.sources,
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
