"""Builds the weekly report from a source of numbers (the stream's projections, or the
raw-log recount at a cut: see :mod:`services.store.weekly.sources`), one question per
section, shaped into the model.

Blocking (chDB runs in-process): call it from a worker thread, as FastAPI does for the
synchronous route that uses it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from schemas import area_list, parties
from schemas.figures import ACCESS, COMPLIANCE, FigureSet
from schemas.weekly_report import (
    Access,
    AreaCoverage,
    BesiegedArea,
    DataQuality,
    EventSources,
    ExemptIncident,
    Incidents,
    PartyEvents,
    PartyViolations,
    Period,
    RequestCounts,
    Violations,
    WeekAlert,
    WeeklyReport,
)
from schemas.weeks import previous_week, week_bounds
from services.store import recompute as rc
from services.store.database import Database
from services.store.weekly import sql
from services.store.weekly.sources import Source, coverage_rows, source_for

EXEMPT_LIMIT = 1000
"""The exempt list is bounded; ``violations.exempt`` always has the full count."""
ALERT_LIMIT = 500


def shown(figures: FigureSet, model: type[BaseModel]) -> tuple[str, ...]:
    """The figures of a set that a report model shows under their own name: the report is
    a curated selection, and a figure joins it by becoming a field of the model."""
    return tuple(name for name in figures.names if name in model.model_fields)


def _figures(row: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, int]:
    return {name: int(row.get(name, 0)) for name in names}


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _utc(moment: datetime) -> datetime:
    """ClickHouse hands back naive UTC datetimes."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _violations(source: Source, week: str, previous: str) -> Violations:
    rows = source.violations(week, previous)
    now = {r["party"]: r for r in rows if r["week"] == week}
    before = {r["party"]: int(r["violations"]) for r in rows if r["week"] == previous}
    names = parties()
    figures = shown(COMPLIANCE, PartyViolations)
    items = []
    active = {c for c, r in now.items() if r["violations"]}
    active |= {c for c, n in before.items() if n}
    for code in active:
        row = _figures(now.get(code, {}), COMPLIANCE.names)
        count, verified = row["violations"], row["violations_verified"]
        items.append(
            PartyViolations(
                **{name: row[name] for name in figures},
                party=code,
                name=names[code].name if code in names else code,
                previous_week=before.get(code, 0),
                change=count - before.get(code, 0),
                verified=verified,
                verified_share=_share(verified, count),
            )
        )
    items.sort(key=lambda p: (-p.violations, -p.previous_week, p.party))
    count, previous_count = sum(p.violations for p in items), sum(p.previous_week for p in items)
    verified = sum(p.verified for p in items)
    total = PartyViolations(
        **{name: sum(getattr(p, name) for p in items) for name in figures},
        party="total",
        name="All parties",
        previous_week=previous_count,
        change=count - previous_count,
        verified=verified,
        verified_share=_share(verified, count),
    )
    exempt = sum(int(r["violations_exempt"]) for r in now.values())
    return Violations(parties=items, total=total, exempt=exempt)


def _incidents(source: Source, week: str, previous: str) -> Incidents:
    """CONTRACT section 9's events per party, and how many sources back them."""
    names = parties()

    def events(party: str, name: str, row: Mapping[str, Any]) -> PartyEvents:
        count, corroborated = int(row["incidents"]), int(row["incidents_corroborated"])
        return PartyEvents(
            party=party, name=name, reports=int(row["violations"]), events=count,
            corroborated=corroborated, corroborated_share=_share(corroborated, count),
            killed=int(row["incident_killed"]), injured=int(row["incident_injured"]),
        )  # fmt: skip

    rows = {
        str(r["party"]): _figures(r, COMPLIANCE.names)
        for r in source.violations(week, previous)
        if r["week"] == week
    }
    items = [
        events(code, names[code].name if code in names else code, row)
        for code, row in rows.items()
        if row["incidents"]
    ]
    items.sort(key=lambda p: (-p.events, -p.reports, p.party))
    summed = {n: sum(row[n] for row in rows.values()) for n in COMPLIANCE.names}
    return Incidents(
        parties=items,
        total=events("total", "All parties", summed),
        exempt=summed["incidents_exempt"],
        sources=[EventSources(**r) for r in source.event_sources(week)],
    )


def _exempt(source: Source, week: str) -> list[ExemptIncident]:
    rows = source.exempt(week, EXEMPT_LIMIT)
    return [ExemptIncident(**{**r, "occurred_at": _utc(r["occurred_at"])}) for r in rows]


