"""Restatements (CONTRACT section 7): every weekly figure of a week that differs from its
latest edition, with the reports behind each difference and why.

Both sides come from the raw-log recomputation: the edition's side at its pinned log
position (exactly what the edition was counted from), the current side from every record
stored now. Each classified report contributes to the figures of its (area, party) cell
through the figure definitions of ``schemas/figures.py``; a figure is restated when its
cell's total differs, and its causes are the reports whose contribution differs."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any, Final, get_args

from schemas.figures import COMPLIANCE, FIGURE_SETS, Judged
from schemas.weekly_report import Cause, Restatement, RestatementReason
from services.store import recompute as rc
from services.store.database import Database
from services.store.weekly.sql import KNOWN_TO_EDITION

REASONS: Final = get_args(RestatementReason)
"""Their order in a restatement's ``because`` (per report)."""

Cell = tuple[str, str, str | None]
"""(figure, area, party); party is None for the access figures."""


def contributions(rows: Iterable[Mapping[str, Any]]) -> dict[Cell, dict[str, int]]:
    """(figure, area, party) -> report_id -> what the report adds to it (non-zero only)."""
    result: dict[Cell, dict[str, int]] = defaultdict(dict)
    for row in rows:
        report = Judged.of(row)
        for figures in FIGURE_SETS:
            if report.kind not in figures.kinds:
                continue
            party = str(row["party"]) if figures is COMPLIANCE else None
            for figure in figures.figures:
                value = figure.value(report)
                if value:
                    result[(figure.name, str(row["area"]), party)][str(row["report_id"])] = value
    return result


FACTS = f"""
WITH {rc.FOLD},
known AS (
    SELECT report_id, max({KNOWN_TO_EDITION}) AS known
    FROM received
    WHERE org = owner AND report_id IN {{ids:Array(String)}}
    GROUP BY report_id
)
SELECT c.report_id AS report_id,
       c.top.{rc.CURRENT_COLUMNS.index("retracted") + 1} AS retracted,
       k.known AS known
FROM current AS c
LEFT JOIN known AS k ON k.report_id = c.report_id
WHERE c.report_id IN {{ids:Array(String)}}
"""  # noqa: S608 (constants of ours; every value is a bound parameter)


def _reasons(
    then: Mapping[str, Any] | None, now: Mapping[str, Any] | None, facts: Mapping[str, Any]
) -> list[RestatementReason]:
    if then is None:
        return ["corrected" if facts.get("known") else "late"]
    if now is None:
        return ["retracted" if facts.get("retracted") else "corrected"]
    found: set[RestatementReason] = set()
    if then["revision"] != now["revision"]:
        found.add("corrected")
    if bool(then["exempt"]) != bool(now["exempt"]):
        found.add("reclassified")
    if then["verification"] != now["verification"]:
        found.add("verification")
    if bool(then["event"]) != bool(now["event"]) or int(then["sources"]) != int(now["sources"]):
        found.add("incident")  # linked to or unlinked from an incident, or its sources moved
    return [r for r in REASONS if r in found] or ["corrected"]


def restate(
    then_rows: list[dict[str, Any]],
    now_rows: list[dict[str, Any]],
    facts: Mapping[str, Mapping[str, Any]],
) -> list[Restatement]:
    """The restatements between two classifications of one week's reports; ``facts`` per
    report id: ``known`` (the edition had a record of it), ``retracted`` (now)."""
    then_by, now_by = {r["report_id"]: r for r in then_rows}, {r["report_id"]: r for r in now_rows}
    was, now = contributions(then_rows), contributions(now_rows)
    result = []
    for cell in sorted(set(was) | set(now), key=lambda c: (c[1], c[2] or "", c[0])):
        before, after = was.get(cell, {}), now.get(cell, {})
        if sum(before.values()) == sum(after.values()):
            continue
        changed = sorted(rid for rid in set(before) | set(after) if before.get(rid, 0)
                         != after.get(rid, 0))  # fmt: skip
        because = [
            Cause(report_id=rid, reason=reason)
            for rid in changed
            for reason in _reasons(then_by.get(rid), now_by.get(rid), facts.get(rid, {}))
        ]
        figure, area, party = cell
        result.append(
            Restatement(figure=figure, area=area, party=party, was=sum(before.values()),
                        now=sum(after.values()), because=because)
        )  # fmt: skip
    return result


def restatements(db: Database, week: str, edition: Mapping[int, int]) -> list[Restatement]:
    """The week's restatements against the edition counted at log position ``edition``."""
    then_rows = rc.classified_reports(db, week=week, offsets=edition)
    now_rows = rc.classified_reports(db, week=week)
    then_ids = {r["report_id"]: r for r in then_rows}
    now_ids = {r["report_id"]: r for r in now_rows}
    suspects = sorted(
        rid for rid in set(then_ids) ^ set(now_ids)
    )  # only a report on one side needs the log's facts
    facts: dict[str, dict[str, Any]] = {}
    if suspects:
        cut = sorted(edition.items())
        rows = db.rows(
            FACTS,
            **rc.parameters(None, None),
            ids=suspects,
            edition_partitions=[int(p) for p, _ in cut],
            edition_offsets=[int(o) for _, o in cut],
        )
        facts = {r["report_id"]: r for r in rows}
    return restate(then_rows, now_rows, facts)
