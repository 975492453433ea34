"""The ``classify`` agent: folded records in, weekly metric snapshots and canonical events
out (CONTRACT section 3 counting, section 2 exemption). Snapshots are versioned by the
offset of the input record, canonical records by ``seq << 40 | offset``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from streams.logic.canonical import SEQ_SHIFT
from streams.logic.packing import unpack
from tests.agents.harness import (
    DESIGNATED,
    WEEK,
    Harness,
    Scenario,
    delivery,
    designation,
    envelope,
    folded,
    verification,
    violation,
)
from tests.support.reference import lone_events, weekly_metrics

Run = Callable[[str, Scenario], Harness]
AGENT = "classify"
ZERO = {
    "violations": 0,
    "violations_verified": 0,
    "violations_exempt": 0,
    "killed": 0,
    "injured": 0,
    "incidents": 0,
    "incidents_exempt": 0,
    "incidents_corroborated": 0,
    "incident_killed": 0,
    "incident_injured": 0,
}

lone = lone_events


def compliance_key(area: str, party: str = "gos") -> str:
    return f"compliance|{WEEK}|{area}|{party}"


def counts(snapshot: dict[str, Any]) -> dict[str, int]:
    return {k: v for k, v in snapshot.items() if k not in ("type", "week", "area", "party")}


async def put_and_wait(h: Harness, agent: Any, record: bytes, metric_key: str) -> int:
    """Put one folded record and wait for the snapshot it must produce (version = offset)."""
    area = unpack(orjson.loads(record))[0]["area"]
    event = await agent.put(record, key=area.encode())
    offset = int(event.message.offset)
    await h.wait_for(
        lambda: any(m["version"] == offset for m in h.metrics(metric_key)),
        f"{metric_key} at version {offset}",
    )
    return offset


# Stage one's output for this log, in log order (offsets 0..4 of the folded partition):
V1 = violation("v1", killed=2, injured=1)
V2 = violation("v2", killed=1)
D1 = delivery("d1", beneficiaries=100)
V1_MOVED = violation("v1", revision=2, area="daraya", killed=2, injured=1)
STEPS = [
    (folded(V1), compliance_key("madaya")),
    (folded(V2, verification="verified"), compliance_key("madaya")),
    (folded(D1), f"access|{WEEK}|madaya"),
    (folded(V1_MOVED, seq=2, removed_from="madaya"), compliance_key("madaya")),
    (folded(V1_MOVED, seq=2), compliance_key("daraya")),
]
LOG = [
    envelope(V1),
    envelope(verification("ver2", "v2", "verified"), "taskforce"),
    envelope(V2),
    envelope(D1),
    envelope(V1_MOVED),
]


def test_snapshots_count_each_record_and_carry_its_offset_as_version(run: Run) -> None:
    seen: list[tuple[int, dict[str, int]]] = []

    async def scenario(h: Harness, agent: Any) -> None:
        for record, key in STEPS:
            offset = await put_and_wait(h, agent, record, key)
            seen.append((offset, counts(h.metrics(key)[-1])))

    h = run(AGENT, scenario)
    assert seen == [
        (0, lone({**ZERO, "violations": 1, "killed": 2, "injured": 1, "version": 0})),
        (
            1,
            lone(
                {
                    **ZERO,
                    "violations": 2,
                    "violations_verified": 1,
                    "killed": 3,
                    "injured": 1,
                    "version": 1,
                }
            ),
        ),
        (
            2,
            {
                "deliveries_completed": 1,
                "deliveries_partial": 0,
                "deliveries_blocked": 0,
                "deliveries_cancelled": 0,
                "beneficiaries": 100,
                "requests_submitted": 0,
                "requests_approved": 0,
                "requests_denied": 0,
                "requests_withdrawn": 0,
                "version": 2,
            },
        ),
        # v1 moved away: madaya keeps v2 only
        (3, lone({**ZERO, "violations": 1, "violations_verified": 1, "killed": 1, "version": 3})),
        (4, lone({**ZERO, "violations": 1, "killed": 2, "injured": 1, "version": 4})),
    ]
    for key in {key for _, key in STEPS}:
        versions = [m["version"] for m in h.metrics(key)]
        assert versions == sorted(set(versions)), f"{key}: versions {versions} not increasing"
    # the canonical record follows the report, versioned by its seq and the offset
    assert [(e["area"], e["version"]) for e in h.events("v1")] == [
        ("madaya", (1 << SEQ_SHIFT) | 0),
        ("daraya", (2 << SEQ_SHIFT) | 4),
    ]
    assert [e["verification"] for e in h.events("v2")] == ["verified"]


def test_a_burst_of_records_ends_in_the_reference_counts(run: Run) -> None:
    async def scenario(h: Harness, agent: Any) -> None:
        for record, _ in STEPS[:-1]:  # no waiting: records share batches
            await agent.put(record, key=orjson.loads(record)["area"].encode())
        last, key = STEPS[-1]
        await put_and_wait(h, agent, last, key)

    h = run(AGENT, scenario)
    latest = h.latest_metrics()
    for key in latest:
        versions = [m["version"] for m in h.metrics(key)]
        assert versions == sorted(set(versions)), f"{key}: versions {versions} not increasing"
    assert latest[compliance_key("madaya")]["version"] == 3
    assert latest[compliance_key("daraya")]["version"] == 4
    assert latest[f"access|{WEEK}|madaya"]["version"] == 2
    # the last snapshot of every row agrees with the independent reference fold of the log
    compliance, access = weekly_metrics([orjson.loads(e) for e in LOG], DESIGNATED)
    expected = {("compliance", *k): v for k, v in compliance.items()}
    expected |= {("access", *k): v for k, v in access.items()}
    streamed = {
        (m["type"], m["week"], m["area"], *([m["party"]] if "party" in m else [])): counts(m)
        for m in latest.values()
    }
    for row in streamed.values():
        del row["version"]
    assert {k: v for k, v in streamed.items() if any(v.values())} == expected


def test_late_designation_reclassifies_an_earlier_violation(run: Run) -> None:
    violation_record = folded(violation("v1", area="raqqa", killed=4))
    designation_record = folded(designation("g1", "raqqa", "isil"), org="taskforce")
    retraction_record = folded(
        designation("g1", "raqqa", "isil", revision=2, retracted=True), seq=2, org="taskforce"
    )
    key = compliance_key("raqqa")

    async def scenario(h: Harness, agent: Any) -> None:
        await put_and_wait(h, agent, violation_record, key)
        await put_and_wait(h, agent, designation_record, key)
        await put_and_wait(h, agent, retraction_record, key)

    h = run(AGENT, scenario)
    assert [counts(m) for m in h.metrics(key)] == [
        lone({**ZERO, "violations": 1, "killed": 4, "version": 0}),
        lone({**ZERO, "violations_exempt": 1, "version": 1}),  # designated from 02-20: exempt
        lone({**ZERO, "violations": 1, "killed": 4, "version": 2}),  # designation withdrawn
    ]
    events = h.events("v1")
    assert [(e["exempt"], e["exempt_reason"], e["version"]) for e in events] == [
        (False, "", (1 << SEQ_SHIFT) | 0),
        (True, "designation:g1", (1 << SEQ_SHIFT) | 1),
        (False, "", (1 << SEQ_SHIFT) | 2),
    ]
    designation_event = h.events("g1")[0]  # the designation's own canonical record
    assert (designation_event["kind"], designation_event["party"]) == ("designation", "isil")


def test_a_pack_of_placements_counts_like_the_records_one_by_one(run: Run) -> None:
    """Stage one packs an area's placements of one batch into one record; classifying the
    pack must end where classifying its placements one by one ends."""
    madaya = [record for record, _ in STEPS[:4]]  # every placement keyed madaya, in order
    pack_record = b'{"placements":[' + b",".join(madaya) + b"]}"

    async def scenario(h: Harness, agent: Any) -> None:
        await put_and_wait(h, agent, pack_record, compliance_key("madaya"))

    h = run(AGENT, scenario)
    latest = h.latest_metrics()
    assert counts(latest[compliance_key("madaya")]) == lone({
        **ZERO, "violations": 1, "violations_verified": 1, "killed": 1, "version": 0,
    })  # fmt: skip
    assert counts(latest[f"access|{WEEK}|madaya"])["deliveries_completed"] == 1
    # one snapshot per key for the whole pack, not one per placement
    assert len(h.metrics(compliance_key("madaya"))) == 1
    assert [e["verification"] for e in h.events("v2")] == ["verified"]
