"""CONTRACT section 9's membership rule through the two stages (in-memory topology, 4
partitions, 2 workers, shuffled arrival): the latest incident by occurred_at wins, ties go
to the greatest report_id, a revision that drops a member frees it for the other incident,
and an incident counts once with the organisations of its current members as sources."""

from __future__ import annotations

import random
from typing import Any

import pytest

from tests.support.pipeline import Sinks, run
from tests.support.raw_log import envelope

DESIGNATED = {"gos": False, "isil": True}
AT = "2016-03-01T10:00:00Z"


def violation(rid: str, killed: int = 2) -> dict[str, Any]:
    return {"report_id": rid, "revision": 1, "kind": "violation", "occurred_at": AT,
            "retracted": False, "area": "madaya", "perpetrator": "gos", "target": "civilians",
            "category": "shelling", "killed": killed, "injured": 0, "source": "witness",
            "confidence": "high"}  # fmt: skip


def incident(rid: str, members: list[str], revision: int = 1, **fields: Any) -> dict[str, Any]:
    return {"report_id": rid, "revision": revision, "kind": "incident", "occurred_at": AT,
            "retracted": False, "members": members, "area": "madaya", "perpetrator": "gos",
            "target": "civilians", "category": "shelling", "killed": 2, "injured": 0,
            **fields}  # fmt: skip


def streamed(log: list[dict[str, Any]], seed: int) -> Sinks:
    arrival = log[:]
    random.Random(seed).shuffle(arrival)
    return run(arrival, DESIGNATED, partitions=4, workers=2, rng=random.Random(seed))


def row(sinks: Sinks) -> dict[str, Any]:
    return sinks.metrics["compliance|2016-W09|madaya|gos"]


BASE = [envelope(violation("v1"), "sarc"), envelope(violation("v2"), "wfp"),
        envelope(violation("v3"), "sarc")]  # fmt: skip


@pytest.mark.parametrize("seed", range(6))
def test_a_tie_on_occurred_at_goes_to_the_greatest_report_id(seed: int) -> None:
    sinks = streamed(
        [*BASE, envelope(incident("inc-a", ["v1", "v2"]), "taskforce"),
         envelope(incident("inc-b", ["v2", "v3"]), "taskforce")], seed,
    )  # fmt: skip
    events = sinks.events
    assert (events["v1"]["incident"], events["v2"]["incident"]) == ("inc-a", "inc-b")
    assert (events["inc-a"]["sources"], events["inc-b"]["sources"]) == (1, 2)  # sarc | wfp, sarc
    figures = row(sinks)
    assert (figures["violations"], figures["killed"]) == (3, 6)
    assert (figures["incidents"], figures["incidents_corroborated"]) == (2, 1)
    assert figures["incident_killed"] == 4


@pytest.mark.parametrize("seed", range(6))
def test_a_revision_moves_members_and_a_later_incident_wins(seed: int) -> None:
    later = "2016-03-01T12:00:00Z"
    sinks = streamed(
        [*BASE, envelope(incident("inc-a", ["v1", "v2"], occurred_at=later), "taskforce"),
         envelope(incident("inc-b", ["v2", "v3"]), "taskforce"),
         # inc-a drops v2: it falls back to inc-b, which now has both organisations
         envelope(incident("inc-a", ["v1", "v9"], revision=2, occurred_at=later), "taskforce")],
        seed,
    )  # fmt: skip
    events = sinks.events
    assert (events["v1"]["incident"], events["v2"]["incident"]) == ("inc-a", "inc-b")
    assert (events["inc-a"]["sources"], events["inc-b"]["sources"]) == (1, 2)
    assert row(sinks)["incidents"] == 2


@pytest.mark.parametrize("seed", range(6))
def test_retracted_members_and_incidents_leave_lone_events(seed: int) -> None:
    retracted_v2 = {**violation("v2"), "revision": 2, "retracted": True}
    sinks = streamed(
        [*BASE, envelope(incident("inc-a", ["v1", "v2"]), "taskforce"),
         envelope(retracted_v2, "wfp")], seed,
    )  # fmt: skip
    # inc-a still counts once, now backed by one organisation; v3 is a lone event
    figures = row(sinks)
    assert (figures["violations"], figures["incidents"], figures["incidents_corroborated"]) == (
        2, 2, 0,
    )  # fmt: skip
    assert sinks.events["inc-a"]["sources"] == 1
    retracted = [*BASE, envelope(incident("inc-a", ["v1", "v2"]), "taskforce"),
                 envelope(incident("inc-a", ["v1", "v2"], revision=2, retracted=True),
                          "taskforce")]  # fmt: skip
    figures = row(streamed(retracted, seed))
    assert (figures["incidents"], figures["incident_killed"]) == (3, 6)


def test_an_incident_of_a_designated_party_is_an_exempt_event() -> None:
    sinks = streamed([*BASE, envelope(incident("inc-a", ["v1", "v2"], perpetrator="isil"),
                                      "taskforce")], 0)  # fmt: skip
    assert sinks.metrics["compliance|2016-W09|madaya|isil"]["incidents_exempt"] == 1
    gos = row(sinks)
    assert (gos["violations"], gos["incidents"]) == (3, 1)  # v3 alone; v1, v2 are linked
