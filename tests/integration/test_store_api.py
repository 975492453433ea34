"""The store's query API (CONTRACT sections 1, 3 and 4) in-process: the real app with its
lifespan (migrations, sink thread) on the real broker and the real ClickHouse engine, fed
through Kafka the way the stream and ingest feed it."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from httpx import Response

from core.kafka import durable_producer
from core.settings import Settings
from schemas import (
    Alert,
    CanonicalReport,
    ReportEnvelope,
    TopicNames,
    WeeklyAccess,
    WeeklyCompliance,
    area_list,
    encode_envelope,
    make_envelope,
    parse_report,
    party_list,
)
from services.store.queries import ACCESS_COUNTS, COMPLIANCE_COUNTS
from services.store.state import StoreState
from tests.support.ingest import violation
from tests.support.problems import assert_problem
from tests.support.reference import lone_events
from tests.support.store_seed import in_process_store, publish_records, raw_log, wait_stored

pytestmark = pytest.mark.integration

W09, W10, W11, W12 = "2016-W09", "2016-W10", "2016-W11", "2016-W12"
RECEIVED = datetime(2016, 3, 1, 9, 0, 0, 123000, tzinfo=UTC)
ROLES = ("sarc", "wfp", "monitor", "taskforce", "admin")


@dataclass
class Api:
    client: TestClient
    keys: dict[str, str]
    settings: Settings
    store: StoreState
    names: TopicNames

    def get(self, path: str, who: str | None, **params: Any) -> Response:
        headers = {} if who is None else {"Authorization": f"Bearer {self.keys.get(who, who)}"}
        response: Response = self.client.get(path, headers=headers, params=params)
        return response


# -- what the stream and ingest would have published ---------------------------------------
def canonical(report_id: str, week: str, **fields: Any) -> CanonicalReport:
    day = {W09: 1, W10: 8, W11: 15, W12: 22}[week]
    occurred = datetime(2016, 3, day, 8, 15, tzinfo=UTC)
    values: dict[str, Any] = {
        "report_id": report_id, "version": 1 << 40, "kind": "violation", "revision": 1,
        "org": "sarc", "received_at": RECEIVED, "occurred_at": occurred, "week": week,
        "area": "madaya", "party": "gos", "target": "civilians", "category": "shelling",
        "status": "", "subject": "", "killed": 0, "injured": 0, "beneficiaries": 0,
        "retracted": False, "counts": True, "exempt": False, "exempt_reason": "",
        "verification": "unverified",
        "report_json": orjson.dumps({"report_id": report_id, "kind": fields.get(
            "kind", "violation")}).decode(),
    }  # fmt: skip
    values.update(fields)
    return CanonicalReport(**values)


def delivery(report_id: str, status: str, beneficiaries: int, **fields: Any) -> CanonicalReport:
    return canonical(report_id, W09, kind="delivery", org="wfp", party="", target="",
                     category="", status=status, beneficiaries=beneficiaries, **fields)  # fmt: skip


CANONICAL = [
    canonical("w9-v1", W09, killed=2, injured=5, verification="verified", revision=2),
    canonical("w9-v2", W09, org="wfp", injured=1),
    canonical("w9-v3", W09, killed=9, retracted=True, counts=False),
    canonical("w9-v4", W09, party="isil", killed=3, exempt=True,
              exempt_reason="designated_perpetrator"),
    canonical("w9-v5", W09, area="daraya", party="ru", killed=1),
    delivery("w9-d1", "completed", 100),
    delivery("w9-d2", "partial", 50),
    delivery("w9-d3", "blocked", 30),
    canonical("w9-a1", W09, kind="access_request", party="", target="", category="",
              status="submitted"),
    canonical("w10-v1", W10, area="daraya", killed=1),
]  # fmt: skip


def compliance(week: str, area: str, party: str, version: int, *counts: int) -> WeeklyCompliance:
    """(violations, verified, exempt, killed, injured) of violations in no incident."""
    values = lone_events(dict(zip(COMPLIANCE_COUNTS[:5], counts or (0,) * 5, strict=True)))
    return WeeklyCompliance(week=week, area=area, party=party, version=version, **values)


def access(week: str, area: str, version: int, *counts: int) -> WeeklyAccess:
    values = dict(zip(ACCESS_COUNTS, counts or (0,) * 9, strict=True))
    return WeeklyAccess(week=week, area=area, version=version, **values)


SNAPSHOTS: list[WeeklyCompliance | WeeklyAccess] = [
    compliance(W09, "madaya", "gos", 3, 1, 0, 0, 2, 5),  # an older version
    compliance(W09, "madaya", "gos", 9, 2, 1, 0, 2, 6),
    compliance(W09, "madaya", "isil", 9, 0, 0, 1, 0, 0),
    compliance(W09, "daraya", "ru", 9, 1, 0, 0, 1, 0),
    compliance(W09, "daraya", "gos", 4, 1, 0, 0, 4, 4),
    compliance(W09, "daraya", "gos", 8),  # a correction moved it away: a zero row
    access(W09, "madaya", 9, 1, 1, 1, 0, 150, 1, 0, 0, 0),
    access(W09, "daraya", 9),  # zero row
    compliance(W10, "daraya", "gos", 9, 2, 0, 0, 1, 0),  # disagrees with the one report
    access(W12, "jobar", 9, 1, 0, 0, 0, 10, 0, 0, 0, 0),  # no canonical report at all
]

EXPECTED_W09_WEEKLY = [lone_events(row) for row in [
    {"area": "daraya", "party": "ru", "violations": 1, "violations_verified": 0,
     "violations_exempt": 0, "killed": 1, "injured": 0},
    {"area": "madaya", "party": "gos", "violations": 2, "violations_verified": 1,
     "violations_exempt": 0, "killed": 2, "injured": 6},
    {"area": "madaya", "party": "isil", "violations": 0, "violations_verified": 0,
     "violations_exempt": 1, "killed": 0, "injured": 0},
]]  # fmt: skip
EXPECTED_W09_ACCESS = [
    {"area": "madaya", "deliveries_completed": 1, "deliveries_partial": 1,
     "deliveries_blocked": 1, "deliveries_cancelled": 0, "beneficiaries": 150,
     "requests_submitted": 1, "requests_approved": 0, "requests_denied": 0,
     "requests_withdrawn": 0},
]  # fmt: skip


def raw(report_id: str, org: str, revision: int = 1, **fields: Any) -> Any:
    body = violation(report_id, occurred_at="2016-03-01T10:15:00+02:00", revision=revision)
    body.update(fields)
    return make_envelope(parse_report(body), org=org, key_name=f"{org}-1", received_at=RECEIVED)


ENVELOPES = [
    raw("w9-v1", "sarc", 1, killed=1),
    raw("w9-v1", "sarc", 2, killed=2),
    raw("w9-v2", "wfp", injured=1, killed=0),
    raw("raw-only", "sarc"),  # not classified by the stream yet
    # not classified yet either: sarc filed revision 2 first, then wfp tried a revision 1
    raw("contested", "sarc", 2),
    raw("contested", "wfp", 1, description="wfp's private notes"),
]


def alert(fingerprint: str, area: str, state: str, version: int, day: int) -> Alert:
    return Alert(
        fingerprint=fingerprint, rule="violation_spike", area=area, party="", window="P1D",
        state=state, severity="severe", summary=f"spike in {area}", value=9, threshold=5,
        starts_at=datetime(2016, 3, 1, tzinfo=UTC), updated_at=datetime(2016, 3, day, tzinfo=UTC),
        version=version, report_ids=["b1", "b2"],
    )  # fmt: skip


ALERTS = [
    alert("f-madaya", "madaya", "firing", 10, 1),
    alert("f-madaya", "madaya", "resolved", 20, 4),  # the same alert, later: replaces it
    alert("f-daraya", "daraya", "firing", 15, 2),
]


# -- the running store ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def api(
    bootstrap: str, clickhouse_root: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    def seed(bootstrap: str, names: TopicNames) -> None:
        publish_records(bootstrap, names, envelopes=ENVELOPES, canonical=CANONICAL,
                        snapshots=SNAPSHOTS, alerts=ALERTS)  # fmt: skip

    home = tmp_path_factory.mktemp("store-home")
    with in_process_store(bootstrap, clickhouse_root, home, seed) as running:
        yield Api(running.client, running.keys, running.settings, running.store, running.names)


@pytest.fixture(scope="module")
def checked(
    bootstrap: str, clickhouse_root: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    """A store whose raw log is the one the canonical reports were classified from, with
    the snapshots above (W09 right, W10 and W12 wrong): what /v1/verify recounts."""

    def seed(bootstrap: str, names: TopicNames) -> None:
        publish_records(bootstrap, names, envelopes=raw_log(CANONICAL, RECEIVED),
                        canonical=CANONICAL, snapshots=SNAPSHOTS)  # fmt: skip

    home = tmp_path_factory.mktemp("verify-home")
    with in_process_store(bootstrap, clickhouse_root, home, seed) as running:
        yield Api(running.client, running.keys, running.settings, running.store, running.names)


# -- section 1: identity and roles ---------------------------------------------------------
READER_PATHS: list[tuple[str, dict[str, str]]] = [
    ("/v1/metrics/weekly", {"week": W09}),
    ("/v1/metrics/access", {"week": W09}),
    ("/v1/verify", {"week": W09}),
]
ANYONE_PATHS: list[tuple[str, dict[str, str]]] = [
    ("/v1/reference/areas", {}),
    ("/v1/reference/parties", {}),
    ("/v1/reports/w9-v1", {}),
]


@pytest.mark.parametrize(("path", "params"), READER_PATHS + ANYONE_PATHS)
def test_a_missing_unknown_or_revoked_key_is_401(
    api: Api, path: str, params: dict[str, str]
) -> None:
    assert_problem(api.get(path, None, **params), 401)
    assert_problem(api.get(path, "truce_notakeyatall0000000000000000000", **params), 401)
    assert_problem(api.get(path, "revoked", **params), 401)
    wrong_scheme = api.client.get(path, params=params, headers={"Authorization": "Basic abc"})
    assert_problem(wrong_scheme, 401)
    assert api.get(path, None, **params).headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("path", "params"), READER_PATHS)
def test_partners_may_not_read_metrics(api: Api, path: str, params: dict[str, str]) -> None:
    for partner in ("sarc", "wfp"):
        assert_problem(api.get(path, partner, **params), 403)
    for reader in ("monitor", "taskforce", "admin"):
        response = api.get(path, reader, **params)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"


@pytest.mark.parametrize("who", ROLES)
def test_reference_data_is_for_every_role(api: Api, who: str) -> None:
    areas = api.get("/v1/reference/areas", who)
    assert areas.status_code == 200
    assert areas.json() == [a.model_dump() for a in area_list()]
    assert set(areas.json()[0]) == {
        "code", "name", "name_ar", "governorate", "besieged", "hard_to_reach",
        "people_in_need", "lat", "lon",
    }  # fmt: skip
    parties = api.get("/v1/reference/parties", who)
    assert parties.status_code == 200
    assert parties.json() == [p.model_dump() for p in party_list()]
    assert {p["code"] for p in parties.json() if p["designated"]} == {"isil", "nusra"}


def test_probes_need_no_key(api: Api) -> None:
    assert api.get("/healthz", None).json() == {"status": "ok"}
    ready = api.get("/readyz", None)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"clickhouse": True, "sink": True, "log": True}
    metrics = api.get("/metrics", None)
    assert metrics.status_code == 200
    assert 'truce_store_rows_written_total{table="raw_reports"} 6.0' in metrics.text


def test_metrics_say_how_far_behind_the_pipeline_is_and_how_old_its_newest_report(
    api: Api,
) -> None:
    """Operability (issue 15): on-call staff read the lag of every consumer group and the
    age of the newest report received and counted from one scrape."""
    text = api.get("/metrics", None).text
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(("truce_consumer_lag_records", "truce_newest_report_age_seconds"))
    }
    reports = api.names.reports
    assert samples[f'truce_consumer_lag_records{{group="store",topic="{reports}"}}'] == 0
    assert f'truce_consumer_lag_records{{group="streams",topic="{reports}"}}' in samples
    received = samples['truce_newest_report_age_seconds{stage="received"}']
    counted = samples['truce_newest_report_age_seconds{stage="counted"}']
    newest = max(e.received_at for e in ENVELOPES)
    assert received == pytest.approx((datetime.now(UTC) - newest).total_seconds(), abs=30)
    assert counted >= 0


# -- section 4: a report, visible to its owner and to monitors ------------------------------
def test_a_partner_sees_only_its_own_reports(api: Api) -> None:
    assert api.get("/v1/reports/w9-v1", "sarc").status_code == 200
    assert api.get("/v1/reports/raw-only", "sarc").status_code == 200
    assert api.get("/v1/reports/w9-v2", "wfp").status_code == 200
    assert api.get("/v1/reports/w9-d1", "wfp").status_code == 200  # classified, not in raw
    for report_id in ("w9-v1", "raw-only", "w10-v1"):
        assert_problem(api.get(f"/v1/reports/{report_id}", "wfp"), 404)
    for report_id in ("w9-v2", "w9-d1"):
        assert_problem(api.get(f"/v1/reports/{report_id}", "sarc"), 404)
    # another organisation's report and a report that does not exist look the same
    foreign = api.get("/v1/reports/w9-v2", "sarc").json()
    missing = api.get("/v1/reports/nope", "sarc").json()
    assert foreign["status"] == missing["status"] == 404


@pytest.mark.parametrize("who", ["monitor", "taskforce", "admin"])
def test_monitors_see_every_report(api: Api, who: str) -> None:
    for report_id in ("w9-v1", "w9-v2", "w9-d1", "raw-only", "w10-v1"):
        assert api.get(f"/v1/reports/{report_id}", who).status_code == 200, report_id
    assert_problem(api.get("/v1/reports/nope", who), 404)


def test_a_report_lists_every_revision_and_its_classification(api: Api) -> None:
    body = api.get("/v1/reports/w9-v1", "monitor").json()
    assert body["report_id"] == "w9-v1"
    assert body["owner"] == "sarc"
    revisions = body["revisions"]
    assert [r["revision"] for r in revisions] == [1, 2]
    for revision, sent in zip(revisions, ENVELOPES[:2], strict=True):
        assert revision["org"] == "sarc"
        assert revision["key_name"] == "sarc-1"
        assert datetime.fromisoformat(revision["received_at"]) == RECEIVED
        assert revision["received_at"].endswith("Z")
        assert revision["report"] == sent.report.model_dump(mode="json")
        assert revision["content_hash"] == sent.content_hash
    assert revisions[0]["report"]["occurred_at"].startswith("2016-03-01T08:15:00")
    assert body["current"] == {"report_id": "w9-v1", "kind": "violation"}
    assert body["classification"] == {
        "week": W09, "counts": True, "exempt": False, "exempt_reason": "",
        "verification": "verified",
    }  # fmt: skip
    pending = api.get("/v1/reports/raw-only", "sarc").json()
    assert pending["current"] is None
    assert pending["classification"] is None
    assert [r["revision"] for r in pending["revisions"]] == [1]


def test_before_classification_the_first_filer_owns_a_report(api: Api) -> None:
    """Ownership goes to the organisation that filed first, whatever the revision number;
    a partner does not see another organisation's refused attempt."""
    mine = api.get("/v1/reports/contested", "sarc")
    assert mine.status_code == 200, mine.text
    assert mine.json()["owner"] == "sarc"
    assert [(r["revision"], r["org"]) for r in mine.json()["revisions"]] == [(2, "sarc")]
    assert_problem(api.get("/v1/reports/contested", "wfp"), 404)
    audit = api.get("/v1/reports/contested", "monitor").json()
    assert audit["owner"] == "sarc"
    assert [(r["revision"], r["org"]) for r in audit["revisions"]] == [(1, "wfp"), (2, "sarc")]


