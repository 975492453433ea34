"""Restatements (CONTRACT section 7) against the tests' reference fold: over random logs
cut at a random position (an edition's log position), the store's restatements of every
week name exactly the reports whose contribution to a changed figure differs, with the
contract's reasons, and the figures before and after equal the reference's."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.clickhouse import dsn_database, with_database
from services.store.database import Database
from services.store.weekly.restate import restatements
from tests.support.raw_log import (
    DESIGNATED_CODES,
    envelope,
    partition_of,
    raw_logs,
    raw_rows,
    store,
)
from tests.support.reference import _week, classify, current_reports, with_lone_events

pytestmark = pytest.mark.integration

WEEKS = ("2015-W53", "2016-W08", "2016-W09", "2016-W10")
"""Every week raw_log's dates fall in."""
COUNTED = ("violation", "delivery", "access_request", "incident")


@pytest.fixture(scope="module")
def database(clickhouse_root: str) -> Iterator[Database]:
    dsn = with_database(clickhouse_root, f"restate_{uuid.uuid4().hex[:12]}")
    db = Database(dsn)
    db.migrate()
    try:
        yield db
    finally:
        db.client.command(f"DROP DATABASE IF EXISTS `{dsn_database(dsn)}`")
        db.close()


def contributions(report: dict[str, Any]) -> dict[tuple[str, str, str | None], int]:
    """What one classified report adds to the figures of its cell, from CONTRACT section 3's
    words (written apart from schemas/figures.py)."""
    kind, area = report["kind"], report["area"]
    events = _event_contributions(report)
    if kind == "incident":
        return events
    if kind == "violation":
        party = report["perpetrator"]
        if report["exempt"]:
            return {("violations_exempt", area, party): 1} | events
        found = {
            ("violations", area, party): 1,
            ("killed", area, party): report.get("killed", 0),
            ("injured", area, party): report.get("injured", 0),
        }
        if report["verification"] == "verified":
            found[("violations_verified", area, party)] = 1
        return {k: v for k, v in found.items() if v} | events
    if kind == "delivery":
        found = {(f"deliveries_{report['status']}", area, None): 1}
        if report["status"] in ("completed", "partial") and report["beneficiaries"]:
            found[("beneficiaries", area, None)] = report["beneficiaries"]
        return found
    if kind == "access_request":
        return {(f"requests_{report['status']}", area, None): 1}
    return {}


def _event_contributions(report: dict[str, Any]) -> dict[tuple[str, str, str | None], int]:
    """CONTRACT section 9: an incident, or a violation in no incident, is one event."""
    if not report["event"]:
        return {}
    cell = (report["area"], report["perpetrator"])
    if report["exempt"]:
        return {("incidents_exempt", *cell): 1}
    found = {
        ("incidents", *cell): 1,
        ("incidents_corroborated", *cell): int(report["sources"] >= 2),
        ("incident_killed", *cell): report.get("killed", 0),
        ("incident_injured", *cell): report.get("injured", 0),
    }
    return {k: v for k, v in found.items() if v}


def expected(before: list[dict[str, Any]], log: list[dict[str, Any]], week: str) -> Any:
    then = {r: x for r, x in classify(before, DESIGNATED_CODES).items()
            if x["kind"] in COUNTED and _week(x["occurred_at"]) == week}  # fmt: skip
    now = {r: x for r, x in classify(log, DESIGNATED_CODES).items()
           if x["kind"] in COUNTED and _week(x["occurred_at"]) == week}  # fmt: skip
    known, current = current_reports(before), current_reports(log)

    def reasons(rid: str) -> list[str]:
        if rid not in then:
            return ["corrected" if rid in known else "late"]
        if rid not in now:
            return ["retracted" if current[rid].get("retracted") else "corrected"]
        a, b = then[rid], now[rid]
        found = [
            reason
            for reason, changed in (
                ("corrected", a["revision"] != b["revision"]),
                ("reclassified", a["exempt"] != b["exempt"]),
                ("verification", a["verification"] != b["verification"]),
                ("incident", (a["event"], a["sources"]) != (b["event"], b["sources"])),
            )
            if changed
        ]
        return found or ["corrected"]

    was: dict[Any, Counter[str]] = {}
    is_: dict[Any, Counter[str]] = {}
    for side, reports in ((was, then), (is_, now)):
        for rid, report in reports.items():
            for cell, value in contributions(report).items():
                side.setdefault(cell, Counter())[rid] += value
    result = {}
    for cell in set(was) | set(is_):
        a, b = was.get(cell, Counter()), is_.get(cell, Counter())
        if sum(a.values()) != sum(b.values()):
            changed = sorted(r for r in set(a) | set(b) if a[r] != b[r])
            result[cell] = (sum(a.values()), sum(b.values()),
                            [(r, why) for r in changed for why in reasons(r)])  # fmt: skip
    return result


