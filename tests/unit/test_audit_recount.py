"""The auditor's recount (truce_audit/recount.py) equals the test suite's reference fold of
CONTRACT 2/3/6 over random logs, whatever they hold (duplicates, conflicts, foreign
revisions, kind and subject changes, late designations), read as entry bytes in the order
of the tree (by partition, then offset)."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings

from tests.support.raw_log import DESIGNATED_CODES, partition_of, raw_logs
from tests.support.reference import weekly_metrics
from truce_audit.recount import access_rows, recount, weekly_rows


def tree_order(log: list[dict[str, Any]]) -> list[bytes]:
    """One head over the whole log: its records by (partition, offset)."""
    placed = [(partition_of(r["report"]["report_id"]), i, r) for i, r in enumerate(log)]
    return [orjson.dumps(r) for _, _, r in sorted(placed, key=lambda t: (t[0], t[1]))]


@given(log=raw_logs())
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_recount_equals_the_reference_fold(log: list[dict[str, Any]]) -> None:
    compliance, access = weekly_metrics(log, DESIGNATED_CODES)
    count = recount(tree_order(log), DESIGNATED_CODES)
    weeks = {w for w, *_ in compliance} | {w for w, _ in access} | {w for w, *_ in count.compliance}
    for week in weeks:
        assert weekly_rows(count, week) == [
            {"area": a, "party": p, **f} for (w, a, p), f in sorted(compliance.items()) if w == week
        ]
        assert access_rows(count, week) == [
            {"area": a, **f} for (w, a), f in sorted(access.items()) if w == week
        ]