# -- section 3: weekly metrics -------------------------------------------------------------
def test_weekly_metrics_are_the_latest_snapshots_without_zero_rows(api: Api) -> None:
    response = api.get("/v1/metrics/weekly", "monitor", week=W09)
    assert response.json() == {"week": W09, "rows": EXPECTED_W09_WEEKLY}
    by_area = api.get("/v1/metrics/weekly", "monitor", week=W09, area="madaya").json()
    assert by_area["rows"] == EXPECTED_W09_WEEKLY[1:]
    by_party = api.get("/v1/metrics/weekly", "taskforce", week=W09, party="gos").json()
    assert by_party["rows"] == [EXPECTED_W09_WEEKLY[1]]
    both = api.get("/v1/metrics/weekly", "admin", week=W09, area="madaya", party="isil").json()
    assert both["rows"] == [EXPECTED_W09_WEEKLY[2]]
    zero = api.get("/v1/metrics/weekly", "monitor", week=W09, area="daraya", party="gos")
    assert zero.json()["rows"] == []
    empty = api.get("/v1/metrics/weekly", "monitor", week="2016-W30").json()
    assert empty == {"week": "2016-W30", "rows": []}


def test_access_metrics_are_the_latest_snapshots_without_zero_rows(api: Api) -> None:
    response = api.get("/v1/metrics/access", "monitor", week=W09)
    assert response.json() == {"week": W09, "rows": EXPECTED_W09_ACCESS}
    by_area = api.get("/v1/metrics/access", "monitor", week=W09, area="madaya").json()
    assert by_area["rows"] == EXPECTED_W09_ACCESS
    assert api.get("/v1/metrics/access", "monitor", week=W09, area="daraya").json()["rows"] == []
    other_week = api.get("/v1/metrics/access", "monitor", week=W12).json()["rows"]
    assert [r["area"] for r in other_week] == ["jobar"]


