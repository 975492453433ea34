"""The raw-log recomputation (services/store/recompute.py) on the real ClickHouse engine:
it equals the independent reference fold over random logs, sees only what was received
by ``as_of``, and makes `truce verify` catch a classification bug in the stream, over many
weeks in a fixed number of queries (issue 22)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

import streams.logic.classification
from core.clickhouse import dsn_database, with_database
from schemas.figures import COMPLIANCE
from services.store import recompute as rc
from services.store.database import Database
from services.store.derived import snapshot_table
from tests.support.pipeline import run
from tests.support.raw_log import (
    DESIGNATED,
    DESIGNATED_CODES,
    envelope,
    raw_logs,
    raw_rows,
    received,
    reference_rows,
    store,
    stream_rows,
)
from tests.support.reference import weekly_metrics

pytestmark = pytest.mark.integration

W09 = "2016-W09"
TABLES = ("raw_reports", "canonical_reports", "weekly_compliance_snapshots",
          "weekly_access_snapshots")  # fmt: skip


@pytest.fixture(scope="module")
def database(clickhouse_root: str) -> Iterator[Database]:
    dsn = with_database(clickhouse_root, f"recompute_{uuid.uuid4().hex[:12]}")
    db = Database(dsn)
    db.migrate()
    try:
        yield db
    finally:
        db.client.command(f"DROP DATABASE IF EXISTS `{dsn_database(dsn)}`")
        db.close()


@pytest.fixture
def db(database: Database) -> Database:
    """The module's database, emptied: each test starts from no records."""
    _empty(database)
    return database


def _empty(db: Database) -> None:
    for table in TABLES:
        db.client.command(f"TRUNCATE TABLE {table}")


