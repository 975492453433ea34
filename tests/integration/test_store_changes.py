"""GET /v1/changes (CONTRACT 10): every accepted revision after a cursor, on the store's
real sink and chDB, paged until a client's copy equals the log."""

from __future__ import annotations

from collections import Counter
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
    home = tmp_path_factory.mktemp("changes-home")
    with seed.in_process_store(bootstrap, clickhouse_root, home, seed.publish) as running:
        yield running


def page(api: seed.InProcessStore, who: str, **params: Any) -> Any:
    headers = {"Authorization": f"Bearer {api.keys[who]}"}
    return api.client.get("/v1/changes", headers=headers, params=params)


def sync(api: seed.InProcessStore, who: str, limit: int) -> tuple[list[dict[str, Any]], str]:
    """What a client does: follow ``next`` until a page comes back empty."""
    copy: list[dict[str, Any]] = []
    after = ""
    while True:
        response = page(api, who, after=after, limit=limit)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["changes"]) <= limit
        if not body["changes"]:
            assert body["next"] == after  # nothing new: the same cursor again
            return copy, after
        copy.extend(body["changes"])
        after = body["next"]


def _expected(orgs: set[str] | None = None) -> Counter[tuple[str, int]]:
    """Every record of the seeded log (a redelivered record is a record of its own)."""
    return Counter(
        (e.report.report_id, e.report.revision)
        for e in seed.ENVELOPES
        if orgs is None or e.org in orgs
    )


def test_a_client_paging_through_gets_every_revision_once(api: seed.InProcessStore) -> None:
    copy, _ = sync(api, "monitor", limit=7)
    assert Counter((c["report_id"], c["revision"]) for c in copy) == _expected()
    positions = [(c["partition"], c["offset"]) for c in copy]
    assert len(set(positions)) == len(positions)
    for partition in {p for p, _ in positions}:  # each partition in offset order
        offsets = [o for p, o in positions if p == partition]
        assert offsets == sorted(offsets)
    retracted = [c for c in copy if c["retracted"]]
    assert {c["report_id"] for c in retracted} >= {"v-gos-3", "d-mad-5", "r-7"}
    assert all(c["report"]["report_id"] == c["report_id"] for c in copy)


def test_the_page_size_does_not_change_what_a_client_ends_with(api: seed.InProcessStore) -> None:
    small, cursor_small = sync(api, "monitor", limit=1)
    large, cursor_large = sync(api, "monitor", limit=1000)
    key = lambda c: (c["partition"], c["offset"])  # noqa: E731
    assert sorted(map(key, small)) == sorted(map(key, large))
    assert cursor_small == cursor_large


def test_a_partner_syncs_its_own_revisions_only(api: seed.InProcessStore) -> None:
    copy, _ = sync(api, "wfp", limit=50)
    assert copy
    assert {c["org"] for c in copy} == {"wfp"}
    assert Counter((c["report_id"], c["revision"]) for c in copy) == _expected({"wfp"})


def test_a_cursor_not_given_out_is_422(api: seed.InProcessStore) -> None:
    for bad in ("x", "0.1-", "0:12", "-1.2"):
        assert_problem(page(api, "monitor", after=bad), 422)
    assert_problem(page(api, "monitor", limit=0), 422)