@pytest.mark.parametrize(
    "week", ["2016-W60", "2016-9", "2016-W00", "2016-W53", "2016-W9", "16-W09", "2016W09",
             "2016-W09\n", " 2016-W09", "2016-w09", "\uff12\uff10\uff11\uff16-W09", ""],
)  # fmt: skip
@pytest.mark.parametrize("path", ["/v1/metrics/weekly", "/v1/metrics/access", "/v1/verify"])
def test_a_bad_week_is_422(api: Api, path: str, week: str) -> None:
    body = assert_problem(api.get(path, "monitor", week=week), 422)
    assert body["errors"]
    assert body["errors"][0]["loc"] == ["query", "week"]


def test_a_53rd_week_is_valid_when_the_year_has_one(api: Api) -> None:
    response = api.get("/v1/metrics/weekly", "monitor", week="2015-W53")
    assert response.json() == {"week": "2015-W53", "rows": []}


@pytest.mark.parametrize("path", ["/v1/metrics/weekly", "/v1/metrics/access"])
def test_a_missing_week_is_422(api: Api, path: str) -> None:
    body = assert_problem(api.get(path, "monitor"), 422)
    assert any("week" in e["loc"] for e in body["errors"])


def test_unknown_area_or_party_is_422(api: Api) -> None:
    for path in ("/v1/metrics/weekly", "/v1/metrics/access"):
        body = assert_problem(api.get(path, "monitor", week=W09, area="atlantis"), 422)
        assert body["errors"][0]["loc"] == ["query", "area"]
    body = assert_problem(api.get("/v1/metrics/weekly", "monitor", week=W09, party="nobody"), 422)
    assert body["errors"][0]["loc"] == ["query", "party"]
    # an area code is not a party code
    assert_problem(api.get("/v1/metrics/weekly", "monitor", week=W09, party="madaya"), 422)


