"""Editions, as-of reports and restatements (CONTRACT section 7) on the real store: the
known week of tests/support/store_seed.py through the real broker, sink and ClickHouse
engine, then late records (a late violation, a retraction, a late designation) sent to
the reports topic as ingest would have written them."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.clickhouse import dsn_database, with_database
from services.store.app import create_app
from services.store.database import Database
from services.store.schedule import Schedule, Slot
from services.store.state import StoreState
from tests.conftest import isolated_settings
from tests.support import store_seed as seed
from tests.support.problems import assert_problem
from tests.support.reference import with_lone_events
from truce_audit.cli import main as audit_main
from truce_audit.heads import AuditFailure

pytestmark = pytest.mark.integration

W09 = seed.WEEK
FORMATS = ("json", "md", "html", "csv", "hxl")
LATE_AT, DESIGNATED_AT, LATE = seed.LATE_AT, seed.DESIGNATED_AT, seed.LATE


class Api:
    def __init__(self, client: TestClient, keys: dict[str, str]) -> None:
        self.client, self.keys = client, keys

    def headers(self, who: str | None) -> dict[str, str]:
        return {} if who is None else {"Authorization": f"Bearer {self.keys.get(who, who)}"}

    def get(self, path: str, who: str | None = "monitor", **params: Any) -> Any:
        return self.client.get(path, headers=self.headers(who), params=params)

    def publish(self, week: str, who: str | None = "taskforce") -> Any:
        return self.client.post("/v1/editions", headers=self.headers(who), json={"week": week})

    def report(self, **params: Any) -> dict[str, Any]:
        response = self.get(f"/v1/weekly-report/{W09}", format="json", **params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def edition(self, number: int, fmt: str = "json") -> bytes:
        response = self.get(f"/v1/weekly-report/{W09}", edition=str(number), format=fmt)
        assert response.status_code == 200, response.text
        content: bytes = response.content
        return content


@pytest.fixture(scope="module")
def running(
    bootstrap: str, clickhouse_root: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[seed.InProcessStore]:
    home = tmp_path_factory.mktemp("editions-home")
    with seed.in_process_store(bootstrap, clickhouse_root, home, seed.publish) as store:
        yield store


@pytest.fixture(scope="module")
def api(running: seed.InProcessStore) -> Api:
    return Api(running.client, running.keys)


def party_figures(report: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    return {
        p["party"]: (p["violations"], p["verified"], p["killed"], p["injured"])
        for p in [*report["violations"]["parties"], report["violations"]["total"]]
    }


@pytest.fixture(scope="module")
def first(api: Api, running: seed.InProcessStore) -> dict[str, Any]:
    """Edition 1 of W09, published before the late records arrive; then they arrive."""
    before = api.report()
    answer = api.publish(W09)
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    body["figures_before"] = party_figures(before)
    body["bytes"] = {fmt: api.edition(1, fmt) for fmt in FORMATS}
    seed.publish_records(bootstrap=running.settings.kafka_bootstrap, names=running.names,
                         envelopes=LATE)  # fmt: skip
    seed.wait_stored(running.settings.kafka_bootstrap, running.settings.topic_prefix)
    return body


def test_publishing_answers_201_with_the_pinned_head_and_the_json_digest(
    first: dict[str, Any],
) -> None:
    assert {k: first[k] for k in ("week", "edition")} == {"week": W09, "edition": 1}
    assert set(first) >= {"week", "edition", "published_at", "log_head", "sha256"}
    assert first["sha256"] == hashlib.sha256(first["bytes"]["json"]).hexdigest()
    head = first["log_head"]
    assert set(head) == {"tree_size", "root_hash", "timestamp", "signature", "key_id"}
    assert head["tree_size"] == len(seed.ENVELOPES)  # every record stored when it was pinned


def test_an_edition_is_the_report_as_it_was(first: dict[str, Any]) -> None:
    frozen = json.loads(first["bytes"]["json"])
    assert party_figures(frozen) == first["figures_before"]
    stamp = frozen["edition"]
    assert stamp["edition"] == 1
    assert stamp["published_at"] == first["published_at"]
    assert stamp["log_head"] == first["log_head"] == frozen["log_head"]  # truce audit reads it
    assert sum(stamp["log_position"].values()) == len(seed.ENVELOPES)
    assert frozen["generated_at"] == first["published_at"]
    assert frozen["restatements"] == []


def test_an_edition_is_byte_identical_on_every_fetch_in_every_format(
    api: Api, first: dict[str, Any]
) -> None:
    for fmt in FORMATS:
        assert api.edition(1, fmt) == first["bytes"][fmt], fmt  # after the late records too
    assert b"Edition 1" in first["bytes"]["md"]
    assert b'id="edition"' in first["bytes"]["html"]
    rows = list(csv.DictReader(io.StringIO(first["bytes"]["csv"].decode())))
    assert {r["edition"] for r in rows} == {"1"}


def test_the_editions_of_a_week_are_listed(api: Api, first: dict[str, Any]) -> None:
    listed = api.get("/v1/editions", week=W09)
    assert listed.status_code == 200, listed.text
    (item,) = [e for e in listed.json() if e["edition"] == 1]
    assert item == {k: first[k] for k in ("week", "edition", "published_at", "log_head",
                                          "sha256")}  # fmt: skip
    assert api.get("/v1/editions", week=seed.NEXT).json() == []


def _restated(report: dict[str, Any]) -> dict[tuple[str, str, str | None], Any]:
    return {
        (x["figure"], x["area"], x["party"]): (
            x["was"], x["now"], [(c["report_id"], c["reason"]) for c in x["because"]]
        )
        for x in report["restatements"]
    }  # fmt: skip


def test_the_current_report_restates_what_changed_and_why(api: Api, first: dict[str, Any]) -> None:
    report = api.report()
    assert report["restated_against"] == 1
    # no incident links them: each violation is also an event, restated with it
    assert _restated(report) == with_lone_events({
        ("violations", "madaya", "gos"): (1, 2, [("late-w9", "late")]),
        ("killed", "madaya", "gos"): (2, 6, [("late-w9", "late")]),
        ("violations", "daraya", "ru"): (1, 0, [("v-ru-1", "retracted")]),
        ("violations_verified", "daraya", "ru"): (1, 0, [("v-ru-1", "retracted")]),
        ("killed", "daraya", "ru"): (1, 0, [("v-ru-1", "retracted")]),
        ("violations", "daraya", "gos"): (1, 0, [("v-gos-2", "reclassified")]),
        ("violations_exempt", "daraya", "gos"): (0, 1, [("v-gos-2", "reclassified")]),
        ("injured", "daraya", "gos"): (1, 0, [("v-gos-2", "reclassified")]),
    })  # fmt: skip
    quality = report["data_quality"]
    assert (quality["edition"], quality["since"]) == (1, first["published_at"])
    assert (quality["late_reports"], quality["revised_reports"]) == (1, 1)


def test_restatements_are_in_every_format(api: Api, first: dict[str, Any]) -> None:
    md = api.get(f"/v1/weekly-report/{W09}", format="md").text
    assert "## Restatements since edition 1 (15)" in md  # 8, and 7 of their events
    assert "`late-w9` late" in md
    assert "## Data quality since edition 1" in md
    html = api.get(f"/v1/weekly-report/{W09}", format="html").text
    assert '<section id="restatements">' in html
    assert "<code>v-ru-1</code> retracted" in html
    for fmt in ("csv", "hxl"):
        text = api.get(f"/v1/weekly-report/{W09}", format=fmt).text
        rows = [r for r in csv.DictReader(io.StringIO(text)) if r["section"] == "restatement"]
        assert len(rows) == 15, fmt
        (row,) = [r for r in rows if r["figure"] == "violations" and r["area"] == "daraya"
                  and r["party"] == "gos"]  # fmt: skip
        assert (row["was"], row["now"], row["because"]) == ("1", "0", "v-gos-2:reclassified")
        assert row["against_edition"] == "1"


def test_a_second_edition_counts_its_data_quality_against_the_first(
    api: Api, first: dict[str, Any]
) -> None:
    answer = api.publish(W09, who="admin")
    assert answer.status_code == 201, answer.text
    assert answer.json()["edition"] == 2
    second = json.loads(api.edition(2))
    quality = second["data_quality"]
    assert (quality["edition"], quality["late_reports"], quality["revised_reports"]) == (1, 1, 1)
    total = second["violations"]["total"]
    assert (total["violations"], total["verified"]) == (2, 1)  # gos in Madaya 2; ru, daraya 0
    assert api.report()["restatements"] == []  # nothing changed since edition 2
    assert api.report()["restated_against"] == 2
    for fmt in FORMATS:  # edition 1 stays what it was
        assert api.edition(1, fmt) == first["bytes"][fmt]


def test_restatements_follow_records_stored_after_they_were_computed(
    api: Api, running: seed.InProcessStore, first: dict[str, Any]
) -> None:
    """The current report's restatements are reused while nothing new is stored, and
    counted again once something is (edition 2 has none yet: computed and kept above)."""
    assert api.report()["restatements"] == []
    later = seed.envelope("late-w9-2", 1, "03-03", "03-28", area="madaya", killed=0, injured=0)
    seed.publish_records(running.settings.kafka_bootstrap, running.names, envelopes=[later])
    seed.wait_stored(running.settings.kafka_bootstrap, running.settings.topic_prefix)
    assert _restated(api.report()) == with_lone_events(
        {("violations", "madaya", "gos"): (2, 3, [("late-w9-2", "late")])}
    )


def test_truce_audit_recounts_both_editions_from_the_log_entries(
    api: Api, first: dict[str, Any]
) -> None:
    """CONTRACT 8 against real editions: the signature, the root and every figure of each
    edition recounted from the entries its pinned head covers (the late records after
    edition 1 are past its head, so they are not counted for it)."""

    def fetch(path: str, query: dict[str, Any]) -> Any:
        answer = api.get(path, **query)
        if answer.status_code != 200:
            raise AuditFailure(f"GET {path} answered {answer.status_code}: {answer.text}")
        return answer.json()

    for number in ("1", "2"):
        assert audit_main(["--week", W09, "--edition", number], fetch=fetch) == 0, number


# -- as of -----------------------------------------------------------------------------------
def test_as_of_before_a_late_designation_gives_the_figures_without_it(
    api: Api, first: dict[str, Any]
) -> None:
    def daraya(report: dict[str, Any]) -> tuple[int, list[str]]:
        gos = {p["party"]: p for p in report["violations"]["parties"]}.get("gos")
        return gos["violations"] if gos else 0, sorted(e["report_id"] for e in report["exempt"])

    known = (DESIGNATED_AT - timedelta(seconds=1)).isoformat()
    before = api.report(as_of=known)
    after = api.report(as_of=(DESIGNATED_AT + timedelta(seconds=1)).isoformat())
    assert before["as_of"] == known.replace("+00:00", "Z")
    assert daraya(before) == (3, ["v-isil-1", "v-raqqa-1"])  # v-gos-2 still counts
    assert daraya(after) == (2, ["v-gos-2", "v-isil-1", "v-raqqa-1"])
    exempt = {e["report_id"]: e["reason"] for e in after["exempt"]}
    assert exempt["v-gos-2"] == "designation:des-daraya"
    assert before["restatements"] == []  # an as-of report is not restated
    early = api.report(as_of=(LATE_AT - timedelta(seconds=1)).isoformat())
    assert party_figures(early) == first["figures_before"]


@pytest.mark.parametrize(
    "as_of", ["yesterday", "2016-03-01", "1989-12-31T23:59:59Z", "9999-01-01T00:00:00Z"]
)
def test_an_out_of_range_or_malformed_as_of_is_422(api: Api, as_of: str) -> None:
    body = assert_problem(api.get(f"/v1/weekly-report/{W09}", as_of=as_of), 422)
    assert body["errors"][0]["loc"] == ["query", "as_of"]


# -- refusals ----------------------------------------------------------------------------------
def test_who_may_publish(api: Api) -> None:
    assert_problem(api.publish(W09, who=None), 401)
    assert_problem(api.publish(W09, who="revoked"), 401)
    for who in ("monitor", "sarc"):
        assert_problem(api.publish(W09, who=who), 403)
    assert_problem(api.get("/v1/editions", who="sarc", week=W09), 403)


@pytest.mark.parametrize("week", ["2016-09", "2016-W99", "1066-W01", ""])
def test_a_bad_week_is_422(api: Api, week: str) -> None:
    assert_problem(api.publish(week), 422)
    assert_problem(api.get("/v1/editions", week=week), 422)


def test_bad_edition_requests(api: Api, first: dict[str, Any]) -> None:
    path = f"/v1/weekly-report/{W09}"
    assert_problem(api.get(path, edition="99"), 404)
    assert_problem(api.get(path, edition="0"), 422)
    assert_problem(api.get(path, edition="x"), 422)
    assert_problem(api.get(path, edition="1", as_of="2016-03-20T00:00:00Z"), 422)
    extra = api.client.post(
        "/v1/editions", headers=api.headers("taskforce"), json={"week": W09, "edition": 5}
    )
    assert_problem(extra, 422)


# -- the projection is rebuilt from the topic ---------------------------------------------------
def test_editions_survive_dropping_every_clickhouse_table(
    running: seed.InProcessStore, first: dict[str, Any], clickhouse_root: str, tmp_path: Path
) -> None:
    """What `truce rebuild` does to the store (the CLI's rebuild is exercised end to end in
    test_demo): the tables gone (here: a new, empty database), a sink that reads every
    topic from its start."""
    dsn = with_database(clickhouse_root, f"rebuilt_{uuid.uuid4().hex[:12]}")
    old = running.settings
    settings = isolated_settings(tmp_path / "home", kafka_bootstrap=old.kafka_bootstrap,
                                 topic_prefix=old.topic_prefix, clickhouse_dsn=dsn)  # fmt: skip
    keys = seed.store_keys(settings)
    database = Database(dsn)
    store = StoreState(settings, database=database)
    store.sink.group_id = f"rebuilt-{uuid.uuid4().hex[:8]}"
    try:
        with TestClient(create_app(settings, store=store)) as client:
            api = Api(client, keys)
            deadline = time.monotonic() + 60
            while not api.get("/v1/editions", week=W09).json():
                assert time.monotonic() < deadline, "the sink did not refill the editions"
                time.sleep(0.2)
            for fmt in FORMATS:
                assert api.edition(1, fmt) == first["bytes"][fmt], fmt
    finally:
        database.client.command(f"DROP DATABASE IF EXISTS `{dsn_database(dsn)}`")
        database.close()


# -- the schedule ------------------------------------------------------------------------------
def test_the_schedule_publishes_last_weeks_edition_once(
    api: Api, running: seed.InProcessStore, first: dict[str, Any]
) -> None:
    def schedule(day: str, hour: int, minute: int) -> Schedule:
        moment = seed.at(day, hour).replace(minute=minute)
        return Schedule(running.store.editions, Slot.parse("MON 12:00"), clock=lambda: moment)

    assert schedule("03-14", 11, 59).tick() is None  # W09's slot: it has editions since
    assert api.get("/v1/editions", week=seed.NEXT).json() == []
    on_time = schedule("03-14", 12, 5)
    assert on_time.tick() == seed.NEXT
    assert on_time.tick() is None
    assert schedule("03-20", 23, 0).tick() is None  # a restart later in the week
    (only,) = api.get("/v1/editions", week=seed.NEXT).json()
    assert only["edition"] == 1


def test_only_the_head_signing_store_runs_the_schedule(running: seed.InProcessStore) -> None:
    on = running.settings.model_copy(update={"edition_schedule": "MON 12:00"})
    assert StoreState(on).schedule is not None
    assert StoreState(on.model_copy(update={"log_publisher": False})).schedule is None
    assert StoreState(running.settings).schedule is None  # off by default