# -- equal to the reference fold -----------------------------------------------------------
@given(log=raw_logs())
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_recomputation_equals_the_reference_fold(database: Database, log: Any) -> None:
    _empty(database)
    store(database, raw_rows(log))
    assert rc.recompute(database) == reference_rows(*weekly_metrics(log, DESIGNATED_CODES))
    # what was known when half of the log had arrived
    half = log[: len(log) // 2]
    as_of = received(len(half) - 1) if half else received(-1)
    expected = reference_rows(*weekly_metrics(half, DESIGNATED_CODES))
    assert rc.recompute(database, as_of=as_of) == expected


# -- as_of ---------------------------------------------------------------------------------
def violation(rid: str, revision: int = 1, **fields: Any) -> dict[str, Any]:
    return {
        "report_id": rid, "revision": revision, "kind": "violation",
        "occurred_at": "2016-03-01T10:00:00Z", "retracted": False, "area": "raqqa",
        "perpetrator": "gos", "target": "civilians", "category": "shelling", "killed": 2,
        "injured": 1, "source": "witness", "confidence": "medium", **fields,
    }  # fmt: skip


DESIGNATION = {
    "report_id": "des-raqqa", "revision": 1, "kind": "designation",
    "occurred_at": "2016-02-20T00:00:00Z", "retracted": False, "area": "raqqa", "party": "isil",
}  # fmt: skip
VERIFICATION = {
    "report_id": "ver-1", "revision": 1, "kind": "verification",
    "occurred_at": "2016-03-02T00:00:00Z", "retracted": False, "subject": "v-2",
    "status": "verified",
}  # fmt: skip

# v-1 in raqqa (covered by the late designation), v-2 in madaya (verified late), a
# correction of v-2 received last: each position is a minute after the one before.
AS_OF_LOG = [
    envelope(violation("v-1"), "sarc", 0),
    envelope(violation("v-2", area="madaya"), "sarc", 1),
    envelope(DESIGNATION, "taskforce", 2),
    envelope(VERIFICATION, "taskforce", 3),
    envelope(violation("v-2", 2, area="madaya", killed=7), "sarc", 4),
]


def figures(violations: int, verified: int, exempt: int, killed: int, injured: int) -> Any:
    """A row of violations in no incident: each is also an event of one source."""
    events = (violations, exempt, 0, killed, injured)
    values = (violations, verified, exempt, killed, injured, *events)
    return dict(zip(COMPLIANCE.names, values, strict=True))


def compliance_at(db: Database, as_of: datetime | None) -> dict[tuple[str, str], Any]:
    rows = rc.recompute(db, as_of=as_of)["compliance"]
    return {(r["area"], r["party"]): {n: r[n] for n in COMPLIANCE.names} for r in rows}


def test_as_of_counts_only_what_was_received_by_then(db: Database) -> None:
    store(db, raw_rows(AS_OF_LOG))
    before_designation = received(1)
    assert compliance_at(db, before_designation) == {
        ("raqqa", "gos"): figures(1, 0, 0, 2, 1),
        ("madaya", "gos"): figures(1, 0, 0, 2, 1),
    }
    assert compliance_at(db, received(2)) == {  # the designation is known: v-1 exempt
        ("raqqa", "gos"): figures(0, 0, 1, 0, 0),
        ("madaya", "gos"): figures(1, 0, 0, 2, 1),
    }
    assert compliance_at(db, received(3)) == {  # and the verification
        ("raqqa", "gos"): figures(0, 0, 1, 0, 0),
        ("madaya", "gos"): figures(1, 1, 0, 2, 1),
    }
    now = {("raqqa", "gos"): figures(0, 0, 1, 0, 0), ("madaya", "gos"): figures(1, 1, 0, 7, 1)}
    assert compliance_at(db, None) == now
    assert compliance_at(db, received(4)) == now
    assert compliance_at(db, datetime(2016, 3, 1, tzinfo=UTC)) == {}  # nothing received yet
    (v1,) = [r for r in rc.classified_reports(db, as_of=before_designation) if r["report_id"]
             == "v-1"]  # fmt: skip
    assert (v1["exempt"], v1["week"], v1["verification"]) == (False, W09, "unverified")


def test_one_week_alone(db: Database) -> None:
    store(db, raw_rows([*AS_OF_LOG, envelope(violation("v-3", occurred_at=
                        "2016-03-08T10:00:00Z"), "sarc", 5)]))  # fmt: skip
    weeks = {r["week"] for r in rc.recompute(db)["compliance"]}
    assert weeks == {W09, "2016-W10"}
    assert {r["week"] for r in rc.recompute(db, week="2016-W10")["compliance"]} == {"2016-W10"}
    assert rc.verify(db, "2016-W10")["weeks"] == ["2016-W10"]


# -- verify catches a classification bug in the stream ------------------------------------
def ignoring_designations(original: Callable[..., str]) -> Callable[..., str]:
    """The stream's exemption, forgetting that designations cover areas."""
    return lambda violation, designated, _designations: original(violation, designated, [])


def ignoring_designated_parties(original: Callable[..., str]) -> Callable[..., str]:
    """The stream's exemption, forgetting which parties are designated."""
    return lambda violation, _designated, designations: original(violation, {}, designations)


BUGGY_LOG = [
    envelope(violation("v-raqqa"), "sarc", 0),  # covered by the late designation
    envelope(violation("v-isil", area="madaya", perpetrator="isil", killed=3), "sarc", 1),
    envelope(violation("v-2", area="madaya"), "sarc", 2),
    envelope(VERIFICATION, "taskforce", 3),
    envelope(DESIGNATION, "taskforce", 4),
]


def stream_then_store(db: Database, log: list[dict[str, Any]]) -> None:
    """The real pure stream stages over the log, their outputs and the raw log stored."""
    sinks = run(log, DESIGNATED)
    store(db, [*raw_rows(log), *stream_rows(sinks.events.values(), sinks.metrics.values())])


def test_verify_agrees_with_a_correct_stream(db: Database) -> None:
    stream_then_store(db, BUGGY_LOG)
    result = rc.verify(db)
    assert result == {
        "weeks": [W09], "ok": True, "differences": [], "misclassified": [],
        "misclassified_total": 0,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("bug", "report_id", "area", "party", "killed"),
    [(ignoring_designations, "v-raqqa", "raqqa", "gos", 2),
     (ignoring_designated_parties, "v-isil", "madaya", "isil", 3)],
)  # fmt: skip
def test_verify_catches_a_stream_that_misclassifies(
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
    bug: Callable[[Callable[..., str]], Callable[..., str]],
    report_id: str,
    area: str,
    party: str,
    killed: int,
) -> None:
    monkeypatch.setattr(
        streams.logic.classification, "exemption", bug(streams.logic.classification.exemption)
    )
    stream_then_store(db, BUGGY_LOG)
    result = rc.verify(db)
    assert result["ok"] is False
    assert result["weeks"] == [W09]
    assert result["differences"] == [
        {
            "metric": "weekly",
            "week": W09,
            "key": {"area": area, "party": party},
            "streamed": figures(1, 0, 0, killed, 1),
            "recounted": figures(0, 0, 1, 0, 0),
        }
    ]
    (wrong,) = result["misclassified"]
    assert result["misclassified_total"] == 1
    assert wrong["report_id"] == report_id
    assert (wrong["streamed"]["exempt"], wrong["recounted"]["exempt"]) == (False, True)
    assert {k: v for k, v in wrong["streamed"].items() if k != "exempt"} == {
        k: v for k, v in wrong["recounted"].items() if k != "exempt"
    }


# -- verify in one pass: no query per week (issue 22) -----------------------------------
MONDAY = datetime(2016, 1, 4, 10, tzinfo=UTC)  # 2016-W01


def _at(week: int) -> str:
    return (MONDAY + timedelta(weeks=week)).isoformat().replace("+00:00", "Z")


def weekly_log(weeks: int) -> list[dict[str, Any]]:
    """Per week: two partners' violations and an incident listing both, a lone violation
    and a delivery."""
    reports: list[tuple[dict[str, Any], str]] = []
    for w in range(weeks):
        at = _at(w)
        violation = {"kind": "violation", "revision": 1, "occurred_at": at, "retracted": False,
                     "area": "raqqa", "perpetrator": "gos", "target": "civilians",
                     "category": "shelling", "killed": 1, "injured": 2, "source": "witness",
                     "confidence": "medium"}  # fmt: skip
        reports += [
            ({**violation, "report_id": f"a{w}"}, "sarc"),
            ({**violation, "report_id": f"b{w}"}, "wfp"),
            ({**violation, "report_id": f"c{w}", "area": "madaya"}, "sarc"),
            ({"report_id": f"i{w}", "revision": 1, "kind": "incident", "occurred_at": at,
              "retracted": False, "area": "raqqa", "members": [f"a{w}", f"b{w}"],
              "perpetrator": "gos", "target": "civilians", "category": "shelling",
              "killed": 1, "injured": 2}, "taskforce"),
            ({"report_id": f"d{w}", "revision": 1, "kind": "delivery", "occurred_at": at,
              "retracted": False, "area": "madaya", "agency": "WFP", "modality": "convoy",
              "status": "completed", "beneficiaries": 100 + w}, "wfp"),
        ]  # fmt: skip
    return [envelope(report, org, i) for i, (report, org) in enumerate(reports)]


def counted_queries(db: Database, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every query the client is asked, from now on."""
    sent: list[str] = []
    query = db.client.query

    def counting(sql: str, *args: Any, **kwargs: Any) -> Any:
        sent.append(sql)
        return query(sql, *args, **kwargs)

    monkeypatch.setattr(db.client, "query", counting)
    return sent


def test_verify_over_many_weeks_is_a_fixed_number_of_queries_and_finds_one_wrong_week(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    weeks = 60
    log = weekly_log(weeks)
    sinks = run(log, DESIGNATED)
    store(db, [*raw_rows(log), *stream_rows(sinks.events.values(), sinks.metrics.values())])
    sent = counted_queries(db, monkeypatch)
    agreed = rc.verify(db)
    assert len(sent) <= 2  # the figures, then the reports: none per week
    assert agreed["ok"] is True, agreed["differences"][:3]
    assert len(agreed["weeks"]) == weeks
    wrong_week = agreed["weeks"][37]

    # the stream published one wrong figure in one week: a later snapshot version
    (published,) = db.rows(
        f"SELECT * FROM {snapshot_table(rc.COMPLIANCE)} FINAL "
        "WHERE week = {week:String} AND area = 'raqqa' AND party = 'gos'",
        week=wrong_week,
    )
    assert (published["incidents"], published["incidents_corroborated"]) == (1, 1)
    wrong = {**published, "incidents_corroborated": 0, "version": published["version"] + 1}
    db.insert(snapshot_table(rc.COMPLIANCE), [list(wrong.values())], list(wrong))
    sent.clear()
    result = rc.verify(db)
    assert len(sent) <= 2
    assert result["ok"] is False
    assert len(result["weeks"]) == weeks
    names = rc.COMPLIANCE.names
    assert result["differences"] == [
        {
            "metric": "weekly",
            "week": wrong_week,
            "key": {"area": "raqqa", "party": "gos"},
            "streamed": {n: int(wrong[n]) for n in names},
            "recounted": {n: int(published[n]) for n in names},
        }
    ]
    assert (result["misclassified"], result["misclassified_total"]) == ([], 0)

    # one week alone: the same queries with a filter
    sent.clear()
    alone = rc.verify(db, wrong_week)
    assert len(sent) <= 2
    assert (alone["weeks"], alone["differences"]) == ([wrong_week], result["differences"])
    assert rc.verify(db, agreed["weeks"][36])["ok"] is True
