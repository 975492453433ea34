"""GET /v1/metrics/coverage (CONTRACT 9): one row per area, "no reports" told apart from
"no violations", on the store's real sink and chDB with the seeded weeks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from schemas.reference import areas
from tests.support import store_seed as seed
from tests.support.problems import assert_problem

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api(
    bootstrap: str, clickhouse_root: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[seed.InProcessStore]:
    home = tmp_path_factory.mktemp("coverage-home")
    with seed.in_process_store(bootstrap, clickhouse_root, home, seed.publish) as running:
        yield running


def coverage(api: seed.InProcessStore, who: str = "monitor", **params: Any) -> Any:
    headers = {"Authorization": f"Bearer {api.keys[who]}"}
    return api.client.get("/v1/metrics/coverage", headers=headers, params=params)


def by_area(api: seed.InProcessStore, week: str) -> dict[str, dict[str, Any]]:
    response = coverage(api, week=week)
    assert response.status_code == 200, response.text
    assert response.json()["week"] == week
    return {row["area"]: row for row in response.json()["rows"]}


def test_every_area_has_a_row_and_counts_current_field_reports(
    api: seed.InProcessStore,
) -> None:
    rows = by_area(api, seed.WEEK)
    assert set(rows) == set(areas())
    # Madaya: two violations (sarc; a third is retracted), four deliveries and three
    # access requests (wfp; a fifth delivery and a fourth request are retracted)
    assert rows["madaya"] == {
        "area": "madaya", "reporting_orgs": 2, "reports": 9,
        "last_report_at": "2016-03-04T10:00:00Z", "monitored": True,
    }  # fmt: skip
    assert rows["daraya"]["reports"] == 2
    assert rows["daraya"]["reporting_orgs"] == 1
    assert rows["fouah"]["reports"] == 1
    assert rows["raqqa"]["reports"] == 1  # exempt violations are reports from the area too


def test_an_area_nobody_reported_from_is_unmonitored_and_says_since_when(
    api: seed.InProcessStore,
) -> None:
    rows = by_area(api, seed.NEXT)
    assert rows["madaya"]["monitored"]
    assert rows["madaya"]["reports"] == 3
    silent = rows["daraya"]
    assert silent == {
        "area": "daraya", "reporting_orgs": 0, "reports": 0,
        "last_report_at": "2016-03-05T10:00:00Z", "monitored": False,
    }  # fmt: skip
    never = [
        row for code, row in rows.items() if code not in {"madaya", "daraya", "fouah", "raqqa"}
    ]
    assert never
    assert all(r["last_report_at"] is None and not r["monitored"] for r in never)


def test_one_area_and_the_errors(api: seed.InProcessStore) -> None:
    one = coverage(api, week=seed.WEEK, area="fouah").json()["rows"]
    assert [row["area"] for row in one] == ["fouah"]
    assert_problem(coverage(api, week="2016-W99"), 422)
    assert_problem(coverage(api, week=seed.WEEK, area="atlantis"), 422)
    assert_problem(coverage(api, "sarc", week=seed.WEEK), 403)
