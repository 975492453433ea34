"""Where the weekly report's numbers come from: the stream's projections (the current
report, fast at any size) or the raw-log recomputation restricted to what was known at a
time (``as_of``) or at a log position (an edition's pinned head).

Both answer the same questions in the same row shapes, so one assembly
(:mod:`services.store.weekly.assemble`) turns either into a :class:`WeeklyReport`, and an
edition, an as-of report and the current report cannot differ in how they are laid out.
Blocking (chDB runs in-process): call from a worker thread."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, Protocol

from schemas import FIELD_KINDS
from schemas.figures import ACCESS, COMPLIANCE, Judged
from services.store import recompute as rc
from services.store.database import Database
from services.store.weekly import sql

Rows = list[dict[str, Any]]


class Source(Protocol):
    """The questions the weekly report asks, each answered in the stream's row shapes."""

    def violations(self, week: str, previous: str) -> Rows:
        """``week``, ``party`` and every compliance figure, for the week and the previous."""
        ...

    def exempt(self, week: str, limit: int) -> Rows: ...

    def event_sources(self, week: str) -> Rows:
        """``sources`` and ``events``: the week's non-exempt events by their sources."""
        ...

    def deliveries(self, week: str, areas: Sequence[str]) -> Rows:
        """``area`` and every access figure for the week."""
        ...

    def last_completed(self, areas: Sequence[str], end: datetime) -> Rows: ...

    def requests(self, week: str) -> dict[str, Any]:
        """``week_<figure>`` and ``cumulative_<figure>`` of every request figure."""
        ...

    def alerts(self, start: datetime, end: datetime, limit: int) -> Rows: ...

    def coverage(self, week: str, end: datetime, area: str = "") -> Rows:
        """Per area with any current field report up to ``end``: ``reporting_orgs``,
        ``reports`` (in the week), ``last_report_at``, ``reports_before_end``."""
        ...


def coverage_rows(found: Rows, codes: Sequence[str]) -> list[dict[str, Any]]:
    """CONTRACT 9's coverage row of each area in ``codes`` from :meth:`Source.coverage`'s
    rows: an area without a report of any kind that week is not monitored, and its
    ``last_report_at`` (``None``: never) says since when it is silent."""
    by_area = {row["area"]: row for row in found}
    rows = []
    for code in codes:
        row = by_area.get(code, {})
        reports = int(row.get("reports", 0))
        last = row.get("last_report_at") if row.get("reports_before_end") else None
        rows.append({
            "area": code,
            "reporting_orgs": int(row.get("reporting_orgs", 0)),
            "reports": reports,
            "last_report_at": None if last is None else _utc(last),
            "monitored": reports > 0,
        })  # fmt: skip
    return rows


def _utc(moment: datetime) -> datetime:
    """ClickHouse hands back naive UTC datetimes."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class StreamSource:
    """The stream's weekly snapshots and canonical reports (what /v1/metrics serves)."""

    db: Database

    def violations(self, week: str, previous: str) -> Rows:
        return self.db.rows(sql.VIOLATIONS, week=week, previous=previous)

    def exempt(self, week: str, limit: int) -> Rows:
        return self.db.rows(sql.EXEMPT, week=week, limit=limit)

    def event_sources(self, week: str) -> Rows:
        return self.db.rows(sql.EVENT_SOURCES, week=week)

    def deliveries(self, week: str, areas: Sequence[str]) -> Rows:
        return self.db.rows(sql.DELIVERIES, week=week, areas=list(areas))

    def last_completed(self, areas: Sequence[str], end: datetime) -> Rows:
        return self.db.rows(sql.LAST_COMPLETED, areas=list(areas), end=end)

    def requests(self, week: str) -> dict[str, Any]:
        (row,) = self.db.rows(sql.REQUESTS, week=week)
        return row

    def alerts(self, start: datetime, end: datetime, limit: int) -> Rows:
        return self.db.rows(sql.ALERTS, start=start, end=end, limit=limit)

    def coverage(self, week: str, end: datetime, area: str = "") -> Rows:
        kinds = sorted(FIELD_KINDS)
        return self.db.rows(sql.COVERAGE, coverage_week=week, end=end, kinds=kinds, area=area)


