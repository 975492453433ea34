"""GET /v1/reports (drill-down): the current reports behind each number of the weekly
metrics and the weekly report, filtered, paged and validated; and a partner's own reports
(CONTRACT 1), never another organisation's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import store_seed as seed
from tests.support.problems import assert_problem

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api(
    bootstrap: str, clickhouse_root: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[seed.InProcessStore]:
    home = tmp_path_factory.mktemp("drilldown-home")
    with seed.in_process_store(bootstrap, clickhouse_root, home, seed.publish) as running:
        yield running


def get(api: seed.InProcessStore, who: str | None, path: str = "/v1/reports", **params: Any) -> Any:
    headers = {} if who is None else {"Authorization": f"Bearer {api.keys.get(who, who)}"}
    return api.client.get(path, headers=headers, params=params)


def ids(api: seed.InProcessStore, **params: Any) -> list[str]:
    response = get(api, "monitor", **params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == len(body["reports"])  # every test page here is complete
    return [r["report_id"] for r in body["reports"]]


def test_the_reports_behind_a_cell(api: seed.InProcessStore) -> None:
    week = seed.WEEK
    # the retracted v-gos-3 is not behind any number
    assert ids(api, week=week, kind="violation", area="madaya", party="gos") == ["v-gos-1"]
    assert ids(api, week=week, kind="violation", exempt=True) == ["v-isil-1", "v-raqqa-1"]
    verified = ids(api, week=week, kind="violation", exempt=False, verification="verified")
    assert verified == ["v-gos-1", "v-ru-1"]
    completed = ids(api, week=week, kind="delivery", status="completed", area="madaya")
    assert completed == ["d-mad-1", "d-mad-2"]
    assert ids(api, week=week, kind="access_request", status="submitted") == ["r-5"]
    assert ids(api, week="2016-W30") == []


def test_each_weekly_number_is_the_count_of_its_reports(api: seed.InProcessStore) -> None:
    rows = get(api, "monitor", "/v1/metrics/weekly", week=seed.WEEK).json()["rows"]
    assert rows
    for row in rows:
        cell = {"week": seed.WEEK, "kind": "violation", "area": row["area"], "party": row["party"]}
        behind = get(api, "monitor", **cell, exempt=False, limit=500).json()["reports"]
        assert len(behind) == row["violations"], row
        assert sum(r["killed"] for r in behind) == row["killed"]
        assert sum(r["verification"] == "verified" for r in behind) == row["violations_verified"]
        assert get(api, "monitor", **cell, exempt=True).json()["total"] == row["violations_exempt"]
    access = get(api, "monitor", "/v1/metrics/access", week=seed.WEEK).json()["rows"]
    for row in access:
        blocked = {"week": seed.WEEK, "kind": "delivery", "area": row["area"], "status": "blocked"}
        assert get(api, "monitor", **blocked).json()["total"] == row["deliveries_blocked"]


def test_a_report_row_carries_its_classification(api: seed.InProcessStore) -> None:
    (row,) = get(api, "taskforce", week=seed.WEEK, kind="violation", party="isil").json()["reports"]
    assert row == {
        "report_id": "v-isil-1", "kind": "violation", "revision": 1, "org": "sarc",
        "occurred_at": "2016-03-02T10:00:00Z", "received_at": "2016-03-02T10:00:00Z",
        "week": seed.WEEK, "area": "madaya", "party": "isil", "target": "civilians",
        "category": "shelling", "status": "", "killed": 3, "injured": 0, "beneficiaries": 0,
        "exempt": True, "exempt_reason": "designated_perpetrator", "verification": "unverified",
        "retracted": False,
    }  # fmt: skip


def test_pages_are_bounded(api: seed.InProcessStore) -> None:
    first = get(api, "monitor", kind="access_request", limit=2).json()
    assert (first["total"], first["limit"], first["offset"]) == (7, 2, 0)
    assert [r["report_id"] for r in first["reports"]] == ["r-1", "r-2"]
    third = get(api, "monitor", kind="access_request", limit=2, offset=4).json()
    assert [r["report_id"] for r in third["reports"]] == ["r-5", "r-6"]
    beyond = get(api, "monitor", kind="access_request", offset=100).json()
    assert (beyond["total"], beyond["reports"]) == (7, [])
    assert get(api, "monitor").json()["limit"] == 100
    for bad in ({"limit": 0}, {"limit": 501}, {"offset": -1}, {"limit": "many"}):
        assert_problem(get(api, "monitor", **bad), 422)


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"week": "2016-W60"}, ["query", "week"]),
        ({"area": "madaya' OR 1=1 --"}, ["query", "area"]),
        ({"party": "madaya"}, ["query", "party"]),
        ({"kind": "rumour"}, ["query", "kind"]),
        ({"status": "lost"}, ["query", "status"]),
        ({"verification": "probably"}, ["query", "verification"]),
        ({"exempt": "maybe"}, ["query", "exempt"]),
    ],
)
def test_bad_filters_are_422(
    api: seed.InProcessStore, params: dict[str, str], loc: list[str]
) -> None:
    body = assert_problem(get(api, "monitor", **params), 422)
    assert body["errors"][0]["loc"] == loc


def test_roles(api: seed.InProcessStore) -> None:
    for reader in ("monitor", "taskforce", "admin"):
        assert get(api, reader, week=seed.WEEK).status_code == 200
    assert_problem(get(api, None), 401)
    assert_problem(get(api, "revoked"), 401)


def listed(api: seed.InProcessStore, who: str, **params: Any) -> list[str]:
    """Every report id of the list, following the pages."""
    found: list[str] = []
    while True:
        response = get(api, who, **params, limit=3, offset=len(found))
        assert response.status_code == 200, response.text
        body = response.json()
        found += [r["report_id"] for r in body["reports"]]
        if len(found) >= body["total"]:
            assert len(found) == body["total"]
            return found


def own(org: str, *, retracted: bool = False, **where: Any) -> set[str]:
    """The seeded current reports of ``org`` (from the seed, not from the store)."""
    return {
        r.report_id for r in seed.CANONICAL
        if r.org == org and (retracted or not r.retracted)
        and all(getattr(r, k) == v for k, v in where.items())
    }  # fmt: skip


def test_a_partner_lists_its_own_reports_and_no_one_elses(api: seed.InProcessStore) -> None:
    """CONTRACT 1: a partner reads and lists its own reports, with the key it posts with."""
    for org in ("sarc", "wfp"):
        mine = listed(api, org)
        assert set(mine) == own(org) != set()
        assert len(mine) == len(set(mine))
    assert set(listed(api, "wfp", kind="delivery", area="fouah")) == {"d-fou-1", "d-fou-2"}
    assert set(listed(api, "wfp", week=seed.WEEK, kind="access_request")) == own(
        "wfp", week=seed.WEEK, kind="access_request"
    )
    assert listed(api, "sarc", kind="delivery") == []  # wfp's, not sarc's
    with_withdrawn = set(listed(api, "wfp", retracted=True))
    assert with_withdrawn == own("wfp", retracted=True)
    assert with_withdrawn - own("wfp") == {"d-mad-5", "r-7"}


def test_updated_after_gives_the_reports_whose_current_revision_came_since(
    api: seed.InProcessStore,
) -> None:
    since = seed.at("03-03")
    expected = {r.report_id for r in seed.CANONICAL
                if r.org == "wfp" and not r.retracted and r.received_at >= since}  # fmt: skip
    assert set(listed(api, "wfp", updated_after="2016-03-03T10:00:00Z")) == expected
    assert expected
    assert expected < own("wfp")
    body = assert_problem(get(api, "wfp", updated_after="yesterday"), 422)
    assert body["errors"][0]["loc"] == ["query", "updated_after"]


def test_a_listed_row_says_whether_it_was_withdrawn(api: seed.InProcessStore) -> None:
    rows = get(api, "monitor", kind="delivery", retracted=True, limit=500).json()["reports"]
    assert {r["report_id"] for r in rows if r["retracted"]} == {"d-mad-5"}
