"""Every field rule of CONTRACT section 2, checked on the report models directly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from schemas import (
    FIELD_KINDS,
    KINDS,
    PRIVILEGED_KINDS,
    AccessRequest,
    Delivery,
    Designation,
    Verification,
    Violation,
    canonical_content,
    content_hash,
    parse_report,
    partition_key,
)

NOW = datetime(2016, 3, 1, 12, 0, tzinfo=UTC)


def violation(**change: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "report_id": "v-1",
        "kind": "violation",
        "occurred_at": "2016-02-28T10:15:00+02:00",
        "area": "madaya",
        "perpetrator": "gos",
        "target": "civilians",
        "category": "shelling",
        "killed": 2,
        "injured": 5,
        "source": "witness",
        "confidence": "medium",
    }
    body.update(change)
    return body


def delivery(**change: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "report_id": "d-1",
        "kind": "delivery",
        "occurred_at": "2016-02-17T08:00:00Z",
        "area": "madaya",
        "agency": "WFP",
        "modality": "convoy",
        "status": "completed",
        "beneficiaries": 40000,
    }
    body.update(change)
    return body


def access_request(**change: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "report_id": "a-1",
        "kind": "access_request",
        "occurred_at": "2016-02-10T08:00:00Z",
        "area": "daraya",
        "status": "submitted",
    }
    body.update(change)
    return body


def verification(**change: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "report_id": "ver-1",
        "kind": "verification",
        "occurred_at": "2016-03-01T00:00:00Z",
        "subject": "v-1",
        "status": "verified",
    }
    body.update(change)
    return body


def designation(**change: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "report_id": "des-1",
        "kind": "designation",
        "occurred_at": "2016-02-27T00:00:00Z",
        "party": "isil",
        "area": "raqqa",
    }
    body.update(change)
    return body


def errors_of(data: object, now: datetime = NOW) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as caught:
        parse_report(data, now=now)
    return [dict(e) for e in caught.value.errors(include_url=False)]


def fields_named(errors: list[dict[str, Any]]) -> set[str]:
    return {str(part) for e in errors for part in e["loc"]}


# -- valid reports of every kind --------------------------------------------------


@pytest.mark.parametrize(
    ("body", "model"),
    [
        (violation(), Violation),
        (delivery(), Delivery),
        (access_request(), AccessRequest),
        (verification(), Verification),
        (designation(), Designation),
    ],
)
def test_each_kind_parses_to_its_model(body: dict[str, Any], model: type) -> None:
    report = parse_report(body, now=NOW)
    assert isinstance(report, model)
    assert report.kind == body["kind"]
    assert report.revision == 1
    assert report.retracted is False


def test_kinds_and_privileged_kinds() -> None:
    assert set(KINDS) == {
        "violation",
        "delivery",
        "access_request",
        "verification",
        "designation",
        "incident",
    }
    assert frozenset({"verification", "designation", "incident"}) == PRIVILEGED_KINDS
    assert frozenset({"violation", "delivery", "access_request"}) == FIELD_KINDS


def test_defaults_are_filled_in() -> None:
    body = violation()
    del body["killed"], body["injured"]
    report = parse_report(body, now=NOW)
    assert isinstance(report, Violation)
    assert (report.killed, report.injured, report.lat, report.lon, report.description) == (
        0,
        0,
        None,
        None,
        None,
    )


def test_occurred_at_is_normalised_to_utc() -> None:
    report = parse_report(violation(occurred_at="2016-02-28T10:15:00+02:00"), now=NOW)
    assert report.occurred_at == datetime(2016, 2, 28, 8, 15, tzinfo=UTC)
    assert report.occurred_at.utcoffset() == timedelta(0)


def test_aware_datetime_objects_are_accepted() -> None:
    moment = datetime(2016, 2, 28, 10, 15, tzinfo=timezone(timedelta(hours=2)))
    report = parse_report(violation(occurred_at=moment), now=NOW)
    assert report.occurred_at == datetime(2016, 2, 28, 8, 15, tzinfo=UTC)


def test_models_are_frozen() -> None:
    report = parse_report(violation(), now=NOW)
    assert isinstance(report, Violation)
    with pytest.raises(ValidationError):
        report.killed = 3


def test_full_violation_with_position_and_description() -> None:
    report = parse_report(
        violation(lat=33.69, lon=36.1, description="mortar fire on the market", target="fsa"),
        now=NOW,
    )
    assert isinstance(report, Violation)
    assert (report.lat, report.lon, report.target) == (33.69, 36.1, "fsa")


# -- every field rule: each bad value is refused naming its field ----------------

BAD: list[tuple[str, dict[str, Any], str]] = [
    ("report_id empty", violation(report_id=""), "report_id"),
    ("report_id too long", violation(report_id="x" * 65), "report_id"),
    ("report_id space", violation(report_id="a b"), "report_id"),
    ("report_id slash", violation(report_id="a/b"), "report_id"),
    ("report_id not a string", violation(report_id=12), "report_id"),
    ("revision zero", violation(revision=0), "revision"),
    ("revision huge", violation(revision=1_000_001), "revision"),
    ("revision string", violation(revision="2"), "revision"),
    ("revision float", violation(revision=2.0), "revision"),
    ("naive timestamp", violation(occurred_at="2016-02-28T10:15:00"), "occurred_at"),
    ("date only", violation(occurred_at="2016-02-28"), "occurred_at"),
    ("not a timestamp", violation(occurred_at="yesterday"), "occurred_at"),
    ("unix seconds", violation(occurred_at=1456650900), "occurred_at"),
    ("impossible date", violation(occurred_at="2016-02-30T10:00:00Z"), "occurred_at"),
    ("naive datetime", violation(occurred_at=datetime(2016, 2, 28, 10, 15)), "occurred_at"),
    ("out of range", violation(occurred_at="0001-01-01T00:00:00+01:00"), "occurred_at"),
    ("unknown area", violation(area="atlantis"), "area"),
    ("area missing", {k: v for k, v in violation().items() if k != "area"}, "area"),
    ("retracted not bool", violation(retracted="maybe"), "retracted"),
    ("retracted as string", violation(retracted="true"), "retracted"),
    ("retracted as int", violation(retracted=1), "retracted"),
    ("unknown perpetrator", violation(perpetrator="martians"), "perpetrator"),
    ("unknown target", violation(target="cattle"), "target"),
    ("bad category", violation(category="napalm"), "category"),
    ("negative killed", violation(killed=-1), "killed"),
    ("absurd killed", violation(killed=100_001), "killed"),
    ("killed as string", violation(killed="3"), "killed"),
    ("killed as bool", violation(killed=True), "killed"),
    ("negative injured", violation(injured=-1), "injured"),
    ("bad source", violation(source="rumour"), "source"),
    ("bad confidence", violation(confidence="certain"), "confidence"),
    ("lat out of range", violation(lat=91, lon=36.0), "lat"),
    ("lon out of range", violation(lat=33.0, lon=-181), "lon"),
    ("lat not finite", violation(lat=float("nan"), lon=36.0), "lat"),
    ("lat as string", violation(lat="33.6", lon=36.0), "lat"),
    ("description too long", violation(description="x" * 4001), "description"),
    ("unknown field", violation(severity="high"), "severity"),
    ("org in body", violation(org="wfp"), "org"),
    ("delivery agency empty", delivery(agency=""), "agency"),
    ("delivery agency too long", delivery(agency="x" * 201), "agency"),
    ("delivery bad modality", delivery(modality="teleport"), "modality"),
    ("delivery bad status", delivery(status="lost"), "status"),
    ("delivery negative beneficiaries", delivery(beneficiaries=-5), "beneficiaries"),
    ("delivery beneficiaries missing", delivery(beneficiaries=None), "beneficiaries"),
    ("delivery negative trucks", delivery(trucks=-1), "trucks"),
    ("delivery with perpetrator", delivery(perpetrator="gos"), "perpetrator"),
    ("access bad status", access_request(status="pending"), "status"),
    ("access empty request_ref", access_request(request_ref=""), "request_ref"),
    ("access long request_ref", access_request(request_ref="r" * 101), "request_ref"),
    ("access negative planned", access_request(beneficiaries_planned=-1), "beneficiaries_planned"),
    ("access unknown area", access_request(area="xyz"), "area"),
    ("verification with area", verification(area="madaya"), "area"),
    ("verification bad status", verification(status="maybe"), "status"),
    ("verification bad subject", verification(subject="no spaces"), "subject"),
    ("verification subject too long", verification(subject="s" * 65), "subject"),
    ("designation non-designated party", designation(party="gos"), "party"),
    ("designation unknown party", designation(party="martians"), "party"),
    ("designation unknown area", designation(area="atlantis"), "area"),
    ("designation naive effective_to",
     designation(effective_to="2016-03-27T00:00:00"), "effective_to"),
    ("designation ends before start",
     designation(effective_to="2016-02-26T00:00:00Z"), "effective_to"),
    ("designation ends at start",
     designation(effective_to="2016-02-27T02:00:00+02:00"), "effective_to"),
    ("designation effective_from given",
     designation(effective_from="2016-02-27T00:00:00Z"), "effective_from"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "body", "field"), BAD, ids=[c[0] for c in BAD])
def test_each_bad_field_is_refused_naming_it(case: str, body: dict[str, Any], field: str) -> None:
    assert field in fields_named(errors_of(body)), case


def test_missing_required_fields_are_named() -> None:
    for name in ("report_id", "occurred_at", "perpetrator", "target", "category", "source"):
        body = violation()
        del body[name]
        assert name in fields_named(errors_of(body))


@pytest.mark.parametrize("kind", ["rumour", None, 3])
def test_unknown_or_missing_kind_is_refused_at_kind(kind: object) -> None:
    body = violation(kind=kind) if kind is not None else violation()
    if kind is None:
        del body["kind"]
    errors = errors_of(body)
    assert [tuple(e["loc"]) for e in errors] == [("kind",)]


def test_non_object_is_refused() -> None:
    assert errors_of([violation()])
    assert errors_of("violation")


def test_unknown_codes_are_named_in_the_message() -> None:
    (error,) = errors_of(violation(area="xyz"))
    assert error["msg"] == "unknown area code 'xyz'; see GET /v1/reference/areas"
    (error,) = errors_of(violation(perpetrator="martians"))
    assert "'martians'" in error["msg"]
    assert "/v1/reference/parties" in error["msg"]
    (error,) = errors_of(designation(party="gos"))
    assert "'gos'" in error["msg"]
    assert "designated" in error["msg"]


def test_target_may_be_a_literal_or_any_party() -> None:
    for target in ("civilians", "infrastructure", "gos", "isil", "unknown"):
        assert parse_report(violation(target=target), now=NOW)


def test_lat_and_lon_go_together() -> None:
    assert errors_of(violation(lat=33.69))
    assert errors_of(violation(lon=36.1))
    assert parse_report(violation(lat=33, lon=36), now=NOW)


# -- future timestamps ------------------------------------------------------------


def test_up_to_one_hour_ahead_is_tolerated() -> None:
    edge = (NOW + timedelta(hours=1)).isoformat()
    assert parse_report(violation(occurred_at=edge), now=NOW)


def test_more_than_one_hour_ahead_is_refused() -> None:
    late = (NOW + timedelta(hours=1, seconds=1)).isoformat()
    (error,) = errors_of(violation(occurred_at=late))
    assert error["loc"] == ("violation", "occurred_at")
    assert "future" in error["msg"]


def test_future_check_uses_the_offset_not_the_wall_clock_text() -> None:
    # 13:30 at +02:00 is 11:30 UTC, before NOW (12:00 UTC) although "13:30" > "12:00"
    assert parse_report(violation(occurred_at="2016-03-01T13:30:00+02:00"), now=NOW)
    # 12:30 at -02:00 is 14:30 UTC: more than an hour ahead
    assert errors_of(violation(occurred_at="2016-03-01T12:30:00-02:00"))


def test_without_now_the_clock_is_used() -> None:
    future = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    with pytest.raises(ValidationError):
        parse_report(violation(occurred_at=future))
    assert parse_report(violation(occurred_at=datetime.now(UTC).isoformat()))


def test_effective_to_may_lie_in_the_future() -> None:
    report = parse_report(designation(effective_to="2030-01-01T00:00:00+03:00"), now=NOW)
    assert isinstance(report, Designation)
    assert report.effective_to == datetime(2029, 12, 31, 21, 0, tzinfo=UTC)
    assert report.effective_from == report.occurred_at


# -- partition key ------------------------------------------------------------------


def test_every_report_is_keyed_by_its_own_id_so_its_revisions_share_a_partition() -> None:
    assert partition_key(parse_report(violation(), now=NOW)) == "v-1"
    assert partition_key(parse_report(delivery(), now=NOW)) == "d-1"
    # a verification whose subject is corrected must stay in its own partition (CONTRACT 6)
    assert partition_key(parse_report(verification(subject="v-9"), now=NOW)) == "ver-1"
    assert partition_key(parse_report(designation(), now=NOW)) == "des-1"


# -- content hash: equal after normalisation, different otherwise -----------------


def test_hash_ignores_offset_representation_and_omitted_defaults() -> None:
    sent = violation(occurred_at="2016-02-28T10:15:00+02:00")
    del sent["killed"]
    del sent["injured"]
    explicit = violation(
        occurred_at="2016-02-28T08:15:00Z",
        killed=0,
        injured=0,
        revision=1,
        retracted=False,
        lat=None,
        lon=None,
        description=None,
    )
    lower_z = violation(occurred_at="2016-02-28t08:15:00.000z", killed=0, injured=0)
    first, second, third = (parse_report(b, now=NOW) for b in (sent, explicit, lower_z))
    assert canonical_content(first) == canonical_content(second) == canonical_content(third)
    assert content_hash(first) == content_hash(second) == content_hash(third)
    assert len(content_hash(first)) == 64


def test_hash_changes_with_content() -> None:
    base = content_hash(parse_report(violation(), now=NOW))
    for change in ({"killed": 3}, {"revision": 2}, {"retracted": True}, {"area": "daraya"}):
        assert content_hash(parse_report(violation(**change), now=NOW)) != base


def test_canonical_content_is_sorted_json_in_utc() -> None:
    text = canonical_content(parse_report(violation(), now=NOW)).decode()
    assert text.startswith('{"area":"madaya","category":"shelling"')
    assert '"occurred_at":"2016-02-28T08:15:00Z"' in text
    assert " " not in text
