"""The reporting-gap rule: an area whose usual reporters fall silent alerts like a spike,
in event time (later reports from anywhere move the clock), and resolves when the area
speaks again. The verdict alone, then through stage two's clock and alert state."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from streams.logic.alerting import SpikeRules
from streams.logic.rules import load_rules, parse_rules
from streams.logic.spikes import REPORTING_GAP, reporting_gap, usual_reporters
from streams.logic.stage2 import Stage2

CFG = load_rules()
GAP = CFG.reporting_gap
DAY = date(2016, 3, 1)


def daily(*days: date, times: int = 1) -> Counter[date]:
    return Counter({d: times for d in days})


def test_the_shipped_parameters() -> None:
    assert (GAP.enabled, GAP.days, GAP.lookback_days, GAP.min_reports) == (True, 5, 28, 3)
    bad = load_rules().model_dump()
    bad["reporting_gap"]["min_reports"] = 0
    with pytest.raises(ValidationError, match="min_reports"):
        parse_rules(bad)
    del bad["reporting_gap"]
    with pytest.raises(ValidationError, match="reporting_gap"):
        parse_rules(bad)


def test_usual_reporters_are_counted_in_the_days_up_to_the_last_report() -> None:
    reports = {
        "sarc": daily(DAY, DAY - timedelta(days=1), DAY - timedelta(days=2)),
        "shrc": daily(DAY - timedelta(days=40), times=9),  # long ago: not usual any more
        "smn": daily(DAY, DAY - timedelta(days=27)),  # only two in the 28 days
        "lcc": daily(DAY - timedelta(days=27), times=3),  # the first of the 28 days counts
    }
    assert usual_reporters(reports, DAY, GAP) == ["lcc", "sarc"]


def test_silence_fires_from_n_days_and_grows_in_severity() -> None:
    reports = {"sarc": daily(*(DAY - timedelta(days=i) for i in range(6)))}
    quiet = reporting_gap(reports, DAY + timedelta(days=4), GAP)
    assert quiet is not None
    assert (quiet.rule, quiet.firing, quiet.days, quiet.since) == (REPORTING_GAP, False, 4, DAY)
    firing = reporting_gap(reports, DAY + timedelta(days=5), GAP)
    assert firing is not None
    assert (firing.firing, firing.severity, firing.value, firing.threshold) == (
        True, "minor", 5.0, 5.0,
    )  # fmt: skip
    assert firing.window == "P5D"
    assert "usual reporters: sarc" in firing.summary
    assert "last on 2016-03-01" in firing.summary
    later = [reporting_gap(reports, DAY + timedelta(days=d), GAP) for d in (8, 10, 15)]
    assert [v.severity for v in later if v] == ["moderate", "severe", "extreme"]


def test_no_usual_reporter_no_alert() -> None:
    stray = {"sarc": daily(DAY), "shrc": daily(DAY - timedelta(days=3))}  # one report each
    verdict = reporting_gap(stray, DAY + timedelta(days=30), GAP)
    assert verdict is not None
    assert not verdict.firing
    assert "usual reporters: none" in verdict.summary
    assert reporting_gap({}, DAY, GAP) is None


def test_any_organisation_reporting_ends_the_silence() -> None:
    reports = {"sarc": daily(*(DAY - timedelta(days=i) for i in range(5))),
               "newcomer": daily(DAY + timedelta(days=6))}  # fmt: skip
    verdict = reporting_gap(reports, DAY + timedelta(days=7), GAP)
    assert verdict is not None
    assert verdict.days == 1
    assert not verdict.firing


def test_a_disabled_rule_never_fires() -> None:
    reports = {"sarc": daily(*(DAY - timedelta(days=i) for i in range(5)))}
    off = GAP.model_copy(update={"enabled": False})
    verdict = reporting_gap(reports, DAY + timedelta(days=20), off)
    assert verdict is not None
    assert not verdict.firing
    assert verdict.summary.startswith("rule disabled")


# -- through stage two: the clock is the reports' own event time ---------------------------
class Worker:
    def __init__(self) -> None:
        self.alerts: dict[str, Any] = {}
        self.stage = Stage2({}, {}, {}, SpikeRules(CFG, frozenset(), self.alerts))
        self.offset = 0
        self.seq = 0

    def send(
        self, rid: str, org: str, area: str, moment: datetime, **incident: Any
    ) -> list[dict[str, Any]]:
        self.offset += 1
        self.seq += 1
        report = {"report_id": rid, "kind": "delivery", "occurred_at": moment.isoformat(),
                  "area": area, "agency": "WFP", "modality": "convoy", "status": "blocked",
                  "revision": 1, "retracted": False}  # fmt: skip
        if incident:  # the task force's incident of this area instead of a delivery
            report = {"report_id": rid, "kind": "incident", "occurred_at": moment.isoformat(),
                      "area": area, "perpetrator": "gos", "target": "civilians",
                      "category": "shelling", "killed": 1, "injured": 0, "revision": 1,
                      "retracted": False, **incident}  # fmt: skip
        placement = {"report_id": rid, "seq": self.seq, "kind": report["kind"], "org": org,
                     "revision": 1, "received_at": moment.isoformat(),
                     "verification": "", "area": area, "removed": False,
                     "report": report}  # fmt: skip
        self.stage.handle(placement, self.offset)
        emitted = []
        for dirty in self.stage.take_dirty():
            emitted += [e.value for e in self.stage.evaluate(dirty, self.offset)]
        return [a for a in emitted if a["rule"] == REPORTING_GAP]


def at(day: int, hour: int = 9) -> datetime:
    return datetime(2016, 2, day, hour, tzinfo=UTC)


def test_later_reports_from_elsewhere_age_the_silent_area_and_a_late_one_resolves() -> None:
    worker = Worker()
    for day in range(1, 6):  # Douma: SARC every day to 5 February; Madaya all month
        assert worker.send(f"douma-{day}", "sarc", "douma", at(day)) == []
    raised = []
    for day in range(1, 15):
        raised += worker.send(f"madaya-{day}", "wfp", "madaya", at(day, 12))
    assert {a["area"] for a in raised} == {"douma"}  # Madaya speaks every day
    first = raised[0]
    assert (first["state"], first["value"], first["threshold"]) == ("firing", 5.0, 5.0)
    assert first["starts_at"].startswith("2016-02-10T12:00")  # the Madaya report of the 10th
    assert [a["value"] for a in raised] == [5.0, 6.0, 7.0, 8.0, 9.0]
    assert raised[-1]["severity"] == "moderate"  # 9 days: from 1.5 x 5
    # the task force's incident about Douma is no report from there: still silent
    assert worker.send("inc-1", "issg-htf", "douma", at(13), members=["douma-4", "douma-5"]) == []
    # a late Douma report dated the 13th: the silence is one day, the alert resolves
    resolved = worker.send("douma-late", "sarc", "douma", at(13))
    assert [a["state"] for a in resolved] == ["resolved"]
    assert resolved[0]["fingerprint"] == first["fingerprint"]
