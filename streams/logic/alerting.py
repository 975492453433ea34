"""Spike evaluation of one area: the rules of ``streams/rules.yaml`` over the inputs its
weekly totals keep (violations per day, completed deliveries, pending requests, each
organisation's reports per day), in event time, with the alert state each rule's next
transition depends on."""

from __future__ import annotations

import functools
from collections.abc import Callable, MutableMapping
from datetime import date, datetime
from typing import Any

from streams.logic import spikes
from streams.logic.records import Emit
from streams.logic.rules import RuleConfig
from streams.logic.totals import AreaIndex


class SpikeRules:
    """Owns the alerts table: fingerprint -> the last alert sent; ``open|<area>`` ->
    {fingerprint: [subject, day]} for the open alerts about single reports."""

    def __init__(
        self,
        rules: RuleConfig,
        besieged: frozenset[str],
        alerts: MutableMapping[str, Any],
    ) -> None:
        self.rules = rules
        self.besieged = besieged
        self.alerts = alerts

    def evaluate(self, area: str, index: AreaIndex, now: datetime, offset: int) -> list[Emit]:
        """Every alert transition of ``area`` at event time ``now``; ``offset`` versions
        the alerts."""
        today = now.date()
        first_seen = min(index.seen, default=today)
        spike = spikes.violation_spike(
            index.violations, today, self.rules.violation_spike, history_start=first_seen
        )
        # listing the reports behind a spike scans the window's members: only done for an
        # alert that is sent (next_alert's decision does not depend on the list)
        checks: list[tuple[spikes.Verdict, str, Callable[[], list[str]]]] = [
            (spike, "", lambda: index.violation_ids(spike.window_start, spike.window_end))
        ]
        if area in self.besieged:
            last = max(index.completed.values(), default=None)
            gap = spikes.delivery_gap(last, first_seen, today, self.rules.delivery_gap)
            checks.append((gap, "", list))
        silence = spikes.reporting_gap(index.reporters, today, self.rules.reporting_gap)
        if silence is not None:
            checks.append((silence, "", list))
        # stale requests: every pending one, and every one with an open alert (so that an
        # answered, retracted or moved request resolves its alert)
        opened: dict[str, list[str]] = dict(self.alerts.get(f"open|{area}", {}))
        subjects = {rid: v for rid, v in index.requests.items() if v[1] == "submitted"}
        for rid, day in opened.values():
            status = index.requests.get(rid, (today, "retracted"))[1]
            subjects[rid] = (date.fromisoformat(day), status)
        stale = self.rules.stale_access_request
        for rid, (submitted, status) in sorted(subjects.items()):
            verdict = spikes.stale_request(submitted, status, today, stale)
            checks.append((verdict, rid, functools.partial(list, (rid,))))
        emits: list[Emit] = []
        for check, subject, ids in checks:
            key = spikes.fingerprint(check.rule, area, "", check.window, subject)
            alert = spikes.next_alert(
                self.alerts.get(key), check, area=area, subject=subject, now=now, version=offset
            )
            if alert is None:
                continue
            alert["report_ids"] = ids()
            self.alerts[key] = alert
            emits.append(Emit("alerts", key, alert))
            if subject and alert["state"] == "firing":
                opened[key] = [subject, subjects[subject][0].isoformat()]
            elif subject:
                opened.pop(key, None)
        if opened != self.alerts.get(f"open|{area}", {}):
            self.alerts[f"open|{area}"] = opened
        return emits