# -- reconciliation ------------------------------------------------------------------------
def test_verify_is_ok_when_snapshots_and_the_raw_log_agree(checked: Api) -> None:
    body = checked.get("/v1/verify", "monitor", week=W09).json()
    assert body == {"weeks": [W09], "ok": True, "differences": [], "misclassified": [],
                    "misclassified_total": 0}  # fmt: skip


def test_verify_lists_a_snapshot_that_disagrees(checked: Api) -> None:
    body = checked.get("/v1/verify", "monitor", week=W10).json()
    counts = dict.fromkeys(COMPLIANCE_COUNTS, 0)
    assert body == {
        "weeks": [W10],
        "ok": False,
        "differences": [
            {
                "metric": "weekly",
                "week": W10,
                "key": {"area": "daraya", "party": "gos"},
                "streamed": lone_events({**counts, "violations": 2, "killed": 1}),
                "recounted": lone_events({**counts, "violations": 1, "killed": 1}),
            }
        ],
        "misclassified": [],
        "misclassified_total": 0,
    }


def test_verify_of_every_week_finds_every_difference(checked: Api) -> None:
    """Without ``week`` every week with data is checked, including a week that only has a
    (wrong) snapshot and no report at all."""
    body = checked.get("/v1/verify", "admin").json()
    assert body["ok"] is False
    assert [w for w in body["weeks"] if w != W11] == [W09, W10, W12]  # W11: the test below
    found = [(d["metric"], d["week"], d["key"]) for d in body["differences"] if d["week"] != W11]
    assert found == [
        ("weekly", W10, {"area": "daraya", "party": "gos"}),
        ("access", W12, {"area": "jobar"}),
    ]
    stray = body["differences"][1]
    assert stray["recounted"] is None
    assert stray["streamed"]["deliveries_completed"] == 1


