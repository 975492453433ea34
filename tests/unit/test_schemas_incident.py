"""The incident kind of CONTRACT section 9: 2-50 distinct members, the task force's own
area, parties, category, casualties and time, and clear errors for the rest."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from schemas import Incident, parse_report

NOW = datetime(2016, 3, 1, 12, 0, tzinfo=UTC)


def incident(**change: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "report_id": "inc-1",
        "kind": "incident",
        "occurred_at": "2016-02-28T10:15:00+02:00",
        "members": ["sarc-1", "wfp-7"],
        "area": "madaya",
        "perpetrator": "gos",
        "target": "civilians",
        "category": "shelling",
        "killed": 2,
        "injured": 5,
    }
    body.update(change)
    return body


def errors(body: dict[str, Any]) -> list[tuple[tuple[Any, ...], str, str]]:
    with pytest.raises(ValidationError) as caught:
        parse_report(body, now=NOW)
    return [(tuple(e["loc"]), e["type"], e["msg"]) for e in caught.value.errors()]


def test_a_whole_incident_parses_with_its_own_fields() -> None:
    report = parse_report(incident(), now=NOW)
    assert isinstance(report, Incident)
    assert report.members == ["sarc-1", "wfp-7"]
    assert (report.area, report.perpetrator, report.killed, report.injured) == (
        "madaya", "gos", 2, 5,
    )  # fmt: skip
    assert report.occurred_at == datetime(2016, 2, 28, 8, 15, tzinfo=UTC)
    assert parse_report(incident(killed=0, injured=0, revision=3, retracted=True), now=NOW)


@pytest.mark.parametrize("count", [0, 1, 51])
def test_fewer_than_two_or_more_than_fifty_members_are_refused(count: int) -> None:
    found = errors(incident(members=[f"v-{i}" for i in range(count)]))
    assert [(loc, kind) for loc, kind, _ in found] == [
        (("incident", "members"), "too_short" if count < 2 else "too_long")
    ]


def test_fifty_members_are_accepted() -> None:
    assert len(parse_report(incident(members=[f"v-{i}" for i in range(50)]), now=NOW).members) == 50


def test_a_member_listed_twice_is_named() -> None:
    [(loc, kind, msg)] = errors(incident(members=["a", "b", "a"]))
    assert (loc, kind) == (("incident", "members"), "duplicate_members")
    assert "a" in msg


def test_an_incident_cannot_list_itself() -> None:
    [(loc, kind, _)] = errors(incident(members=["inc-1", "b"]))
    assert (loc, kind) == (("incident", "members"), "self_member")


def test_member_ids_follow_the_report_id_rule() -> None:
    [(loc, kind, _)] = errors(incident(members=["ok", "not ok!"]))
    assert (loc, kind) == (("incident", "members", 1), "string_pattern_mismatch")


@pytest.mark.parametrize(
    ("field", "value", "kind"),
    [
        ("area", "atlantis", "unknown_area"),
        ("perpetrator", "nobody", "unknown_party"),
        ("target", "moon", "unknown_target"),
        ("category", "hail", "literal_error"),
        ("killed", -1, "greater_than_equal"),
        ("source", "witness", "extra_forbidden"),
    ],
)
def test_field_errors_name_the_field(field: str, value: Any, kind: str) -> None:
    [(loc, found, _)] = errors(incident(**{field: value}))
    assert (loc, found) == (("incident", field), kind)


def test_every_reconciled_field_is_required() -> None:
    body = incident()
    for name in ("members", "area", "perpetrator", "target", "category"):
        del body[name]
    assert {loc for loc, kind, _ in errors(body) if kind == "missing"} == {
        ("incident", name) for name in ("members", "area", "perpetrator", "target", "category")
    }
