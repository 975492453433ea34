"""Spike rules: the Poisson tail, the three verdicts and the alert state machine."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, localcontext
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.outputs import Alert
from streams.logic.rules import RuleConfig, ViolationSpikeRule, load_rules
from streams.logic.spikes import (
    DELIVERY_GAP,
    STALE_ACCESS_REQUEST,
    VIOLATION_SPIKE,
    SpikeVerdict,
    critical_count,
    delivery_gap,
    fingerprint,
    next_alert,
    poisson_sf,
    stale_request,
    violation_spike,
)

CFG: RuleConfig = load_rules()
SPIKE = CFG.violation_spike
TODAY = date(2016, 3, 10)
NOW = datetime(2016, 3, 10, 18, 0, tzinfo=UTC)


def spike_cfg(**changes: Any) -> ViolationSpikeRule:
    return SPIKE.model_copy(update=changes)


def exact_sf(k: int, lam: str) -> float:
    """P(X >= k) with 60 significant digits: 1 - e^-lam * sum_{i<k} lam^i / i!."""
    with localcontext() as ctx:
        ctx.prec = 60
        mean = Decimal(lam)
        term, below = Decimal(1), Decimal(0)
        for i in range(k):
            below += term
            term = term * mean / (i + 1)
        return float(1 - (-mean).exp() * below)


def days_before(end: date, counts: list[int]) -> dict[date, int]:
    """``counts`` for consecutive days ending on ``end`` (last item is ``end``)."""
    return {end - timedelta(days=len(counts) - 1 - i): c for i, c in enumerate(counts)}


# -- Poisson tail ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("k", "lam", "expected"),
    [
        (5, 1.0, 0.0036598468273437),  # 1 - (65/24) e^-1
        (1, 1.0, 0.6321205588285577),  # 1 - e^-1
        (10, 2.0, 4.6498075017263e-05),
        (0, 3.0, 1.0),
        (3, 0.0, 0.0),
        (0, 0.0, 1.0),
    ],
)
def test_poisson_tail_known_values(k: int, lam: float, expected: float) -> None:
    assert poisson_sf(k, lam) == pytest.approx(expected, rel=1e-12, abs=1e-300)


def test_poisson_tail_approximately_00366() -> None:
    assert round(poisson_sf(5, 1.0), 5) == 0.00366


@settings(max_examples=300, deadline=None)
@given(
    k=st.integers(0, 400),
    lam=st.decimals(min_value="0.01", max_value="300", places=2),
)
def test_poisson_tail_matches_high_precision_reference(k: int, lam: Decimal) -> None:
    reference = exact_sf(k, str(lam))
    got = poisson_sf(k, float(lam))
    if reference > 1e-290:  # below, the exact value is under the float range we keep
        assert got == pytest.approx(reference, rel=1e-9)
    assert 0.0 <= got <= 1.0


@given(k=st.integers(0, 200), lam=st.floats(0.01, 200))
def test_poisson_tail_decreases_in_k(k: int, lam: float) -> None:
    assert poisson_sf(k + 1, lam) <= poisson_sf(k, lam)


def test_poisson_tail_tiny_and_huge() -> None:
    assert poisson_sf(60, 1.0) == pytest.approx(exact_sf(60, "1"), rel=1e-9)  # ~1e-82
    assert poisson_sf(5000, 1.0) == 0.0
    assert poisson_sf(1, 1e6) == 1.0
    with pytest.raises(ValueError, match="lambda"):
        poisson_sf(1, -1.0)


@pytest.mark.parametrize(("lam", "min_count"), [(0.25, 5), (1.75, 5), (2.0, 5), (10.0, 1)])
def test_critical_count_is_the_smallest_firing_count(lam: float, min_count: int) -> None:
    k = critical_count(lam, 0.001, min_count)
    assert k >= min_count
    assert poisson_sf(k, lam) < 0.001
    assert k == min_count or poisson_sf(k - 1, lam) >= 0.001


# -- violation spikes --------------------------------------------------------------------
def test_below_min_count_never_fires() -> None:
    counts = {TODAY: 4}  # quiet baseline: p = P(X >= 4 | 0.25) ~ 1e-4 < p_value
    verdict = violation_spike(counts, TODAY, SPIKE)
    assert verdict.p < SPIKE.p_value
    assert not verdict.firing
    assert verdict.severity is None
    assert verdict.threshold == SPIKE.min_count


def test_clear_spike_after_a_quiet_baseline_fires() -> None:
    counts = days_before(TODAY, [0] * 20 + [1, 0, 0, 1, 0, 0, 0, 0] + [12])
    verdict = violation_spike(counts, TODAY, SPIKE)
    assert isinstance(verdict, SpikeVerdict)
    assert verdict.firing
    assert verdict.observed == 12
    assert verdict.baseline_rate == pytest.approx(2 / 28)
    assert verdict.expected == pytest.approx(0.25)  # the floor
    assert verdict.p == pytest.approx(poisson_sf(12, 0.25))
    assert verdict.p < 1e-10
    assert verdict.threshold == 5
    assert verdict.severity == "severe"  # 12 / 5 = 2.4: from 2 severe, from 3 extreme
    assert verdict.window == "P1D"
    assert (verdict.window_start, verdict.window_end) == (TODAY, TODAY)


def test_high_baseline_does_not_fire() -> None:
    counts = days_before(TODAY, [10, 12, 9, 11] * 7 + [14])
    verdict = violation_spike(counts, TODAY, SPIKE)
    assert verdict.expected == pytest.approx(10.5)
    assert verdict.observed == 14
    assert verdict.p > 0.1
    assert not verdict.firing
    assert verdict.threshold > 14


def test_severity_follows_observed_over_threshold() -> None:
    def severity(observed: int) -> str | None:
        return violation_spike({TODAY: observed}, TODAY, SPIKE).severity

    # quiet area: threshold 5; ladder 1.5 / 2 / 3
    assert [severity(n) for n in (4, 5, 7, 8, 10, 14, 15)] == [
        None,
        "minor",
        "minor",
        "moderate",
        "severe",
        "severe",
        "extreme",
    ]


def test_weekly_window_and_baseline_exclude_each_other() -> None:
    cfg = spike_cfg(window_days=7)
    # 28 baseline days with 1 a day, then a week with 3 a day
    counts = days_before(TODAY, [1] * 28 + [3] * 7)
    verdict = violation_spike(counts, TODAY, cfg)
    assert verdict.window_start == TODAY - timedelta(days=6)
    assert verdict.observed == 21
    assert verdict.baseline_rate == pytest.approx(1.0)
    assert verdict.expected == pytest.approx(7.0)
    assert verdict.firing
    assert verdict.window == "P7D"
    # the day just before the baseline is outside it
    older = {**counts, TODAY - timedelta(days=35): 100}
    assert violation_spike(older, TODAY, cfg).expected == pytest.approx(7.0)


def test_unknown_history_is_left_out_of_the_baseline() -> None:
    # the area's first report was 4 days ago, with 5 violations a day since
    counts = days_before(TODAY, [5, 5, 5, 5, 9])
    zero_filled = violation_spike(counts, TODAY, SPIKE)
    assert zero_filled.firing  # 20 events over 28 "days" is a rate of 0.71
    known = violation_spike(counts, TODAY, SPIKE, history_start=TODAY - timedelta(days=4))
    assert known.baseline_rate == pytest.approx(5.0)
    assert not known.firing
    first_day = violation_spike({TODAY: 9}, TODAY, SPIKE, history_start=TODAY)
    assert first_day.expected == pytest.approx(0.25)  # nothing known: the floor
    assert first_day.firing


def test_disabled_rule_never_fires() -> None:
    verdict = violation_spike({TODAY: 50}, TODAY, spike_cfg(enabled=False))
    assert not verdict.firing
    assert verdict.summary.startswith("rule disabled")


baseline_counts = st.lists(st.integers(0, 15), min_size=28, max_size=28)


@settings(max_examples=300, deadline=None)
@given(
    baseline=baseline_counts,
    observed=st.integers(0, 60),
    extra=st.integers(1, 30),
    window=st.sampled_from([1, 3, 7]),
)
def test_more_events_in_the_window_never_stop_a_firing_verdict(
    baseline: list[int], observed: int, extra: int, window: int
) -> None:
    cfg = spike_cfg(window_days=window)
    counts = days_before(TODAY - timedelta(days=window), baseline)
    low = violation_spike({**counts, TODAY: observed}, TODAY, cfg)
    high = violation_spike({**counts, TODAY: observed + extra}, TODAY, cfg)
    assert high.p <= low.p
    if low.firing:
        assert high.firing
    # firing is exactly "observed reaches the threshold" (the threshold is consistent)
    for verdict in (low, high):
        assert verdict.firing == (verdict.observed >= verdict.threshold)


@settings(max_examples=200, deadline=None)
@given(baseline=baseline_counts, observed=st.integers(0, 60), day=st.integers(0, 27))
def test_a_busier_baseline_never_makes_a_quiet_verdict_fire(
    baseline: list[int], observed: int, day: int
) -> None:
    counts = days_before(TODAY - timedelta(days=1), baseline)
    busier = dict(counts)
    busier[TODAY - timedelta(days=1 + day)] += 3
    before = violation_spike({**counts, TODAY: observed}, TODAY, SPIKE)
    after = violation_spike({**busier, TODAY: observed}, TODAY, SPIKE)
    if not before.firing:
        assert not after.firing


# -- delivery gaps and stale requests ----------------------------------------------------
def test_delivery_gap() -> None:
    gap = CFG.delivery_gap
    last = TODAY - timedelta(days=13)
    quiet = delivery_gap(last, date(2016, 1, 1), TODAY, gap)
    assert (quiet.firing, quiet.days, quiet.rule) == (False, 13, DELIVERY_GAP)
    firing = delivery_gap(last, date(2016, 1, 1), TODAY + timedelta(days=1), gap)
    assert (firing.firing, firing.days, firing.severity) == (True, 14, "minor")
    assert firing.value == 14.0
    assert firing.threshold == 14.0
    assert firing.window == "P14D"
    assert delivery_gap(last, date(2016, 1, 1), last + timedelta(days=28), gap).severity == (
        "severe"
    )
    assert delivery_gap(last, date(2016, 1, 1), last + timedelta(days=42), gap).severity == (
        "extreme"
    )


def test_delivery_gap_without_any_delivery_counts_from_first_seen() -> None:
    first = TODAY - timedelta(days=20)
    verdict = delivery_gap(None, first, TODAY, CFG.delivery_gap)
    assert verdict.firing
    assert verdict.since == first
    assert verdict.days == 20
    assert "no completed delivery on record" in verdict.summary


def test_delivery_in_the_future_of_today_is_not_a_negative_gap() -> None:
    verdict = delivery_gap(TODAY + timedelta(days=1), TODAY, TODAY, CFG.delivery_gap)
    assert verdict.days == 0
    assert not verdict.firing


def test_stale_request() -> None:
    cfg = CFG.stale_access_request
    submitted = TODAY - timedelta(days=10)
    verdict = stale_request(submitted, "submitted", TODAY, cfg)
    assert (verdict.firing, verdict.days, verdict.rule) == (True, 10, STALE_ACCESS_REQUEST)
    assert verdict.severity == "minor"
    assert not stale_request(submitted, "submitted", TODAY - timedelta(days=1), cfg).firing
    for status in ("approved", "denied", "withdrawn"):
        answered = stale_request(submitted, status, TODAY, cfg)
        assert not answered.firing
        assert status in answered.summary
    assert stale_request(submitted, "submitted", submitted + timedelta(days=30), cfg).severity == (
        "extreme"
    )


# -- fingerprints and the alert state machine --------------------------------------------
def test_fingerprint_is_stable_and_distinguishes_labels() -> None:
    first = fingerprint(VIOLATION_SPIKE, "daraya", "", "P1D")
    assert first == fingerprint(VIOLATION_SPIKE, "daraya", "", "P1D")
    assert len(first) == 16
    assert int(first, 16) >= 0
    others = {
        fingerprint(VIOLATION_SPIKE, "madaya", "", "P1D"),
        fingerprint(VIOLATION_SPIKE, "daraya", "gos", "P1D"),
        fingerprint(VIOLATION_SPIKE, "daraya", "", "P7D"),
        fingerprint(DELIVERY_GAP, "daraya", "", "P1D"),
        fingerprint(VIOLATION_SPIKE, "daraya", "", "P1D", "req-1"),
        fingerprint(VIOLATION_SPIKE, "daray", "a", "P1D"),  # no ambiguous concatenation
    }
    assert first not in others
    assert len(others) == 6
    # pinned: changing the encoding would orphan every stored alert
    assert first == fingerprint("violation_spike", "daraya", "", "P1D", "")


def spike(observed: int, baseline: int = 0) -> SpikeVerdict:
    counts = days_before(TODAY, [baseline] * 28 + [observed])
    return violation_spike(counts, TODAY, SPIKE)


def test_alert_starts_is_not_repeated_updates_and_resolves() -> None:
    t0, t1, t2, t3 = (NOW + timedelta(minutes=m) for m in (0, 5, 10, 20))
    started = next_alert(None, spike(6), area="daraya", now=t0, version=10, report_ids=["v1"])
    assert started is not None
    alert = Alert.model_validate(started)  # fields of schemas.outputs.Alert
    assert alert.state == "firing"
    assert alert.fingerprint == fingerprint(VIOLATION_SPIKE, "daraya", "", "P1D")
    assert (alert.value, alert.threshold, alert.severity) == (6.0, 5.0, "minor")
    assert alert.starts_at == alert.updated_at == t0
    assert alert.report_ids == ["v1"]
    assert alert.summary.startswith("daraya: 6 violations on 2016-03-10")
    assert started["starts_at"] == "2016-03-10T18:00:00Z"  # JSON-ready

    # same value again: nothing to send
    assert next_alert(started, spike(6), area="daraya", now=t1, version=11) is None

    # a new value: an update of the same alert
    updated = next_alert(started, spike(8), area="daraya", now=t1, version=12)
    assert updated is not None
    assert updated["fingerprint"] == started["fingerprint"]
    assert (updated["state"], updated["value"], updated["severity"]) == ("firing", 8.0, "moderate")
    assert updated["starts_at"] == started["starts_at"]
    assert updated["updated_at"] == "2016-03-10T18:05:00Z"
    assert updated["version"] == 12

    # back to normal: resolved once, with the last severity
    resolved = next_alert(updated, spike(1), area="daraya", now=t2, version=13)
    assert resolved is not None
    assert (resolved["state"], resolved["value"], resolved["severity"]) == (
        "resolved",
        1.0,
        "moderate",
    )
    assert resolved["starts_at"] == started["starts_at"]
    assert resolved["summary"].startswith("daraya: resolved: ")
    assert next_alert(resolved, spike(1), area="daraya", now=t3, version=14) is None
    assert next_alert(resolved, spike(0), area="daraya", now=t3, version=15) is None

    # firing again later: a new episode of the same fingerprint
    again = next_alert(resolved, spike(7), area="daraya", now=t3, version=16)
    assert again is not None
    assert again["fingerprint"] == started["fingerprint"]
    assert (again["state"], again["starts_at"]) == ("firing", "2016-03-10T18:20:00Z")


def test_quiet_without_history_sends_nothing() -> None:
    assert next_alert(None, spike(2), area="daraya", now=NOW, version=1) is None


def test_versions_and_times_of_one_alert_never_go_back() -> None:
    started = next_alert(None, spike(6), area="daraya", now=NOW, version=10)
    assert started is not None
    # a redelivery of the same record: same verdict, nothing to send
    assert next_alert(started, spike(6), area="daraya", now=NOW, version=10) is None
    # a smaller caller number (another partition's offset) still gives a higher version
    updated = next_alert(started, spike(9), area="daraya", now=NOW - timedelta(hours=1), version=3)
    assert updated is not None
    assert updated["version"] == 11
    assert updated["updated_at"] == started["updated_at"]
    resolved = next_alert(updated, spike(0), area="daraya", now=NOW, version=500)
    assert resolved is not None
    assert resolved["version"] == 500


def test_previous_of_another_alert_is_refused() -> None:
    started = next_alert(None, spike(6), area="daraya", now=NOW, version=10)
    with pytest.raises(ValueError, match="is not alert"):
        next_alert(started, spike(6), area="madaya", now=NOW, version=11)


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_alert(None, spike(6), area="daraya", now=datetime(2016, 3, 10), version=1)


def test_age_alerts_carry_party_and_subject() -> None:
    cfg = CFG.stale_access_request
    verdict = stale_request(TODAY - timedelta(days=12), "submitted", TODAY, cfg)
    alert = next_alert(
        None, verdict, area="madaya", subject="req-7", now=NOW, version=3, report_ids=["req-7"]
    )
    assert alert is not None
    assert alert["fingerprint"] == fingerprint(STALE_ACCESS_REQUEST, "madaya", "", "P10D", "req-7")
    assert alert["window"] == "P10D"
    assert alert["report_ids"] == ["req-7"]
    answered = stale_request(TODAY - timedelta(days=12), "approved", TODAY, cfg)
    resolved = next_alert(alert, answered, area="madaya", subject="req-7", now=NOW, version=4)
    assert resolved is not None
    assert resolved["state"] == "resolved"
    assert resolved["updated_at"] == resolved["starts_at"]

    per_party = next_alert(None, spike(6), area="daraya", party="gos", now=NOW, version=1)
    assert per_party is not None
    assert per_party["party"] == "gos"
    assert per_party["summary"].startswith("daraya/gos: ")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 20), min_size=1, max_size=25))
def test_state_machine_property(observations: list[int]) -> None:
    """Over any sequence of evaluations: alerts alternate start → updates → resolve, never
    repeat an unchanged state, keep one fingerprint and grow their version."""
    previous: dict[str, Any] | None = None
    sent: list[dict[str, Any]] = []
    for step, observed in enumerate(observations):
        verdict = spike(observed)
        now = NOW + timedelta(minutes=step)
        alert = next_alert(previous, verdict, area="daraya", now=now, version=step + 1)
        was_firing = previous is not None and previous["state"] == "firing"
        if alert is None:
            assert verdict.firing == was_firing
            if was_firing:
                assert previous is not None
                assert previous["value"] == verdict.value
            continue
        assert alert["state"] == ("firing" if verdict.firing else "resolved")
        assert alert["value"] == verdict.value
        if previous is not None:
            assert alert["fingerprint"] == previous["fingerprint"]
            assert alert["version"] > previous["version"]
            assert alert != {**previous, "version": alert["version"]}
        if alert["state"] == "firing" and not was_firing:
            assert alert["starts_at"] == alert["updated_at"]
        sent.append(alert)
        previous = alert
    for before, after in pairwise(sent):
        if after["state"] == "resolved":
            assert before["state"] == "firing"  # only a firing alert resolves
            assert after["starts_at"] == before["starts_at"]
        elif before["state"] == "firing":  # an update keeps the episode's start
            assert after["starts_at"] == before["starts_at"]
        else:  # a new episode after a resolution
            assert after["starts_at"] == after["updated_at"]