def test_verify_lists_the_reports_the_stream_classifies_differently(checked: Api) -> None:
    """The raw log says a report of W11 is exempt (its perpetrator is designated), and so
    does the published row; the stream's canonical report says it is not."""
    report = canonical("w11-isil", W11, area="jobar", party="isil")
    publish(checked, *raw_log([report], RECEIVED), report,
            compliance(W11, "jobar", "isil", 9, 0, 0, 1, 0, 0))  # fmt: skip
    # every record stored, the published row too (it lagged the raw and canonical ones)
    wait_stored(checked.settings.bootstrap_servers, checked.settings.topic_prefix)
    body = checked.get("/v1/verify", "monitor", week=W11).json()
    assert (body["ok"], body["misclassified_total"]) == (True, 1)  # the figures are right
    (wrong,) = body["misclassified"]
    assert wrong["report_id"] == "w11-isil"
    assert wrong["streamed"] == {**wrong["recounted"], "exempt": False}
    assert wrong["recounted"]["exempt"] is True


def publish(api: Api, *models: Any) -> None:
    producer = durable_producer(api.settings.bootstrap_servers)
    try:
        for model in models:
            if isinstance(model, ReportEnvelope):
                topic, key = api.names.reports, model.report.report_id
                value = encode_envelope(model).decode()
            elif isinstance(model, CanonicalReport):
                topic, key, value = api.names.events, model.report_id, model.model_dump_json()
            elif isinstance(model, WeeklyCompliance):
                topic, key = (
                    api.names.metrics,
                    f"compliance|{model.week}|{model.area}|{model.party}",
                )
                value = orjson.dumps({"type": "compliance", **model.model_dump()}).decode()
            else:
                topic, key = api.names.metrics, f"access|{model.week}|{model.area}"
                value = orjson.dumps({"type": "access", **model.model_dump()}).decode()
            producer.send(topic, key=key.encode(), value=value.encode()).get(timeout=15)
    finally:
        producer.close()


