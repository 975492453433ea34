"""Spike rules and the alert state machine, as pure functions.

Nothing here reads a clock or does I/O: the evaluation day ``today`` and the instant
``now`` are always passed in. In the stream they are event time (the latest
``occurred_at`` seen), so a replay of 2016 data raises the alerts of 2016, the same ones
on every replay.

Violation spikes: Poisson exceedance, not z-scores
--------------------------------------------------
Per area, violations are a few a day at most and often zero. On such counts a z-score
(``(observed - mean) / sd``) is meaningless: the standard deviation of a quiet baseline
is zero or tiny, so two events are "ten sigmas", and the normal approximation it relies on
does not hold for small counts. Instead the count in the window is compared with a
Poisson distribution whose mean comes from the area's own past:

* ``rate = sum(baseline) / known baseline days``: the ``baseline_days`` days before the
  window (days before ``history_start``, when given, are unknown and left out rather
  than counted as zero);
* ``lambda = max(rate, min_baseline_rate) * window_days``: the floor keeps a quiet past
  from making a handful of events look impossible;
* ``p = P(X >= observed | lambda)``, the exact upper tail (:func:`poisson_sf`);
* the rule fires when ``observed >= min_count`` and ``p < p_value``.

The alert's ``threshold`` is the smallest count that would fire for this baseline
(:func:`critical_count`), so "9 violations, alert from 6" reads directly, and the
severity comes from ``observed / threshold`` (the ladder of ``rules.yaml``) rather than
``observed / expected``, which explodes when the expectation is the floor.

Because ``P(X >= k)`` decreases in ``k``, more events in the window never turn a firing
verdict into a quiet one, and a busier baseline never makes a quiet verdict fire.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from schemas.outputs import Alert
from streams.logic.rules import (
    DeliveryGapRule,
    ReportingGapRule,
    SeverityLadder,
    StaleRequestRule,
    ViolationSpikeRule,
)

Severity = Literal["minor", "moderate", "severe", "extreme"]

VIOLATION_SPIKE = "violation_spike"
DELIVERY_GAP = "delivery_gap"
STALE_ACCESS_REQUEST = "stale_access_request"
REPORTING_GAP = "reporting_gap"

FINGERPRINT_CHARS = 16
"""Hex characters of the sha256 kept as the fingerprint (64 bits)."""


# -- Poisson tail ------------------------------------------------------------------------
def _log_pmf(k: int, lam: float) -> float:
    return k * math.log(lam) - lam - math.lgamma(k + 1)


def poisson_sf(k: int, lam: float) -> float:
    """``P(X >= k)`` for ``X ~ Poisson(lam)`` (inclusive upper tail).

    For ``k > lam`` the tail is summed upwards from ``pmf(k)`` (terms shrink at least
    geometrically, and small probabilities keep full relative precision); otherwise it
    is ``1 - P(X < k)``, which is then at least about one half, so nothing cancels.
    """
    if lam < 0 or math.isnan(lam):
        raise ValueError(f"lambda must be >= 0, got {lam}")
    if k <= 0:
        return 1.0
    if lam == 0:
        return 0.0
    if k > lam:
        term = math.exp(_log_pmf(k, lam))
        if term == 0.0:
            return 0.0
        total, i = 0.0, k
        while term > total * 1e-17:
            total += term
            i += 1
            term *= lam / i
        return min(1.0, total)
    below = math.fsum(math.exp(_log_pmf(i, lam)) for i in range(k))
    return min(1.0, max(0.0, 1.0 - below))


def critical_count(lam: float, p_value: float, min_count: int) -> int:
    """The smallest ``k >= min_count`` with ``P(X >= k | lam) < p_value``."""
    if not 0 < p_value < 1:
        raise ValueError(f"p_value must be in (0, 1), got {p_value}")
    low = max(1, min_count)
    if poisson_sf(low, lam) < p_value:
        return low
    step = max(1, math.ceil(math.sqrt(lam)))
    high = low + step
    while poisson_sf(high, lam) >= p_value:  # the tail vanishes, so this ends
        low, step = high, step * 2
        high = low + step
    while high - low > 1:  # invariant: sf(low) >= p_value > sf(high)
        middle = (low + high) // 2
        if poisson_sf(middle, lam) < p_value:
            high = middle
        else:
            low = middle
    return high


def severity_of(ratio: float, ladder: SeverityLadder) -> Severity:
    """The severity of a firing rule whose value is ``ratio`` times its threshold."""
    if ratio >= ladder.extreme:
        return "extreme"
    if ratio >= ladder.severe:
        return "severe"
    if ratio >= ladder.moderate:
        return "moderate"
    return "minor"


def window_label(days: int) -> str:
    """The ``window`` of an alert: an ISO 8601 duration (``P7D``), stable across updates."""
    return f"P{days}D"


# -- verdicts ----------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True, slots=True)
class Verdict:
    """What a rule says about one subject today. ``severity`` is None when not firing."""

    rule: str
    window: str
    firing: bool
    severity: Severity | None
    value: float
    threshold: float
    summary: str


@dataclass(frozen=True, kw_only=True, slots=True)
class SpikeVerdict(Verdict):
    observed: int
    expected: float
    p: float
    baseline_rate: float
    window_start: date
    window_end: date


@dataclass(frozen=True, kw_only=True, slots=True)
class AgeVerdict(Verdict):
    """Delivery gaps and stale requests: ``days`` elapsed since ``since``."""

    days: int
    since: date


def violation_spike(
    daily_counts: Mapping[date, int],
    today: date,
    cfg: ViolationSpikeRule,
    *,
    history_start: date | None = None,
) -> SpikeVerdict:
    """Is the count in the ``window_days`` ending ``today`` (inclusive) a spike against
    the Poisson expectation from the ``baseline_days`` before the window?

    ``daily_counts`` maps UTC days to counts; missing days count zero. Days before
    ``history_start`` (e.g. before the area's first report) are unknown: they are left out
    of the baseline instead of being counted as quiet days.
    """
    window_start = today - timedelta(days=cfg.window_days - 1)
    baseline_start = window_start - timedelta(days=cfg.baseline_days)
    observed = sum(
        int(daily_counts.get(window_start + timedelta(days=i), 0)) for i in range(cfg.window_days)
    )
    known = [
        baseline_start + timedelta(days=i)
        for i in range(cfg.baseline_days)
        if history_start is None or baseline_start + timedelta(days=i) >= history_start
    ]
    baseline_total = sum(int(daily_counts.get(day, 0)) for day in known)
    rate = baseline_total / len(known) if known else 0.0
    expected = max(rate, cfg.min_baseline_rate) * cfg.window_days
    p = poisson_sf(observed, expected)
    threshold = critical_count(expected, cfg.p_value, cfg.min_count)
    firing = cfg.enabled and observed >= cfg.min_count and p < cfg.p_value
    severity = severity_of(observed / threshold, cfg.severity) if firing else None
    span = f"on {today}" if cfg.window_days == 1 else f"in the {cfg.window_days} days to {today}"
    summary = (
        f"{observed} violation{'s' if observed != 1 else ''} {span}; "
        f"{expected:.2f} expected from the {len(known)} days before "
        f"(p = {p:.2g}); alert from {threshold}"
    )
    if not cfg.enabled:
        summary = f"rule disabled; {summary}"
    return SpikeVerdict(
        rule=VIOLATION_SPIKE,
        window=window_label(cfg.window_days),
        firing=firing,
        severity=severity,
        value=float(observed),
        threshold=float(threshold),
        summary=summary,
        observed=observed,
        expected=expected,
        p=p,
        baseline_rate=rate,
        window_start=window_start,
        window_end=today,
    )


def _age(
    rule: str,
    since: date,
    today: date,
    days_limit: int,
    ladder: SeverityLadder,
    applies: bool,
    what: str,
) -> AgeVerdict:
    days = max(0, (today - since).days)
    firing = applies and days >= days_limit
    return AgeVerdict(
        rule=rule,
        window=window_label(days_limit),
        firing=firing,
        severity=severity_of(days / days_limit, ladder) if firing else None,
        value=float(days),
        threshold=float(days_limit),
        summary=f"{what}; alert from {days_limit} days",
        days=days,
        since=since,
    )


def delivery_gap(
    last_completed: date | None, first_seen: date, today: date, cfg: DeliveryGapRule
) -> AgeVerdict:
    """Days since the last completed delivery (or since ``first_seen`` when there was
    none). Call it for besieged areas only; ``first_seen`` is when monitoring of the area
    began (its first report), so an area is not "without aid since 1970"."""
    since = first_seen if last_completed is None else last_completed
    days = max(0, (today - since).days)
    if last_completed is None:
        what = f"no completed delivery on record in {days} days (since {since})"
    else:
        what = f"no completed delivery for {days} days (last on {since})"
    if not cfg.enabled:
        what = f"rule disabled; {what}"
    return _age(DELIVERY_GAP, since, today, cfg.days, cfg.severity, cfg.enabled, what)


def stale_request(
    submitted_on: date, status: str, today: date, cfg: StaleRequestRule
) -> AgeVerdict:
    """An access request still ``submitted`` ``cfg.days`` days after ``submitted_on``.
    Any other status (approved, denied, withdrawn, or ``retracted`` for a withdrawn
    report) is an answer, so the verdict is quiet and an open alert resolves."""
    days = max(0, (today - submitted_on).days)
    pending = status == "submitted"
    if pending:
        what = f"access request submitted on {submitted_on} still pending after {days} days"
    else:
        what = f"access request submitted on {submitted_on} is now {status}"
    if not cfg.enabled:
        what = f"rule disabled; {what}"
    return _age(
        STALE_ACCESS_REQUEST,
        submitted_on,
        today,
        cfg.days,
        cfg.severity,
        cfg.enabled and pending,
        what,
    )


def usual_reporters(
    reports: Mapping[str, Mapping[date, int]], last: date, cfg: ReportingGapRule
) -> list[str]:
    """Organisations with at least ``min_reports`` reports from the area in the
    ``lookback_days`` days ending on ``last`` (the area's latest report day)."""
    first = last - timedelta(days=cfg.lookback_days - 1)
    return sorted(
        org
        for org, days in reports.items()
        if sum(n for day, n in days.items() if first <= day <= last) >= cfg.min_reports
    )


def reporting_gap(
    reports: Mapping[str, Mapping[date, int]], today: date, cfg: ReportingGapRule
) -> AgeVerdict | None:
    """Has the area been silent for ``cfg.days`` days after its usual reporters reported
    regularly? ``reports`` maps organisation -> UTC day -> current field reports from the
    area (days after ``today`` are ignored: a report dated ahead of the clock has not
    happened yet in event time). None when the area never had a report up to ``today``.

    The silence is ``today`` minus the area's last report day, whoever filed it; it fires
    from ``cfg.days`` when at least one usual reporter (:func:`usual_reporters`, counted
    up to that last day) exists, so an area one partner mentioned once never alerts."""
    days = [d for per_org in reports.values() for d in per_org if d <= today]
    if not days:
        return None
    last = max(days)
    usual = usual_reporters(reports, last, cfg)
    silence = (today - last).days
    who = ", ".join(usual) if usual else "none"
    what = f"no report from the area for {silence} days (last on {last}; usual reporters: {who})"
    if not cfg.enabled:
        what = f"rule disabled; {what}"
    applies = cfg.enabled and bool(usual)
    return _age(REPORTING_GAP, last, today, cfg.days, cfg.severity, applies, what)


# -- alert state machine -----------------------------------------------------------------
def fingerprint(rule: str, area: str, party: str, window: str, subject: str = "") -> str:
    """Stable identity of an alert across its updates and episodes: a sha256 hex prefix
    of its labels. ``subject`` (e.g. an access request's ``report_id``) distinguishes
    alerts about single reports; empty, it leaves the four-label fingerprint unchanged."""
    labels = [rule, area, party, window, *([subject] if subject else [])]
    encoded = json.dumps(labels, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()[:FINGERPRINT_CHARS]


def next_alert(
    previous: Mapping[str, Any] | None,
    verdict: Verdict,
    *,
    area: str,
    party: str = "",
    subject: str = "",
    now: datetime,
    version: int,
    report_ids: Sequence[str] = (),
) -> dict[str, Any] | None:
    """The alert to emit after ``verdict``, given the last one emitted for the same
    fingerprint (``previous``, as returned earlier by this function), or None.

    * not firing before (none, or resolved) and firing now: a new alert, ``starts_at = now``;
    * firing before and firing now with another value or severity: an update (same
      ``starts_at``); with the same value and severity: None (no repeat);
    * firing before, quiet now: the resolution (``state = resolved``, the last severity);
    * not firing before, quiet now: None (a resolved alert is not re-sent).

    ``version`` is the caller's ordering number (e.g. the input offset); the emitted
    version is ``max(version, previous version + 1)``, so the versions of one fingerprint
    always grow (readers keep the highest) even when the caller's numbers come from
    several partitions. A redelivered record finds its own alert in ``previous`` and, the
    verdict being the same, gives None. ``updated_at`` never goes back in time either.
    The result is a JSON-ready dict of the fields of :class:`schemas.outputs.Alert`
    (timestamps as RFC 3339 strings), validated by that model.
    """
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime (event time in UTC)")
    now = now.astimezone(UTC)
    key = fingerprint(verdict.rule, area, party, verdict.window, subject)
    before = Alert.model_validate(previous) if previous is not None else None
    if before is not None and before.fingerprint != key:
        raise ValueError(f"previous alert {before.fingerprint} is not alert {key}")
    was_firing = before is not None and before.state == "firing"
    if not was_firing and not verdict.firing:
        return None
    if was_firing and verdict.firing:
        assert before is not None
        if before.value == verdict.value and before.severity == verdict.severity:
            return None
    label = f"{area}/{party}" if party else area
    if verdict.firing:
        assert verdict.severity is not None
        starts_at = before.starts_at if was_firing and before is not None else now
        state: Literal["firing", "resolved"] = "firing"
        severity: Severity = verdict.severity
        summary = f"{label}: {verdict.summary}"
    else:
        assert before is not None
        starts_at, state, severity = before.starts_at, "resolved", before.severity
        summary = f"{label}: resolved: {verdict.summary}"
    updated_at = max(now, before.updated_at) if before is not None else now
    alert = Alert(
        fingerprint=key,
        rule=verdict.rule,
        area=area,
        party=party,
        window=verdict.window,
        state=state,
        severity=severity,
        summary=summary,
        value=verdict.value,
        threshold=verdict.threshold,
        starts_at=starts_at,
        updated_at=max(updated_at, starts_at),
        version=version if before is None else max(version, before.version + 1),
        report_ids=list(report_ids),
    )
    return alert.model_dump(mode="json")