LAST_COMPLETED = f"""
WITH {rc.FOLD}
SELECT area, max(occurred_at) AS last_completed
FROM classified
WHERE {sql.figure(ACCESS, "deliveries_completed").condition_sql()}
  AND area IN {{areas:Array(String)}} AND occurred_at < {{end:DateTime64(3, 'UTC')}}
GROUP BY area
"""  # noqa: S608 (constants of ours; every value is a bound parameter)


COVERAGE = f"""
WITH {rc.FOLD}
{sql.COVERAGE_SELECT.format(source="classified", current="")}
"""


@dataclass
class RecountSource:
    """The raw-log recomputation (services/store/recompute.py) at a cut: the records
    received by ``as_of`` and/or below the log position ``offsets``. Alerts are not
    recomputed (the spike rules live in the stream): the stored ones are listed, those
    that started by ``as_of`` when it is given."""

    db: Database
    as_of: datetime | None = None
    offsets: rc.Offsets | None = None

    @cached_property
    def _cells(self) -> Rows:
        """Every (week, area, party) cell at the cut, once: each section sums its own."""
        return rc.cells(self.db, self.as_of, None, self.offsets)

    def _summed(self, names: tuple[str, ...], keys: tuple[str, ...], weeks: set[str]) -> Rows:
        totals: dict[tuple[Any, ...], dict[str, int]] = {}
        for cell in self._cells:
            if cell["week"] in weeks:
                row = totals.setdefault(tuple(cell[k] for k in keys), dict.fromkeys(names, 0))
                for name in names:
                    row[name] += int(cell[name])
        return [{**dict(zip(keys, key, strict=True)), **row} for key, row in totals.items()]

    def violations(self, week: str, previous: str) -> Rows:
        return self._summed(COMPLIANCE.names, ("week", "party"), {week, previous})

    def exempt(self, week: str, limit: int) -> Rows:
        rows = rc.classified_reports(self.db, self.as_of, week, self.offsets)
        listed = [r for r in rows if r["kind"] == rc.VIOLATION and r["exempt"]]
        return [
            {k: r[k] for k in ("report_id", "area", "party", "target", "occurred_at", "killed",
                               "injured", "verification")} | {"reason": r["exempt_reason"]}
            for r in listed[:limit]
        ]  # fmt: skip

    def event_sources(self, week: str) -> Rows:
        events = sql.figure(COMPLIANCE, "incidents")
        rows = rc.classified_reports(self.db, self.as_of, week, self.offsets)
        found = Counter(int(r["sources"]) for r in rows if events.value(Judged.of(r)))
        return [{"sources": n, "events": found[n]} for n in sorted(found)]

    def deliveries(self, week: str, areas: Sequence[str]) -> Rows:
        wanted = set(areas)
        rows = self._summed(ACCESS.names, ("area",), {week})
        return [r for r in rows if r["area"] in wanted]

    def last_completed(self, areas: Sequence[str], end: datetime) -> Rows:
        bound = rc.parameters(self.as_of, None, self.offsets)
        return self.db.rows(LAST_COMPLETED, **bound, areas=list(areas), end=end)

    def requests(self, week: str) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for figure in sql.REQUEST_FIGURES:
            in_week = up_to = 0
            for cell in self._cells:
                if cell["week"] <= week:  # week strings of one width order like weeks
                    up_to += int(cell[figure.name])
                    in_week += int(cell[figure.name]) if cell["week"] == week else 0
            result[f"week_{figure.name}"] = in_week
            result[f"cumulative_{figure.name}"] = up_to
        return result

    def alerts(self, start: datetime, end: datetime, limit: int) -> Rows:
        until = min(end, self.as_of) if self.as_of is not None else end
        return self.db.rows(sql.ALERTS, start=start, end=until, limit=limit)

    def coverage(self, week: str, end: datetime, area: str = "") -> Rows:
        """Over every week (the last report may be older than the week): the fold's
        ``classified`` holds the current, non-retracted reports of the counted kinds."""
        bound = rc.parameters(self.as_of, None, self.offsets)
        return self.db.rows(COVERAGE, **bound, coverage_week=week, end=end,
                            kinds=sorted(FIELD_KINDS), area=area)  # fmt: skip


def source_for(
    db: Database, as_of: datetime | None = None, offsets: Mapping[int, int] | None = None
) -> Source:
    """The stream's projections for the current report, the recount for any cut."""
    if as_of is None and offsets is None:
        return StreamSource(db)
    return RecountSource(db, as_of, offsets)