def eventually(what: str, check: Any, timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_verify_follows_the_snapshots_as_they_arrive(checked: Api) -> None:
    api = checked
    report = canonical("w11-v1", W11, area="douma", party="ru", killed=4, injured=2)
    publish(api, *raw_log([report], RECEIVED), report,
            compliance(W11, "douma", "ru", 100, 1, 0, 0, 4, 2))  # fmt: skip
    eventually("the W11 row", lambda: api.get("/v1/metrics/weekly", "monitor", week=W11)
               .json()["rows"])  # fmt: skip
    eventually("the raw record", lambda: api.get("/v1/reports/w11-v1", "monitor")
               .json().get("revisions"))  # fmt: skip
    assert api.get("/v1/verify", "monitor", week=W11).json()["ok"] is True
    publish(api, compliance(W11, "douma", "ru", 101, 1, 0, 0, 5, 2))  # the stream is wrong
    eventually("the difference", lambda: not api.get("/v1/verify", "monitor", week=W11)
               .json()["ok"])  # fmt: skip
    (difference,) = api.get("/v1/verify", "monitor", week=W11).json()["differences"]
    assert difference["key"] == {"area": "douma", "party": "ru"}
    assert (difference["streamed"]["killed"], difference["recounted"]["killed"]) == (5, 4)
    publish(api, compliance(W11, "douma", "ru", 102, 1, 0, 0, 4, 2))  # and corrects itself
    eventually("agreement", lambda: api.get("/v1/verify", "monitor", week=W11).json()["ok"])


def test_readyz_reports_a_clickhouse_outage_and_the_recovery(api: Api) -> None:
    sink = api.store.sink
    working = sink.insert

    def broken(table: str, rows: list[list[Any]], columns: list[str]) -> None:
        raise ConnectionError("ClickHouse is gone")

    sink.insert = broken
    try:
        publish(api, compliance(W11, "harasta", "gos", 1))  # a zero row: no other test sees it
        eventually("/readyz to fail", lambda: api.get("/readyz", None).status_code == 503)
        body = api.get("/readyz", None).json()
        assert body["ready"] is False
        assert body["checks"]["sink"] is False
        assert "ClickHouse is gone" in body["error"]
    finally:
        sink.insert = working
    eventually("/readyz to recover", lambda: api.get("/readyz", None).status_code == 200, 30)
    assert api.get("/readyz", None).json()["error"] is None
    failures = re.search(r"^truce_store_insert_failures_total (\S+)$",
                         api.get("/metrics", None).text, re.M)  # fmt: skip
    assert failures is not None
    assert float(failures.group(1)) >= 1


# -- alerts -------------------------------------------------------------------------------
def test_alerts_newest_first_latest_state(api: Api) -> None:
    response = api.get("/v1/alerts", "monitor")
    assert response.status_code == 200
    rows = response.json()
    assert [(r["fingerprint"], r["state"]) for r in rows] == [
        ("f-madaya", "resolved"),
        ("f-daraya", "firing"),
    ]
    assert rows[0]["updated_at"] == "2016-03-04T00:00:00Z"
    assert rows[0]["report_ids"] == ["b1", "b2"]


def test_alerts_filters_and_roles(api: Api) -> None:
    since = api.get("/v1/alerts", "taskforce", since="2016-03-03T00:00:00+00:00").json()
    assert [r["fingerprint"] for r in since] == ["f-madaya"]
    by_area = api.get("/v1/alerts", "admin", area="daraya").json()
    assert [r["fingerprint"] for r in by_area] == ["f-daraya"]
    assert_problem(api.get("/v1/alerts", "sarc"), 403)
    assert_problem(api.get("/v1/alerts", None), 401)
    assert_problem(api.get("/v1/alerts", "monitor", since="yesterday"), 422)
    assert_problem(api.get("/v1/alerts", "monitor", since="2016-03-03T00:00:00"), 422)
    assert_problem(api.get("/v1/alerts", "monitor", area="atlantis"), 422)


# -- CONTRACT 6: well-formed but out-of-range weeks and times are 422, never a 5xx --------
FAR_WEEKS = ["0001-W01", "0001-W02", "0500-W10", "1989-W52", "9999-W52", "2999-W01"]


@pytest.mark.parametrize("week", FAR_WEEKS)
@pytest.mark.parametrize("path", ["/v1/metrics/weekly", "/v1/metrics/access", "/v1/verify"])
def test_a_week_out_of_range_is_422(api: Api, path: str, week: str) -> None:
    body = assert_problem(api.get(path, "monitor", week=week), 422)
    assert body["errors"][0]["loc"] == ["query", "week"]
    assert "1990-01-01" in body["detail"]


@pytest.mark.parametrize("week", FAR_WEEKS)
@pytest.mark.parametrize("fmt", ["json", "html", "md", "csv", "hxl"])
def test_a_weekly_report_out_of_range_is_422(api: Api, week: str, fmt: str) -> None:
    body = assert_problem(api.get(f"/v1/weekly-report/{week}", "monitor", format=fmt), 422)
    assert body["errors"][0]["loc"] == ["path", "week"]


def test_the_first_week_in_range_is_served(api: Api) -> None:
    assert api.get("/v1/metrics/weekly", "monitor", week="1990-W01").json()["rows"] == []
    assert api.get("/v1/weekly-report/1990-W01", "monitor").status_code == 200


@pytest.mark.parametrize(
    "since",
    ["0999-12-31T00:00:00Z", "0001-01-01T00:00:00+01:00", "0001-01-01T00:00:00-01:00",
     "9999-12-31T23:00:00-05:00", "1989-12-31T23:59:59Z", "2999-01-01T00:00:00Z",
     "2016-02-30T00:00:00Z", "2016-03-03T00:00:00+24:00"],
)  # fmt: skip
def test_alerts_since_out_of_range_is_422(api: Api, since: str) -> None:
    body = assert_problem(api.get("/v1/alerts", "monitor", since=since), 422)
    assert body["errors"][0]["loc"] == ["query", "since"]