def cut(log: list[dict[str, Any]], position: int) -> dict[int, int]:
    """The per-partition end offsets of the log's first ``position`` records (raw_rows
    numbers each partition's records in log order)."""
    ends: Counter[int] = Counter(partition_of(r["report"]["report_id"]) for r in log[:position])
    return dict(ends)


@given(log=raw_logs(), data=st.data())
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_restatements_name_exactly_the_reports_that_changed(
    database: Database, log: list[dict[str, Any]], data: st.DataObject
) -> None:
    for table in ("raw_reports",):
        database.client.command(f"TRUNCATE TABLE {table}")
    store(database, raw_rows(log))
    position = data.draw(st.integers(0, len(log)), label="edition position")
    for week in WEEKS:
        got = {
            (x.figure, x.area, x.party): (x.was, x.now,
                                          [(c.report_id, c.reason) for c in x.because])
            for x in restatements(database, week, cut(log, position))
        }  # fmt: skip
        assert got == expected(log[:position], log, week), week


def _violation(rid: str, revision: int = 1, **fields: Any) -> dict[str, Any]:
    return {
        "report_id": rid, "revision": revision, "kind": "violation",
        "occurred_at": "2016-03-01T10:00:00Z", "retracted": False, "area": "madaya",
        "perpetrator": "gos", "target": "civilians", "category": "shelling", "killed": 2,
        "injured": 1, "source": "witness", "confidence": "medium", **fields,
    }  # fmt: skip


def test_each_reason_on_a_known_log(database: Database) -> None:
    """One report per reason, each changed after the edition (position 4)."""
    log = [
        envelope(_violation("v-verified"), "sarc", 0),
        envelope(_violation("v-corrected"), "sarc", 1),
        envelope(_violation("v-retracted", area="daraya"), "sarc", 2),
        envelope(_violation("v-designated", area="raqqa"), "sarc", 3),
        # the edition
        envelope({"report_id": "ver-1", "revision": 1, "kind": "verification",
                  "occurred_at": "2016-03-02T00:00:00Z", "retracted": False,
                  "subject": "v-verified", "status": "verified"}, "taskforce", 4),
        envelope(_violation("v-corrected", 2, killed=5), "sarc", 5),
        envelope(_violation("v-retracted", 2, area="daraya", retracted=True), "sarc", 6),
        envelope({"report_id": "des-raqqa", "revision": 1, "kind": "designation",
                  "occurred_at": "2016-02-20T00:00:00Z", "retracted": False, "area": "raqqa",
                  "party": "isil"}, "taskforce", 7),
        envelope(_violation("v-late"), "sarc", 8),
    ]  # fmt: skip
    database.client.command("TRUNCATE TABLE raw_reports")
    store(database, raw_rows(log))
    got = {
        (x.figure, x.area, x.party): (x.was, x.now, [(c.report_id, c.reason) for c in x.because])
        for x in restatements(database, "2016-W09", cut(log, 4))
    }
    reports = {
        ("violations", "madaya", "gos"): (2, 3, [("v-late", "late")]),
        ("violations_verified", "madaya", "gos"): (0, 1, [("v-verified", "verification")]),
        ("killed", "madaya", "gos"): (4, 9, [("v-corrected", "corrected"), ("v-late", "late")]),
        ("injured", "madaya", "gos"): (2, 3, [("v-late", "late")]),
        ("violations", "daraya", "gos"): (1, 0, [("v-retracted", "retracted")]),
        ("killed", "daraya", "gos"): (2, 0, [("v-retracted", "retracted")]),
        ("injured", "daraya", "gos"): (1, 0, [("v-retracted", "retracted")]),
        ("violations", "raqqa", "gos"): (1, 0, [("v-designated", "reclassified")]),
        ("violations_exempt", "raqqa", "gos"): (0, 1, [("v-designated", "reclassified")]),
        ("killed", "raqqa", "gos"): (2, 0, [("v-designated", "reclassified")]),
        ("injured", "raqqa", "gos"): (1, 0, [("v-designated", "reclassified")]),
    }
    # no incident links them: each violation is also an event, restated with it
    assert got == with_lone_events(reports)
    assert got == expected(log[:4], log, "2016-W09")
