"""The demo scenario (issue 7): deterministic, valid, conflict-free, and it carries every
quirk the product must survive; its own expectation agrees with the test suite's
independent reference fold of CONTRACT section 3."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from typing import Any

import orjson
import pytest

from schemas import parse_report
from schemas.reference import parties
from services.demo.expectation import expected_metrics, headline
from services.demo.scenario import Scenario, build_scenario
from tests.support.reference import weekly_metrics

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return build_scenario(1.0)


def _first_sent(scenario: Scenario) -> dict[tuple[str, int], date]:
    first: dict[tuple[str, int], date] = {}
    for s in scenario.submissions:
        for r in s.reports:
            first.setdefault((r["report_id"], r["revision"]), s.day)
    return first


def test_same_seed_and_scale_give_the_same_scenario(scenario: Scenario) -> None:
    again = build_scenario(1.0)
    assert again.submissions == scenario.submissions
    assert build_scenario(0.5).submissions != scenario.submissions


def test_every_revision_is_valid_and_no_revision_conflicts(scenario: Scenario) -> None:
    content: dict[tuple[str, int], bytes] = {}
    owner: dict[str, str] = {}
    for submission in scenario.submissions:
        assert 1 <= len(submission.reports) <= 1000
        for report in submission.reports:
            parse_report(report, now=NOW)
            key = (report["report_id"], report["revision"])
            body = orjson.dumps(report, option=orjson.OPT_SORT_KEYS)
            assert content.setdefault(key, body) == body, f"conflicting content for {key}"
            assert owner.setdefault(report["report_id"], submission.org) == submission.org


def test_the_scenario_is_big_enough_and_carries_every_quirk(scenario: Scenario) -> None:
    latest = scenario.latest_revisions()
    kinds = defaultdict(int)
    for report in latest.values():
        kinds[report["kind"]] += 1
    assert len(latest) >= 2000
    assert kinds["violation"] >= 1500
    assert all(kinds[k] > 0 for k in ("delivery", "access_request", "verification", "designation"))
    assert len(scenario.organisations()) >= 5

    sent = _first_sent(scenario)
    occurred = {
        (r["report_id"], r["revision"]): datetime.fromisoformat(r["occurred_at"]).date()
        for s in scenario.submissions
        for r in s.reports
    }
    late = [k for k, day in sent.items() if (day - occurred[k]).days >= 28]
    corrections = [r for r in latest.values() if r["revision"] > 1 and not r.get("retracted")]
    retracted = [r for r in latest.values() if r.get("retracted")]
    resent = [s for s in scenario.submissions if s.resend]
    verdict_first = [
        r
        for r in latest.values()
        if r["kind"] == "verification"
        and sent[(r["report_id"], 1)] < sent.get((r["subject"], 1), date.max)
    ]
    assert len(late) >= 20, "reports weeks late"
    assert len(corrections) >= 50
    assert len(retracted) >= 10
    assert len(resent) >= 5
    assert verdict_first, "a verification that arrives before the violation it is about"
    statuses = {r["status"] for r in latest.values() if r["kind"] == "verification"}
    assert {"verified", "disputed", "rejected"} <= statuses

    designations = {r["report_id"]: r for r in latest.values() if r["kind"] == "designation"}
    assert designations["des-talbiseh-nusra"]["retracted"] is True
    assert designations["des-tadmur-isil"]["effective_to"].startswith("2016-03-27")
    idleb_filed = sent[("des-idleb-nusra", 1)]
    covered_earlier = [
        r
        for r in latest.values()
        if r["kind"] == "violation"
        and r["area"] == "idleb"
        and sent[(r["report_id"], 1)] < idleb_filed
    ]
    assert covered_earlier, "a designation that arrives after the reports it covers"


def test_the_access_backlog_is_the_munich_figure(scenario: Scenario) -> None:
    first_revisions = [
        r
        for s in scenario.submissions
        for r in s.reports
        if r["kind"] == "access_request" and r["revision"] == 1 and "-n" not in r["report_id"]
    ]
    backlog = {r["report_id"] for r in first_revisions}
    assert len(backlog) == 114
    munich = datetime(2016, 2, 12, tzinfo=UTC)
    approved_before = {
        r["report_id"]
        for s in scenario.submissions
        for r in s.reports
        if r["report_id"] in backlog
        and r["status"] == "approved"
        and datetime.fromisoformat(r["occurred_at"]) < munich
    }
    assert len(approved_before) == 13


def _envelopes(scenario: Scenario) -> list[dict[str, Any]]:
    return [
        {
            "report": parse_report(r, now=NOW).model_dump(mode="json"),
            "org": s.org,
            "content_hash": orjson.dumps(r, option=orjson.OPT_SORT_KEYS).decode(),
        }
        for s in scenario.submissions
        for r in s.reports
    ]


@pytest.mark.parametrize("scale", [0.1, 1.0])
def test_expectation_agrees_with_the_independent_reference_fold(scale: float) -> None:
    scenario = build_scenario(scale)
    designated = {code for code, party in parties().items() if party.designated}
    compliance, access = weekly_metrics(_envelopes(scenario), designated)
    expected = expected_metrics(scenario.latest_revisions(), scenario.owners())
    mine_compliance = {
        (week, area, party): row
        for week, rows in expected.compliance.items()
        for (area, party), row in rows.items()
    }
    mine_access = {
        (week, area): row for week, rows in expected.access.items() for area, row in rows.items()
    }
    assert mine_compliance == compliance
    assert mine_access == access


def test_the_ceasefire_cut_violations_in_the_report_week(scenario: Scenario) -> None:
    expected = expected_metrics(scenario.latest_revisions(), scenario.owners())
    before, during = headline(expected, "2016-W07"), headline(expected, "2016-W09")
    assert during.violations < before.violations / 2
    assert during.violations_exempt > 0
    assert during.violations_verified > 0
    assert during.requests_approved_to_date > 13
