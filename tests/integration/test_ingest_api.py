"""The ingest API as partners see it, against the running service and the real broker
(CONTRACT sections 1, 2 and 4)."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from tests.support.ingest import Ingest, violation

pytestmark = pytest.mark.integration


def ids_on_topic(ingest: Ingest) -> list[tuple[str, int]]:
    return [(e.report.report_id, e.report.revision) for e in ingest.on_topic()]


# -- identity and roles (CONTRACT 1) -----------------------------------------


@pytest.mark.parametrize(
    ("key", "status"),
    [(None, 401), ("truce_notakey0000000000000000000000", 401), ("revoked", 401), ("monitor", 403)],
)
def test_who_may_submit(ingest: Ingest, key: str | None, status: int) -> None:
    response = ingest.post("/v1/reports", key, json=violation())
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == status


def test_partner_may_not_submit_privileged_kinds(ingest: Ingest) -> None:
    verification = {
        "report_id": "ver-1",
        "kind": "verification",
        "occurred_at": "2016-03-01T00:00:00Z",
        "subject": "whatever",
        "status": "verified",
    }
    assert ingest.post("/v1/reports", "sarc", json=verification).status_code == 403
    assert ingest.post("/v1/reports", "taskforce", json=verification).status_code == 202
    designation = {
        "report_id": f"des-{uuid.uuid4().hex[:6]}",
        "kind": "designation",
        "occurred_at": "2016-02-27T00:00:00Z",
        "party": "isil",
        "area": "raqqa",
    }
    assert ingest.post("/v1/reports", "wfp", json=designation).status_code == 403
    assert ingest.post("/v1/reports", "admin", json=designation).status_code == 202


@pytest.mark.parametrize("kind", ["violation", "delivery", "access_request"])
def test_taskforce_may_not_file_field_reports(ingest: Ingest, kind: str) -> None:
    """CONTRACT 1: the task force files verifications, designations and incidents, never
    what partners report from the ground (it would be counted as a partner's report)."""
    bodies: dict[str, dict[str, Any]] = {
        "violation": violation(),
        "delivery": {"report_id": f"d-{uuid.uuid4().hex[:8]}", "kind": "delivery",
                     "occurred_at": "2016-03-01T00:00:00Z", "area": "madaya", "agency": "WFP",
                     "modality": "convoy", "status": "completed", "beneficiaries": 10},
        "access_request": {"report_id": f"a-{uuid.uuid4().hex[:8]}", "kind": "access_request",
                           "occurred_at": "2016-03-01T00:00:00Z", "area": "madaya",
                           "status": "submitted"},
    }  # fmt: skip
    body = bodies[kind]
    before = ids_on_topic(ingest)
    response = ingest.post("/v1/reports", "taskforce", json=body)
    assert response.status_code == 403, response.text
    problem = response.json()
    assert problem["errors"][0]["index"] == 0
    assert kind in problem["errors"][0]["msg"]
    assert (body["report_id"], 1) not in ids_on_topic(ingest)
    assert ids_on_topic(ingest)[: len(before)] == before
    # in a batch, the whole batch is refused and names the offender by index
    batch = {"reports": [violation(), body]}
    response = ingest.post("/v1/reports/batch", "taskforce", json=batch)
    assert response.status_code == 403
    assert [e["index"] for e in response.json()["errors"]] == [0, 1]
    # the same report from a partner or an admin is accepted
    assert ingest.post("/v1/reports", "sarc", json=body).status_code == 202


def test_reference_data_for_every_role(ingest: Ingest) -> None:
    for key in ("sarc", "monitor", "taskforce", "admin"):
        areas = ingest.get("/v1/reference/areas", key)
        assert areas.status_code == 200
        codes = {a["code"] for a in areas.json()}
        assert {"madaya", "fouah", "kafrayah"} <= codes
        assert set(areas.json()[0]) == {
            "code",
            "name",
            "name_ar",
            "governorate",
            "besieged",
            "hard_to_reach",
            "people_in_need",
            "lat",
            "lon",
        }
        parties = {p["code"]: p for p in ingest.get("/v1/reference/parties", key).json()}
        assert parties["isil"]["designated"] is True
        assert parties["nusra"]["designated"] is True
        assert parties["gos"]["designated"] is False
    assert ingest.get("/v1/reference/areas", None).status_code == 401


def test_health_ready_metrics_need_no_key(ingest: Ingest) -> None:
    assert httpx.get(ingest.url + "/healthz").status_code == 200
    ready = httpx.get(ingest.url + "/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"kafka": True, "ledger": True, "producer": True}
    ingest.post("/v1/reports", "sarc", json=violation())
    text = httpx.get(ingest.url + "/metrics").text
    assert 'truce_ingest_reports_total{status="accepted"}' in text
    assert "truce_ingest_publish_seconds_bucket" in text


# -- validation (CONTRACT 2) ---------------------------------------------------

BAD_FIELDS: list[tuple[str, dict[str, Any], str]] = [
    ("report_id too long", {"report_id": "x" * 65}, "report_id"),
    ("report_id bad char", {"report_id": "a b/c"}, "report_id"),
    ("report_id empty", {"report_id": ""}, "report_id"),
    ("revision zero", {"revision": 0}, "revision"),
    ("unknown kind", {"kind": "rumour"}, "kind"),
    ("naive timestamp", {"occurred_at": "2016-02-28T10:15:00"}, "occurred_at"),
    ("not a timestamp", {"occurred_at": "yesterday"}, "occurred_at"),
    ("future timestamp", {"occurred_at": "FUTURE"}, "occurred_at"),
    ("year 1", {"occurred_at": "0001-01-01T00:00:00Z"}, "occurred_at"),
    ("year 1 with an offset", {"occurred_at": "0001-01-01T00:30:00+01:00"}, "occurred_at"),
    ("year 999", {"occurred_at": "0999-12-31T23:59:59Z"}, "occurred_at"),
    ("before 1990", {"occurred_at": "1989-12-31T23:59:59.999Z"}, "occurred_at"),
    ("unknown area", {"area": "atlantis"}, "area"),
    ("unknown perpetrator", {"perpetrator": "martians"}, "perpetrator"),
    ("unknown target", {"target": "cattle"}, "target"),
    ("bad category", {"category": "napalm"}, "category"),
    ("negative killed", {"killed": -1}, "killed"),
    ("bad source", {"source": "rumour"}, "source"),
    ("bad confidence", {"confidence": "certain"}, "confidence"),
    ("lat out of range", {"lat": 91}, "lat"),
    ("lon out of range", {"lon": -181}, "lon"),
    ("description too long", {"description": "x" * 4001}, "description"),
    ("unknown field", {"severity": "high"}, "severity"),
    ("retracted not bool", {"retracted": "maybe"}, "retracted"),
]


@pytest.mark.parametrize(("case", "change", "field"), BAD_FIELDS, ids=[c[0] for c in BAD_FIELDS])
def test_each_bad_field_is_422_naming_it(
    ingest: Ingest, case: str, change: dict[str, Any], field: str
) -> None:
    if change.get("occurred_at") == "FUTURE":
        change = {"occurred_at": (datetime.now(UTC) + timedelta(hours=2)).isoformat()}
    body = violation(**change)
    response = ingest.post("/v1/reports", "sarc", json=body)
    assert response.status_code == 422, case
    problem = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert problem["detail"]
    assert all(e["index"] == 0 for e in problem["errors"])
    assert any(field in map(str, e["loc"]) for e in problem["errors"]), problem["errors"]


def test_the_earliest_date_is_1990_01_01(ingest: Ingest) -> None:
    """CONTRACT 6: the lower bound itself is a valid ``occurred_at``."""
    body = violation(occurred_at="1990-01-01T00:00:00Z")
    assert ingest.post("/v1/reports", "sarc", json=body).status_code == 202


def test_missing_required_field(ingest: Ingest) -> None:
    body = violation()
    del body["perpetrator"]
    problem = ingest.post("/v1/reports", "sarc", json=body).json()
    assert problem["status"] == 422
    assert any("perpetrator" in map(str, e["loc"]) for e in problem["errors"])


def test_kind_specific_rules(ingest: Ingest) -> None:
    delivery = {
        "report_id": "d-bad",
        "kind": "delivery",
        "occurred_at": "2016-02-17T08:00:00Z",
        "area": "madaya",
        "agency": "WFP",
        "modality": "teleport",
        "status": "completed",
        "beneficiaries": 100,
    }
    assert ingest.post("/v1/reports", "wfp", json=delivery).status_code == 422
    access = {
        "report_id": "a-bad",
        "kind": "access_request",
        "occurred_at": "2016-02-17T08:00:00Z",
        "area": "madaya",
        "status": "pending",
    }
    assert ingest.post("/v1/reports", "wfp", json=access).status_code == 422
    designation = {
        "report_id": "des-bad",
        "kind": "designation",
        "occurred_at": "2016-02-27T00:00:00Z",
        "party": "gos",
        "area": "raqqa",
    }
    problem = ingest.post("/v1/reports", "taskforce", json=designation).json()
    assert problem["status"] == 422
    assert any("party" in map(str, e["loc"]) for e in problem["errors"])
    verification_with_area = {
        "report_id": "ver-area",
        "kind": "verification",
        "occurred_at": "2016-03-01T00:00:00Z",
        "subject": "x",
        "status": "verified",
        "area": "madaya",
    }
    assert ingest.post("/v1/reports", "taskforce", json=verification_with_area).status_code == 422


def test_malformed_json_is_400(ingest: Ingest) -> None:
    response = ingest.post(
        "/v1/reports",
        "sarc",
        content=b'{"report_id": ',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")


def test_non_object_body_is_422(ingest: Ingest) -> None:
    assert ingest.post("/v1/reports", "sarc", json=[violation()]).status_code == 422


def test_oversize_body_is_413(ingest: Ingest) -> None:
    limit = ingest.settings.max_body_bytes
    response = ingest.post(
        "/v1/reports/batch",
        "sarc",
        content=b" " * (limit + 1),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413


def test_batch_size_bounds(ingest: Ingest) -> None:
    too_many = {"reports": [violation() for _ in range(1001)]}
    response = ingest.post("/v1/reports/batch", "sarc", json=too_many)
    assert response.status_code == 422
    assert "1001" in response.json()["detail"]
    assert ingest.post("/v1/reports/batch", "sarc", json={"reports": []}).status_code == 422


def test_batch_with_one_bad_report_is_rejected_whole(ingest: Ingest) -> None:
    good = [violation() for _ in range(4)]
    bad = violation(area="atlantis")
    also_bad = violation(killed=-3)
    reports = [good[0], bad, good[1], also_bad, *good[2:]]
    response = ingest.post("/v1/reports/batch", "sarc", json={"reports": reports})
    assert response.status_code == 422
    assert {e["index"] for e in response.json()["errors"]} == {1, 3}
    on_topic = {rid for rid, _ in ids_on_topic(ingest)}
    assert not on_topic & {r["report_id"] for r in reports}


def test_batch_precedence_422_then_403_then_409(ingest: Ingest) -> None:
    theirs = violation()
    assert ingest.post("/v1/reports", "wfp", json=theirs).status_code == 202
    mine = violation()
    assert ingest.post("/v1/reports", "sarc", json=mine).status_code == 202
    conflict = {**mine, "killed": 99}
    foreign = {**theirs, "revision": 2}
    invalid = violation(area="atlantis")
    batch = [conflict, foreign, invalid]
    assert ingest.post("/v1/reports/batch", "sarc", json={"reports": batch}).status_code == 422
    response = ingest.post("/v1/reports/batch", "sarc", json={"reports": batch[:2]})
    assert response.status_code == 403
    # CONTRACT 2: the body lists every offending report, the conflict too
    assert [(e["index"], e["status"]) for e in response.json()["errors"]] == [(0, 409), (1, 403)]
    response = ingest.post("/v1/reports/batch", "sarc", json={"reports": [conflict]})
    assert response.status_code == 409
    assert response.json()["errors"][0]["index"] == 0


def test_every_refusal_is_logged_with_the_report_ids_it_concerns(ingest: Ingest) -> None:
    """Operability (issue 15): a partner's help desk finds a refused report by its id."""
    theirs = violation()
    assert ingest.post("/v1/reports", "wfp", json=theirs).status_code == 202
    mine = violation()
    assert ingest.post("/v1/reports", "sarc", json=mine).status_code == 202
    refused = {
        409: ingest.post("/v1/reports", "sarc", json={**mine, "killed": 99}),
        403: ingest.post("/v1/reports", "sarc", json={**theirs, "revision": 2}),
        422: ingest.post("/v1/reports/batch", "sarc",
                         json={"reports": [violation(area="atlantis"), mine]}),
    }  # fmt: skip
    assert {status: r.status_code for status, r in refused.items()} == {
        409: 409,
        403: 403,
        422: 422,
    }
    log = ingest.settings.home / "ingest.log"
    lines = [orjson.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    logged = {
        line["status"]: line for line in lines
        if line.get("event") == "submission refused"
        and {mine["report_id"], theirs["report_id"]} & set(line["report_ids"])
    }  # fmt: skip
    assert logged[409]["report_ids"] == [mine["report_id"]]
    assert logged[403]["report_ids"] == [theirs["report_id"]]
    assert mine["report_id"] in logged[422]["report_ids"]
    assert logged[409]["key"] == "sarc-1"


# -- revisions and idempotency (CONTRACT 2) ------------------------------------


def test_accepted_duplicate_and_conflict(ingest: Ingest) -> None:
    report = violation()
    first = ingest.post("/v1/reports", "sarc", json=report)
    assert first.status_code == 202
    body = first.json()
    receipt = body["results"][0].pop("receipt")
    assert body == {
        "accepted": 1,
        "duplicates": 0,
        "results": [{"report_id": report["report_id"], "revision": 1, "status": "accepted"}],
    }
    assert set(receipt) == {"leaf_hash", "partition", "offset"}
    # identical after normalisation: same instant in another offset, default made explicit
    same = {**report, "occurred_at": "2016-02-28T08:15:00Z", "revision": 1, "retracted": False}
    again = ingest.post("/v1/reports", "sarc", json=same)
    assert again.status_code == 202
    assert again.json()["duplicates"] == 1
    assert again.json()["results"][0]["status"] == "duplicate"
    assert again.json()["results"][0]["receipt"] == receipt  # the first write's, not a new one
    changed = ingest.post("/v1/reports", "sarc", json={**report, "killed": 3})
    assert changed.status_code == 409
    correction = ingest.post("/v1/reports", "sarc", json={**report, "killed": 3, "revision": 2})
    assert correction.status_code == 202
    stolen = ingest.post("/v1/reports", "wfp", json={**report, "revision": 3})
    assert stolen.status_code == 403
    retraction = ingest.post(
        "/v1/reports", "sarc", json={**report, "revision": 3, "retracted": True}
    )
    assert retraction.status_code == 202
    ids = [i for i in ids_on_topic(ingest) if i[0] == report["report_id"]]
    assert sorted(ids) == [
        (report["report_id"], 1),
        (report["report_id"], 2),
        (report["report_id"], 3),
    ]


def test_every_result_carries_the_receipt_of_its_record_in_the_log(ingest: Ingest) -> None:
    """CONTRACT 6 and 8: leaf_hash = SHA-256(0x00 || the record's value), at the record's
    partition and offset; a duplicate's receipt is the original record's."""
    reports = [violation() for _ in range(5)]
    batch = ingest.post("/v1/reports/batch", "sarc", json={"reports": reports})
    assert batch.status_code == 202
    resent = ingest.post("/v1/reports", "sarc", json=reports[2])
    assert resent.json()["results"][0]["status"] == "duplicate"
    records = ingest.records()
    receipts = [r["receipt"] for r in batch.json()["results"]]
    for report, receipt in zip(reports, receipts, strict=True):
        value = records[(receipt["partition"], receipt["offset"])]
        assert orjson.loads(value)["report"]["report_id"] == report["report_id"]
        assert receipt["leaf_hash"] == hashlib.sha256(b"\x00" + value).hexdigest()
    assert resent.json()["results"][0]["receipt"] == receipts[2]


def test_duplicates_inside_one_batch(ingest: Ingest) -> None:
    report = violation()
    response = ingest.post("/v1/reports/batch", "sarc", json={"reports": [report, report]})
    assert response.status_code == 202
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "duplicate"]
    assert results[0]["receipt"] == results[1]["receipt"]
    clash = ingest.post(
        "/v1/reports/batch",
        "sarc",
        json={"reports": [violation("dup-x"), violation("dup-x", killed=7)]},
    )
    assert clash.status_code == 409
    assert clash.json()["errors"][0]["index"] == 1


def test_envelope_carries_server_fields(ingest: Ingest) -> None:
    report = violation()
    before = datetime.now(UTC)
    assert ingest.post("/v1/reports", "sarc", json=report).status_code == 202
    envelope = next(e for e in ingest.on_topic() if e.report.report_id == report["report_id"])
    assert envelope.org == "sarc"
    assert envelope.key_name == "sarc-1"
    assert before - timedelta(seconds=5) <= envelope.received_at <= datetime.now(UTC)
    assert envelope.schema_version >= 1
    assert len(envelope.content_hash) == 64
    assert envelope.report.occurred_at == datetime(2016, 2, 28, 8, 15, tzinfo=UTC)


def test_org_in_body_is_refused(ingest: Ingest) -> None:
    assert ingest.post("/v1/reports", "sarc", json=violation(org="wfp")).status_code == 422


def test_revoked_key_stops_working_without_restart(ingest: Ingest) -> None:
    from core.keys import KeyStore, Role

    store = KeyStore(ingest.settings)
    name = f"temp-{uuid.uuid4().hex[:6]}"
    secret = store.create(name, Role.PARTNER, "sarc")
    assert secret.startswith("truce_")
    assert ingest.post("/v1/reports", secret, json=violation()).status_code == 202
    store.revoke(name)
    refused = ingest.post("/v1/reports", secret, json=violation())
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("application/problem+json")


def test_openapi_documents_the_report_schema(ingest: Ingest) -> None:
    spec = httpx.get(ingest.url + "/openapi.json").json()
    body = spec["paths"]["/v1/reports/batch"]["post"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    assert schema["properties"]["reports"]["maxItems"] == 1000
    assert "$ref" not in str(schema)  # inlined, so it resolves inside the OpenAPI document
    assert httpx.get(ingest.url + "/docs").status_code == 200


# -- hostile input (issue 16) --------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
     "application/xml", "application/jsonx", "text/json"],
)  # fmt: skip
@pytest.mark.parametrize("path", ["/v1/reports", "/v1/reports/batch"])
def test_a_body_not_declared_json_is_415(
    ingest: Ingest, path: str, content_type: str | None
) -> None:
    report = violation()
    body = {"reports": [report]} if path.endswith("batch") else report
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = ingest.post(path, "sarc", content=orjson.dumps(body), headers=headers)
    assert response.status_code == 415, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert report["report_id"] not in {rid for rid, _ in ids_on_topic(ingest)}


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "APPLICATION/JSON"])
def test_json_with_parameters_or_in_capitals_is_json(ingest: Ingest, content_type: str) -> None:
    response = ingest.post(
        "/v1/reports",
        "sarc",
        content=orjson.dumps(violation()),
        headers={"Content-Type": content_type},
    )
    assert response.status_code == 202, response.text


@pytest.mark.parametrize(
    "raw",
    [b'{"report_id": "dup-1", "report_id": "dup-2"}',
     b'{"reports": [{"kind": "violation", "kind": "delivery"}]}',
     b'{"reports": [], "reports": []}'],
)  # fmt: skip
def test_a_repeated_key_is_400(ingest: Ingest, raw: bytes) -> None:
    path = "/v1/reports/batch" if raw.startswith(b'{"reports"') else "/v1/reports"
    response = ingest.post(path, "sarc", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert "twice" in response.json()["detail"]


def test_a_repeated_key_in_a_valid_report_is_400_and_nothing_is_published(
    ingest: Ingest,
) -> None:
    report = violation()
    raw = orjson.dumps(report)[:-1] + b', "killed": 99}'
    response = ingest.post(
        "/v1/reports", "sarc", content=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert report["report_id"] not in {rid for rid, _ in ids_on_topic(ingest)}


@pytest.mark.parametrize(
    "body", [{"reports": []}, {"reports": "x"}, {"reports": [], "extra": 1}, {}]
)
def test_batch_level_422s_have_an_index(ingest: Ingest, body: dict[str, Any]) -> None:
    problem = ingest.post("/v1/reports/batch", "sarc", json=body).json()
    assert problem["status"] == 422
    assert all("index" in e and e["index"] is None for e in problem["errors"]), problem


def test_a_mixed_batch_lists_every_offender_with_its_status(ingest: Ingest) -> None:
    theirs = violation()
    assert ingest.post("/v1/reports", "wfp", json=theirs).status_code == 202
    mine = violation()
    assert ingest.post("/v1/reports", "sarc", json=mine).status_code == 202
    good = violation()
    batch = [
        {**mine, "killed": 99},  # 409
        good,
        {**theirs, "revision": 2},  # 403
        violation(area="atlantis"),  # 422
        violation(kind="designation"),  # 422 (a partner may not, and it is invalid too)
        {**mine, "killed": 98},  # 409
    ]
    response = ingest.post("/v1/reports/batch", "sarc", json={"reports": batch})
    problem = response.json()
    assert response.status_code == 422, problem
    by_index: dict[int, set[int]] = {}
    for error in problem["errors"]:
        by_index.setdefault(error["index"], set()).add(error["status"])
    assert by_index == {0: {409}, 2: {403}, 3: {422}, 4: {422}, 5: {409}}
    assert good["report_id"] not in {rid for rid, _ in ids_on_topic(ingest)}
    # without the invalid ones the batch is a 403, still naming the conflicts
    response = ingest.post("/v1/reports/batch", "sarc", json={"reports": batch[:3] + batch[5:]})
    assert response.status_code == 403
    assert [(e["index"], e["status"]) for e in response.json()["errors"]] == [
        (0, 409), (2, 403), (3, 409)
    ]  # fmt: skip


def test_no_body_at_all_is_400(ingest: Ingest) -> None:
    response = ingest.post("/v1/reports", "sarc")
    assert response.status_code == 400, response.text
    assert "no body" in response.json()["detail"]
