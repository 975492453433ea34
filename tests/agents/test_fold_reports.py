"""The ``fold_reports`` agent: reports topic in, folded records / canonical events / dead
letters out (CONTRACT section 2: revisions, duplicates, conflicts, ownership,
verification)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from tests.agents.harness import (
    RECEIVED_TEXT,
    Harness,
    Scenario,
    envelope,
    stored,
    verification,
    violation,
)

Run = Callable[[str, Scenario], Harness]
AGENT = "fold_reports"


def values(sent: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(s.key_text, s.data) for s in sent]


def test_violation_is_folded_under_its_area_with_seq_1(run: Run) -> None:
    report = violation("v1", area="daraya", killed=2)

    async def scenario(h: Harness, agent: Any) -> None:
        await agent.put(envelope(report), key=b"v1")
        await h.settle_fold(agent)

    h = run(AGENT, scenario)
    assert h.deadletters() == []
    assert values(h.folded()) == [
        (
            "daraya",
            {
                "report_id": "v1",
                "seq": 1,
                "kind": "violation",
                "org": "sarc",
                "revision": 1,
                "received_at": RECEIVED_TEXT,
                "verification": "unverified",
                "area": "daraya",
                "removed": False,
                "report": stored(report),
                "incident": "",  # in no incident
                "sources": [],  # only an incident has sources
            },
        )
    ]
    # the fold is remembered durably: its table write went to the changelog
    assert [s.key for s in h.changelog("histories")] == [b'"v1"']


def test_duplicate_re_emits_the_same_folded_record_without_dead_letter(run: Run) -> None:
    record = envelope(violation("v1"))

    async def scenario(h: Harness, agent: Any) -> None:
        await agent.put(record, key=b"v1")
        await h.settle_fold(agent)
        await agent.put(record, key=b"v1")
        await h.settle_fold(agent)

    h = run(AGENT, scenario)
    first, again = values(h.folded())
    assert first == again
    assert first[0] == "madaya"
    assert first[1]["seq"] == 1
    assert h.deadletters() == []


def test_same_revision_with_other_content_is_a_revision_conflict(run: Run) -> None:
    async def scenario(h: Harness, agent: Any) -> None:
        await agent.put(envelope(violation("v1", killed=0)), key=b"v1")
        await agent.put(envelope(violation("v1", killed=5)), key=b"v1")
        await h.settle_fold(agent)

    h = run(AGENT, scenario)
    [letter] = h.deadletters()
    assert letter["reason"] == "revision_conflict"
    assert (letter["report_id"], letter["revision"], letter["org"]) == ("v1", 1, "sarc")
    assert letter["received_at"] == RECEIVED_TEXT
    [placement] = values(h.folded())  # the conflicting record changed nothing
    assert placement[1]["report"]["killed"] == 0


def test_another_organisations_revision_is_a_foreign_owner_dead_letter(run: Run) -> None:
    async def scenario(h: Harness, agent: Any) -> None:
        await agent.put(envelope(violation("v1"), org="sarc"), key=b"v1")
        await agent.put(envelope(violation("v1", revision=2, killed=9), org="wfp"), key=b"v1")
        await h.settle_fold(agent)

    h = run(AGENT, scenario)
    [letter] = h.deadletters()
    assert letter["reason"] == "foreign_owner"
    assert (letter["report_id"], letter["revision"], letter["org"]) == ("v1", 2, "wfp")
    [placement] = values(h.folded())
    assert placement[1]["revision"] == 1
    assert placement[1]["org"] == "sarc"


def test_verification_before_its_subject_is_applied_when_the_subject_arrives(run: Run) -> None:
    async def scenario(h: Harness, agent: Any) -> None:
        # the verdict reaches the subject through the verdicts topic, before the subject
        await agent.put(envelope(verification("ver1", "v1", "verified"), "taskforce"), key=b"ver1")
        await h.settle_fold(agent)
        assert h.folded() == []  # nothing to place yet
        [event] = h.events("ver1")  # the verification's own canonical record
        assert (event["kind"], event["status"], event["subject"]) == (
            "verification",
            "verified",
            "v1",
        )
        await agent.put(envelope(violation("v1")), key=b"v1")
        await h.settle_fold(agent)

    h = run(AGENT, scenario)
    [(area, record)] = values(h.folded())
    assert area == "madaya"
    assert record["report_id"] == "v1"
    assert record["verification"] == "verified"
    assert h.deadletters() == []


def test_later_verification_re_emits_the_subject_with_its_new_status(run: Run) -> None:
    async def scenario(h: Harness, agent: Any) -> None:
        await agent.put(envelope(violation("v1")), key=b"v1")
        await agent.put(envelope(verification("ver1", "v1", "verified"), "taskforce"), key=b"v1")
        later = verification("ver2", "v1", "disputed", occurred_at="2016-02-28T00:00:00Z")
        await agent.put(envelope(later, "taskforce"), key=b"v1")
        await h.settle_fold(agent)

    h = run(AGENT, scenario)
    placements = [record for _, record in values(h.folded())]
    assert [p["verification"] for p in placements] == ["unverified", "verified", "disputed"]
    seqs = [p["seq"] for p in placements]
    assert seqs == sorted(set(seqs)), "each change of status is a new, higher seq"


def latest_by_report(h: Harness) -> dict[str, dict[str, Any]]:
    """The last placement of each report (what stage two ends with)."""
    return {record["report_id"]: record for _, record in values(h.folded())}


def test_verification_whose_subject_moves_stops_judging_the_old_subject(run: Run) -> None:
    """CONTRACT 6: X rev 1 verifies A; X rev 2 moves to B. A falls back to unverified
    (it was judged by X alone), B is verified: one verified violation, not two."""

    async def scenario(h: Harness, agent: Any) -> None:
        await agent.put(envelope(violation("A")), key=b"A")
        await agent.put(envelope(violation("B")), key=b"B")
        await agent.put(envelope(verification("X", "A", "verified"), "taskforce"), key=b"X")
        await h.settle_fold(agent)
        assert latest_by_report(h)["A"]["verification"] == "verified"
        moved = verification("X", "B", "verified", revision=2)
        await agent.put(envelope(moved, "taskforce"), key=b"X")
        await h.settle_fold(agent)

    h = run(AGENT, scenario)
    latest = latest_by_report(h)
    assert latest["A"]["verification"] == "unverified"
    assert latest["B"]["verification"] == "verified"


def test_a_subject_falls_back_to_its_other_verifications(run: Run) -> None:
    async def scenario(h: Harness, agent: Any) -> None:
        await agent.put(envelope(violation("A")), key=b"A")
        early = verification("Y", "A", "disputed", occurred_at="2016-02-26T00:00:00Z")
        await agent.put(envelope(early, "taskforce"), key=b"Y")
        await agent.put(envelope(verification("X", "A", "verified"), "taskforce"), key=b"X")
        await h.settle_fold(agent)
        assert latest_by_report(h)["A"]["verification"] == "verified"
        await agent.put(envelope(verification("X", "B", "verified", revision=2), "taskforce"),
                        key=b"X")  # fmt: skip
        await h.settle_fold(agent)

    assert latest_by_report(run(AGENT, scenario))["A"]["verification"] == "disputed"


def test_violation_revised_into_another_kind_stops_counting_as_a_violation(run: Run) -> None:
    """CONTRACT 6: rev 2 turns violation V into a verification; its placement in its area
    must be withdrawn, or rev 1 keeps counting."""

    async def scenario(h: Harness, agent: Any) -> None:
        await agent.put(envelope(violation("V")), key=b"V")
        await agent.put(envelope(violation("W")), key=b"W")
        await h.settle_fold(agent)
        now_a_verdict = verification("V", "W", "verified", revision=2)
        await agent.put(envelope(now_a_verdict), key=b"V")
        await h.settle_fold(agent)

    h = run(AGENT, scenario)
    latest = latest_by_report(h)
    assert (latest["V"]["area"], latest["V"]["removed"], latest["V"]["revision"]) == (
        "madaya",
        True,
        2,
    )
    assert latest["W"]["verification"] == "verified"
    [*_, event] = h.events("V")
    assert (event["kind"], event["revision"]) == ("verification", 2)


def test_verification_revised_into_a_violation_withdraws_its_verdict(run: Run) -> None:
    async def scenario(h: Harness, agent: Any) -> None:
        await agent.put(envelope(violation("A")), key=b"A")
        await agent.put(envelope(verification("X", "A", "verified"), "taskforce"), key=b"X")
        await h.settle_fold(agent)
        await agent.put(envelope(violation("X", revision=2), "taskforce"), key=b"X")
        await h.settle_fold(agent)

    latest = latest_by_report(run(AGENT, scenario))
    assert latest["A"]["verification"] == "unverified"
    assert (latest["X"]["kind"], latest["X"]["removed"]) == ("violation", False)


def test_correction_to_another_area_removes_the_old_placement(run: Run) -> None:
    moved = violation("v1", revision=2, area="daraya")

    async def scenario(h: Harness, agent: Any) -> None:
        await agent.put(envelope(violation("v1", area="madaya")), key=b"v1")
        await h.settle_fold(agent)
        await agent.put(envelope(moved), key=b"v1")
        await h.settle_fold(agent)

    h = run(AGENT, scenario)
    first, removal, upsert = values(h.folded())
    assert first[0] == "madaya"
    assert removal[0] == "madaya"
    assert removal[1]["removed"] is True
    assert removal[1]["report"] is None
    assert (removal[1]["area"], removal[1]["seq"], removal[1]["revision"]) == ("madaya", 2, 2)
    assert upsert[0] == "daraya"
    assert upsert[1]["removed"] is False
    assert (upsert[1]["area"], upsert[1]["seq"], upsert[1]["revision"]) == ("daraya", 2, 2)
    assert upsert[1]["report"] == stored(moved)


def test_late_lower_revision_re_emits_the_current_one(run: Run) -> None:
    async def scenario(h: Harness, agent: Any) -> None:
        await agent.put(envelope(violation("v1", revision=2, killed=3)), key=b"v1")
        await agent.put(envelope(violation("v1", revision=1, killed=1)), key=b"v1")
        await h.settle_fold(agent)

    h = run(AGENT, scenario)
    placements = [record for _, record in values(h.folded())]
    assert [(p["revision"], p["report"]["killed"]) for p in placements] == [(2, 3), (2, 3)]
    assert h.deadletters() == []


def test_undecodable_records_become_dead_letters_and_the_agent_goes_on(run: Run) -> None:
    async def scenario(h: Harness, agent: Any) -> None:
        await agent.put(b"{not json", key=b"bad-1")
        await agent.put(orjson.dumps({"report": {"report_id": "bad-2"}}), key=b"bad-2")
        await agent.put(envelope(violation("v1")), key=b"v1")
        await h.settle_fold(agent)

    h = run(AGENT, scenario)
    letters = h.deadletters()
    assert [(d["report_id"], d["reason"], d["revision"]) for d in letters] == [
        ("bad-1", "undecodable", 0),
        ("bad-2", "undecodable", 0),
    ]
    assert "offset 0" in letters[0]["detail"]
    # the record after them was still handled
    assert [(key, record["report_id"]) for key, record in values(h.folded())] == [("madaya", "v1")]
