"""The demo scenario (issue 7): deterministic, valid, conflict-free, and it carries every
quirk the product must survive; its own expectation agrees with the test suite's
independent reference fold of CONTRACT section 3."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
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


# -- issue 19: cross-partner duplicates and a blackout --------------------------------------
def _owners(scenario: Scenario) -> dict[str, str]:
    return {r["report_id"]: s.org for s in scenario.submissions for r in s.reports}


def test_the_same_events_come_from_two_or_three_partners(scenario: Scenario) -> None:
    """Every co-reporter's violation is one event with the area monitor's report of it:
    the incident candidates' rule (services/store/candidates.py) puts it in a group of
    two or three organisations, minutes apart, casualties sometimes different."""
    from services.store.candidates import Member, group

    owners = _owners(scenario)
    co_orgs = set(scenario.timeline.duplicates.partners)
    by_area: defaultdict[str, list[Member]] = defaultdict(list)
    for r in scenario.latest_revisions().values():
        if r["kind"] == "violation" and not r.get("retracted"):
            fields = {k: r[k] for k in ("perpetrator", "target", "category", "killed", "injured")}
            by_area[r["area"]].append(Member(
                report_id=r["report_id"], org=owners[r["report_id"]],
                occurred_at=datetime.fromisoformat(r["occurred_at"]), **fields,
            ))  # fmt: skip
    groups = [g for members in by_area.values() for g in group(members, timedelta(minutes=120))]
    grouped = {m.report_id: g for g in groups for m in g}
    co_reports = [m for members in by_area.values() for m in members if m.org in co_orgs]
    assert len(co_reports) >= 100
    found = [m for m in co_reports if m.report_id in grouped]
    assert len(found) >= 0.9 * len(co_reports)  # the rest: a monitor's report corrected away
    sizes = {len({m.org for m in grouped[m.report_id]}) for m in found}
    assert sizes == {2, 3}
    spans = [(g[-1].occurred_at - g[0].occurred_at).total_seconds() / 60 for g in groups]
    close = [span for span in spans if span <= scenario.timeline.duplicates.minutes]
    assert len(close) >= 0.8 * len(spans), spans  # the others join a neighbouring event
    assert any(len({m.killed for m in g}) > 1 for g in groups)
    assert any(len({m.perpetrator for m in g}) > 1 for g in groups)  # one says "unknown"


def test_a_blackout_leaves_no_report_of_any_kind_from_daraya_in_the_report_week(
    scenario: Scenario,
) -> None:
    from collections import Counter

    from streams.logic.rules import load_rules
    from streams.logic.spikes import reporting_gap

    (blackout,) = scenario.timeline.blackouts
    assert (blackout.area, scenario.timeline.report_week) == ("daraya", "2016-W09")
    owners = _owners(scenario)
    sent = [r for s in scenario.submissions for r in s.reports if r.get("area") == "daraya"]
    weeks = {datetime.fromisoformat(r["occurred_at"]).astimezone(UTC).date() for r in sent}
    assert not any(blackout.from_ <= day <= blackout.to for day in weeks)
    assert any(day < blackout.from_ for day in weeks)  # reported before and after it
    assert any(day > blackout.to for day in weeks)
    # the reporting-gap rule of streams/rules.yaml fires on these reports by the Sunday
    reports: dict[str, Counter[date]] = {}
    for r in scenario.latest_revisions().values():
        if r.get("area") == "daraya" and not r.get("retracted"):
            day = datetime.fromisoformat(r["occurred_at"]).astimezone(UTC).date()
            reports.setdefault(owners[r["report_id"]], Counter())[day] += 1
    before = {org: Counter({d: n for d, n in days.items() if d < blackout.from_})
              for org, days in reports.items()}  # fmt: skip
    verdict = reporting_gap(before, blackout.to, load_rules().reporting_gap)
    assert verdict is not None
    assert verdict.firing
