"""Envelopes: encode/decode round trips, server fields, upcasting, topic names."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import schemas.upcasters as upcasters
from schemas import (
    SCHEMA_VERSION,
    Report,
    ReportEnvelope,
    SchemaVersionError,
    content_hash,
    decode_envelope,
    encode_envelope,
    make_envelope,
    parse_report,
    topic_names,
    upcast,
)

NOW = datetime(2016, 3, 1, 12, 0, tzinfo=UTC)
RECEIVED = datetime(2016, 3, 1, 12, 0, 5, tzinfo=UTC)


def report(**change: Any) -> Report:
    body: dict[str, Any] = {
        "report_id": "v-1",
        "kind": "violation",
        "occurred_at": "2016-02-28T10:15:00+02:00",
        "area": "madaya",
        "perpetrator": "gos",
        "target": "civilians",
        "category": "shelling",
        "source": "witness",
        "confidence": "medium",
    }
    body.update(change)
    return parse_report(body, now=NOW)


def envelope(**change: Any) -> ReportEnvelope:
    return make_envelope(report(**change), org="sarc", key_name="sarc-1", received_at=RECEIVED)


def test_make_envelope_fills_server_fields() -> None:
    env = envelope()
    assert (env.org, env.key_name, env.received_at) == ("sarc", "sarc-1", RECEIVED)
    assert env.schema_version == SCHEMA_VERSION == 1
    assert env.content_hash == content_hash(env.report)


def test_received_at_is_normalised_to_utc() -> None:
    local = RECEIVED.astimezone(timezone(timedelta(hours=3)))
    env = make_envelope(report(), org="sarc", key_name="k", received_at=local)
    assert env.received_at == RECEIVED
    assert env.received_at.utcoffset() == timedelta(0)


def test_naive_received_at_is_refused() -> None:
    with pytest.raises(ValidationError):
        make_envelope(report(), org="sarc", key_name="k", received_at=datetime(2016, 3, 1))


def test_encoding_is_compact_json_with_utc_times() -> None:
    data = encode_envelope(envelope())
    decoded = json.loads(data)
    assert decoded["received_at"] == "2016-03-01T12:00:05Z"
    assert decoded["report"]["occurred_at"] == "2016-02-28T08:15:00Z"
    assert decoded["schema_version"] == 1
    assert b" " not in data


def test_decode_skips_only_the_future_check() -> None:
    env = envelope()
    data = json.loads(encode_envelope(env))
    data["report"]["occurred_at"] = "2999-01-01T00:00:00Z"  # far "future" when decoded
    assert decode_envelope(json.dumps(data).encode()).report.occurred_at.year == 2999
    data["report"]["area"] = "atlantis"
    with pytest.raises(ValidationError):
        decode_envelope(json.dumps(data).encode())


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"[]",
        b'{"schema_version": 1}',
        b'{"report": {}, "org": "x", "key_name": "k", "received_at": "2016-01-01T00:00:00Z",'
        b' "schema_version": 1, "content_hash": "00"}',
    ],
)
def test_bad_records_raise_value_error(data: bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - every decode failure is a ValueError
        decode_envelope(data)


def test_extra_envelope_fields_are_refused() -> None:
    data = json.loads(encode_envelope(envelope()))
    data["surprise"] = 1
    with pytest.raises(ValidationError):
        decode_envelope(json.dumps(data))


# -- upcasting ----------------------------------------------------------------------


def test_current_version_passes_through() -> None:
    payload = json.loads(encode_envelope(envelope()))
    assert upcast(payload) == payload


def test_newer_version_is_a_clear_error() -> None:
    payload = json.loads(encode_envelope(envelope()))
    payload["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(SchemaVersionError, match="newer than this code understands"):
        decode_envelope(json.dumps(payload))


@pytest.mark.parametrize("version", [None, "1", True, 1.0])
def test_missing_or_odd_version_is_refused(version: object) -> None:
    payload = json.loads(encode_envelope(envelope()))
    payload["schema_version"] = version
    with pytest.raises(SchemaVersionError):
        upcast(payload)


def test_old_version_without_upcaster_is_refused() -> None:
    payload = json.loads(encode_envelope(envelope()))
    payload["schema_version"] = 0
    with pytest.raises(SchemaVersionError, match="no upcaster from schema_version 0"):
        upcast(payload)


def test_registered_upcaster_lifts_old_payloads(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fake v0 stored the organisation as "organisation"; its upcaster renames it."""

    def v0_to_v1(payload: dict[str, Any]) -> dict[str, Any]:
        lifted = dict(payload)
        lifted["org"] = lifted.pop("organisation")
        return lifted

    monkeypatch.setitem(upcasters.UPCASTERS, 0, v0_to_v1)
    current = json.loads(encode_envelope(envelope()))
    old = {k: v for k, v in current.items() if k != "org"} | {
        "organisation": "sarc",
        "schema_version": 0,
    }
    snapshot = json.dumps(old, sort_keys=True)
    assert upcast(old) == current
    assert json.dumps(old, sort_keys=True) == snapshot  # the input is left untouched
    assert decode_envelope(json.dumps(old)) == envelope()