def _besieged(source: Source, week: str, end: datetime, sunday: date) -> list[BesiegedArea]:
    besieged = [a for a in area_list() if a.besieged]
    codes = [a.code for a in besieged]
    counts = {r["area"]: r for r in source.deliveries(week, codes)}
    last = {r["area"]: _utc(r["last_completed"]).date() for r in source.last_completed(codes, end)}
    result = []
    figures = shown(ACCESS, BesiegedArea)
    for area in besieged:
        row = _figures(counts.get(area.code, {}), ACCESS.names)
        day = last.get(area.code)
        beneficiaries = row["beneficiaries"]
        result.append(
            BesiegedArea(
                **{name: row[name] for name in figures},
                area=area.code,
                name=area.name,
                governorate=area.governorate,
                people_in_need=area.people_in_need,
                coverage=_share(beneficiaries, area.people_in_need),
                last_completed_delivery=day,
                days_since_last_completed_delivery=None if day is None else (sunday - day).days,
            )
        )
    return result


def _coverage(source: Source, week: str, end: datetime) -> list[AreaCoverage]:
    listed = sorted(area_list(), key=lambda a: a.code)
    reference = {a.code: a for a in listed}
    rows = coverage_rows(source.coverage(week, end), list(reference))
    return [
        AreaCoverage(
            **row,
            name=reference[row["area"]].name,
            governorate=reference[row["area"]].governorate,
            besieged=reference[row["area"]].besieged,
        )
        for row in rows
    ]


def _requests(row: Mapping[str, Any], scope: str) -> RequestCounts:
    """``submitted`` is every request, ``pending`` those whose status is still submitted;
    the other statuses are shown under their own name where the model has a field."""
    by_status = {}
    for figure in sql.REQUEST_FIGURES:
        (status,) = figure.statuses
        by_status[status] = int(row[f"{scope}_{figure.name}"])
    total, pending = sum(by_status.values()), by_status.pop("submitted")
    named = {s: n for s, n in by_status.items() if s in RequestCounts.model_fields}
    return RequestCounts(submitted=total, pending=pending, **named)


def _access(source: Source, week: str) -> Access:
    row = source.requests(week)
    counts = {scope: _requests(row, scope) for scope in ("week", "cumulative")}
    cumulative = counts["cumulative"]
    return Access(
        week=counts["week"],
        cumulative=cumulative,
        cumulative_approval_rate=_share(cumulative.approved, cumulative.submitted),
    )


def _alerts(source: Source, start: datetime, end: datetime) -> list[WeekAlert]:
    rows = source.alerts(start, end, ALERT_LIMIT)
    return [
        WeekAlert(**{**r, "starts_at": _utc(r["starts_at"]), "updated_at": _utc(r["updated_at"])})
        for r in rows
    ]


@dataclass(frozen=True)
class Against:
    """The latest edition a report's data quality counts against."""

    edition: int
    published_at: datetime
    offsets: Mapping[int, int]


def _data_quality(
    db: Database,
    start: datetime,
    end: datetime,
    as_of: datetime | None,
    against: Against | None,
    cut: Mapping[int, int] | None,
    now: datetime,
) -> DataQuality:
    """Against an edition: the week's reports that arrived after its log position (within
    this report's own cut). Without one: arrivals during the week (up to ``as_of``)."""
    if against is not None:
        bound = rc.parameters(as_of, None, cut)
        edition = sorted(against.offsets.items())
        (row,) = db.rows(
            sql.ARRIVALS_SINCE_EDITION,
            **{k: bound[k] for k in ("as_of", "use_cut", "cut_partitions", "cut_offsets")},
            edition_partitions=[int(p) for p, _ in edition],
            edition_offsets=[int(o) for _, o in edition],
            start=start,
            end=end,
        )
        return DataQuality(
            since=against.published_at,
            until=as_of or now,
            edition=against.edition,
            late_reports=int(row["late_reports"]),
            revised_reports=int(row["revised_reports"]),
        )
    until = min(end, as_of) if as_of is not None else end
    (row,) = db.rows(sql.ARRIVALS, start=start, end=until)
    return DataQuality(
        since=start,
        until=until,
        late_reports=int(row["late_reports"]),
        revised_reports=int(row["revised_reports"]),
    )


def weekly_report(
    db: Database,
    week: str,
    now: datetime | None = None,
    *,
    as_of: datetime | None = None,
    cut: Mapping[int, int] | None = None,
    against: Against | None = None,
) -> WeeklyReport:
    """The report of a valid ISO week (check it first with ``params.check_week``): from
    the stream's projections, or recounted from the raw log at ``as_of`` (stamped on the
    report) or at the log position ``cut`` (an edition's). The data quality counts
    against the edition ``against`` when the week has one."""
    moment = now or datetime.now(UTC)
    source = source_for(db, as_of, cut)
    start, end = week_bounds(week)
    sunday = (end - timedelta(days=1)).date()
    previous = previous_week(week)
    return WeeklyReport(
        week=week,
        previous_week=previous,
        period=Period(start=start.date(), end=sunday),
        generated_at=moment,
        violations=_violations(source, week, previous),
        incidents=_incidents(source, week, previous),
        exempt=_exempt(source, week),
        besieged=_besieged(source, week, end, sunday),
        coverage=_coverage(source, week, end),
        access=_access(source, week),
        alerts=_alerts(source, start, end),
        data_quality=_data_quality(db, start, end, as_of, against, cut, moment),
        as_of=as_of,
    )
