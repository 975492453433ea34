"""GET /v1/incidents/candidates (CONTRACT 9): current violations from different
organisations that look like one event, on the store's real sink and chDB. The records are
what the stream would have published; the groups they must give are written out here."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from schemas import CanonicalReport, TopicNames
from tests.support import store_seed as seed
from tests.support.problems import assert_problem

pytestmark = pytest.mark.integration


def when(day: str, hour: int, minute: int = 0) -> datetime:
    month, dom = (int(x) for x in day.split("-"))
    return datetime(2016, month, dom, hour, minute, tzinfo=UTC)


def hit(rid: str, org: str, moment: datetime, area: str, party: str = "gos", **fields: Any) -> Any:
    fields = {"received_at": moment, "occurred_at": moment, "week": seed.week_of(moment),
              "org": org, **fields}  # fmt: skip
    return seed.hit(rid, "03-01", area, party, **fields)


RECORDS: list[CanonicalReport] = [
    # Madaya, 1 March: three partners within 40 minutes, one unsure who fired and how
    hit("m-sarc", "sarc", when("03-01", 10), "madaya", killed=2, injured=5),
    hit("m-shrc", "shrc", when("03-01", 10, 5), "madaya", killed=3, injured=4),
    hit("m-smn", "smn", when("03-01", 10, 40), "madaya", "unknown", category="other",
        target="infrastructure", killed=1),
    # the same partner again within the window: a second event, alone
    hit("m-sarc-2", "sarc", when("03-01", 11), "madaya"),
    # another party's airstrike an hour later: not compatible with the gos shelling
    hit("m-ru", "lcc", when("03-01", 11, 10), "madaya", "ru", category="airstrike"),
    # Daraya: 150 minutes apart (window 120); then incompatible perpetrators
    hit("d-1", "sarc", when("03-02", 10), "daraya"),
    hit("d-2", "shrc", when("03-02", 12, 30), "daraya"),
    hit("d-3", "sarc", when("03-03", 10), "daraya"),
    hit("d-4", "shrc", when("03-03", 10, 30), "daraya", "ru"),
    # Fouah: the second report is retracted
    hit("f-1", "sarc", when("03-04", 9), "fouah"),
    hit("f-2", "shrc", when("03-04", 9, 10), "fouah", retracted=True, counts=False),
    # Zabadani: late on Sunday and just after midnight: W09's candidate, not W10's
    hit("z-1", "sarc", when("03-06", 23, 30), "zabadani", killed=1),
    hit("z-2", "shrc", when("03-07", 0, 20), "zabadani", injured=2),
    # Douma, exempt violations are violations too
    hit("x-1", "sarc", when("03-02", 8), "douma", "isil", exempt=True,
        exempt_reason="designated_perpetrator"),
    hit("x-2", "lcc", when("03-02", 8, 15), "douma", "isil", exempt=True,
        exempt_reason="designated_perpetrator"),
]  # fmt: skip
LINKED = [  # Harasta: SARC's report already belongs to an incident; the other two remain
    hit("h-1", "sarc", when("03-05", 14), "harasta", incident="incident-h", event=False, sources=0),
    hit("h-2", "shrc", when("03-05", 14, 5), "harasta"),
    hit("h-3", "lcc", when("03-05", 14, 30), "harasta"),
]
MOVED = [  # revision 1 sat next to the Madaya event; revision 2 moved it to Bqine
    hit("moved", "lcc", when("03-01", 10, 10), "madaya"),
    hit("moved", "lcc", when("03-05", 10, 10), "bqine", revision=2, version=(1 << 40) + 1),
]


def publish(bootstrap: str, names: TopicNames) -> None:
    seed.publish_records(bootstrap, names, canonical=[*RECORDS, *LINKED, *MOVED])


@pytest.fixture(scope="module")
def api(
    bootstrap: str, clickhouse_root: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[seed.InProcessStore]:
    home = tmp_path_factory.mktemp("candidates-home")
    with seed.in_process_store(bootstrap, clickhouse_root, home, publish) as running:
        yield running


def get(api: seed.InProcessStore, who: str = "taskforce", **params: Any) -> Any:
    headers = {"Authorization": f"Bearer {api.keys[who]}"}
    return api.client.get("/v1/incidents/candidates", headers=headers, params=params)


def test_groups_and_their_reconciled_incidents(api: seed.InProcessStore) -> None:
    response = get(api, week=seed.WEEK)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["week"] == seed.WEEK
    assert body["window_minutes"] == 120
    found = {c["area"]: c for c in body["candidates"]}
    assert [c["members"] for c in body["candidates"]] == [
        ["x-1", "x-2"],
        ["h-2", "h-3"],  # h-1 is linked already
        ["m-sarc", "m-shrc", "m-smn"],
        ["z-1", "z-2"],
    ]
    madaya = found["madaya"]
    assert madaya["orgs"] == ["sarc", "shrc", "smn"]
    assert madaya["proposal"] == {
        "area": "madaya", "perpetrator": "gos", "target": "civilians", "category": "shelling",
        "killed": 3, "injured": 5, "occurred_at": "2016-03-01T10:00:00Z",
    }  # fmt: skip
    incident = madaya["incident"]
    assert incident["kind"] == "incident"
    assert incident["members"] == ["m-sarc", "m-shrc", "m-smn"]
    assert incident["report_id"].startswith("incident-")
    assert {k: incident[k] for k in madaya["proposal"]} == madaya["proposal"]
    assert set(incident) == {"report_id", "kind", "members", "area", "perpetrator", "target",
                             "category", "killed", "injured", "occurred_at"}  # fmt: skip
    assert [r["org"] for r in madaya["reports"]] == ["sarc", "shrc", "smn"]
    assert found["zabadani"]["proposal"]["killed"] == 1
    assert found["zabadani"]["proposal"]["injured"] == 2
    assert found["douma"]["proposal"]["perpetrator"] == "isil"


def test_a_group_belongs_to_the_week_of_its_earliest_report(api: seed.InProcessStore) -> None:
    assert get(api, week=seed.NEXT).json()["candidates"] == []
    assert get(api, week=seed.PREVIOUS).json()["candidates"] == []


def test_only_the_task_force_sees_candidates(api: seed.InProcessStore) -> None:
    assert get(api, "admin", week=seed.WEEK).status_code == 200
    assert_problem(get(api, "monitor", week=seed.WEEK), 403)
    assert_problem(get(api, "sarc", week=seed.WEEK), 403)
    assert_problem(get(api, week="2016-W99"), 422)
    assert_problem(get(api, "revoked", week=seed.WEEK), 401)


def test_the_window_is_a_setting(
    bootstrap: str, clickhouse_root: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    home = tmp_path_factory.mktemp("candidates-wide")
    with seed.in_process_store(
        bootstrap, clickhouse_root, home, publish, candidate_window_minutes=180
    ) as wide:
        body = get(wide, week=seed.WEEK).json()
    assert body["window_minutes"] == 180
    assert ["d-1", "d-2"] in [c["members"] for c in body["candidates"]]