def test_upcasters_chain_to_the_current_version(monkeypatch: pytest.MonkeyPatch) -> None:
    steps: list[int] = []

    def step(version: int) -> Any:
        def lift(payload: dict[str, Any]) -> dict[str, Any]:
            steps.append(version)
            return payload

        return lift

    monkeypatch.setattr(upcasters, "SCHEMA_VERSION", 3)
    for version in (1, 2):
        monkeypatch.setitem(upcasters.UPCASTERS, version, step(version))
    assert upcast({"schema_version": 1})["schema_version"] == 3
    assert steps == [1, 2]


# -- topic names ----------------------------------------------------------------------


def test_topic_names_default_and_prefixed() -> None:
    plain = topic_names()
    assert (plain.reports, plain.events, plain.metrics) == (
        "truce.reports",
        "truce.events",
        "truce.metrics",
    )
    assert (plain.alerts, plain.deadletter, plain.deliveries) == (
        "truce.alerts",
        "truce.deadletter",
        "truce.alert-deliveries",
    )
    assert (plain.folded, plain.verdicts) == ("truce.folded", "truce.verdicts")
    assert plain.editions == "truce.editions"
    prefixed = topic_names("t123.")
    assert prefixed.reports == "t123.truce.reports"
    assert all(name.startswith("t123.truce.") for name in prefixed.all())
    assert len(set(plain.all())) == len(plain.all()) == 9


# -- property: any valid envelope survives the topic unchanged ---------------------------

offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
moments = st.datetimes(  # local times: from 1990-01-02 every offset is after 1990-01-01 UTC
    min_value=datetime(1990, 1, 2), max_value=datetime(2016, 3, 1), timezones=offsets
)
ids = st.from_regex(r"[A-Za-z0-9._:-]{1,64}", fullmatch=True)
counts = st.integers(0, 100_000)
AREAS = ["madaya", "daraya", "raqqa", "deir_ez_zor", "fouah"]
PARTIES = ["gos", "ru", "fsa", "isil", "nusra", "unknown"]


@st.composite
def report_bodies(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["violation", "delivery", "access_request", "verification",
                                 "designation"]))  # fmt: skip
    moment = draw(moments)
    body: dict[str, Any] = {
        "report_id": draw(ids),
        "revision": draw(st.integers(1, 1_000_000)),
        "kind": kind,
        "occurred_at": draw(st.sampled_from([moment, moment.isoformat()])),
        "retracted": draw(st.booleans()),
    }
    if kind != "verification":
        body["area"] = draw(st.sampled_from(AREAS))
    if kind == "violation":
        body |= {
            "perpetrator": draw(st.sampled_from(PARTIES)),
            "target": draw(st.sampled_from(["civilians", "infrastructure", *PARTIES])),
            "category": draw(st.sampled_from(["airstrike", "shelling", "sniper", "other"])),
            "killed": draw(counts),
            "injured": draw(counts),
            "source": draw(st.sampled_from(["witness", "staff", "media", "remote"])),
            "confidence": draw(st.sampled_from(["low", "medium", "high"])),
        }
        if draw(st.booleans()):
            body["lat"] = draw(st.floats(-90, 90))
            body["lon"] = draw(st.floats(-180, 180))
        if draw(st.booleans()):
            body["description"] = draw(st.text(max_size=200))
    elif kind == "delivery":
        body |= {
            "agency": draw(st.text(min_size=1, max_size=200)),
            "modality": draw(st.sampled_from(["convoy", "airdrop", "other"])),
            "status": draw(st.sampled_from(["completed", "partial", "blocked", "cancelled"])),
            "beneficiaries": draw(counts),
            "trucks": draw(st.none() | counts),
        }
    elif kind == "access_request":
        body |= {
            "status": draw(st.sampled_from(["submitted", "approved", "denied", "withdrawn"])),
            "request_ref": draw(st.none() | st.text(min_size=1, max_size=100)),
            "beneficiaries_planned": draw(st.none() | counts),
        }
    elif kind == "verification":
        body |= {
            "subject": draw(ids),
            "status": draw(st.sampled_from(["verified", "disputed", "rejected", "unverified"])),
        }
    else:
        body["party"] = draw(st.sampled_from(["isil", "nusra"]))
        if draw(st.booleans()):
            body["effective_to"] = moment + draw(
                st.timedeltas(timedelta(seconds=1), timedelta(days=3650))
            )
    return body


@settings(max_examples=300, deadline=None)
@given(body=report_bodies(), received=moments, org=ids, key_name=ids)
def test_envelopes_round_trip(
    body: dict[str, Any], received: datetime, org: str, key_name: str
) -> None:
    env = make_envelope(
        parse_report(body, now=NOW), org=org, key_name=key_name, received_at=received
    )
    data = encode_envelope(env)
    back = decode_envelope(data)
    assert back == env
    assert encode_envelope(back) == data
    assert content_hash(back.report) == env.content_hash
