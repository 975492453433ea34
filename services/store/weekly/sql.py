"""The weekly report's SQL, parameterised (never built from user input).

The counts are the stream's weekly metrics (the snapshot tables behind /v1/metrics/weekly
and /v1/metrics/access, CONTRACT section 3), so the report and the API cannot disagree and
stay fast however many reports are stored. What needs single reports (the exempt list, the
last completed delivery) reads the canonical reports: current revision, ``counts`` = not
retracted, the same rows GET /v1/reports lists. /v1/verify proves the two agree.

Column lists, sums and report conditions are generated from the figure sets
(schemas/figures.py); a summed column keeps its figure's name. Every name is a constant of
ours; the values are bound parameters."""

from __future__ import annotations

from schemas.figures import ACCESS, COMPLIANCE, Figure, FigureSet
from services.store.derived import snapshot_table


def figure(figures: FigureSet, name: str) -> Figure:
    (figure,) = (f for f in figures.figures if f.name == name)
    return figure


def _sums(names: tuple[str, ...]) -> str:
    """``sum(x) AS x`` per name. Such a query must not name a figure in its WHERE:
    ClickHouse would read the alias there, an aggregate, and refuse."""
    return ", ".join(f"sum({n}) AS {n}" for n in names)


REQUEST_FIGURES = ACCESS.counting("access_request")
"""The access-request figures, one per status: together they count every request once."""


def _request_sums() -> str:
    """Each request figure in the week (``week_<name>``) and up to it (``cumulative_<name>``)."""
    week = (f"sumIf({f.name}, week = {{week:String}}) AS week_{f.name}" for f in REQUEST_FIGURES)
    cumulative = (f"sum({f.name}) AS cumulative_{f.name}" for f in REQUEST_FIGURES)
    return ",\n       ".join((*week, *cumulative))


VIOLATIONS = f"""
SELECT week, party, {_sums(COMPLIANCE.names)}
FROM {snapshot_table(COMPLIANCE)} FINAL
WHERE week IN ({{week:String}}, {{previous:String}})
GROUP BY week, party
"""  # noqa: S608

EXEMPT = f"""
SELECT report_id, area, party, target, exempt_reason AS reason, occurred_at, killed, injured,
       verification
FROM canonical_reports FINAL
WHERE {figure(COMPLIANCE, "violations_exempt").condition_sql()} AND counts
  AND week = {{week:String}}
ORDER BY occurred_at, report_id
LIMIT {{limit:UInt32}}
"""  # noqa: S608

EVENT_SOURCES = f"""
SELECT sources, count() AS events
FROM canonical_reports FINAL
WHERE {figure(COMPLIANCE, "incidents").condition_sql()} AND counts AND week = {{week:String}}
GROUP BY sources
ORDER BY sources
"""  # noqa: S608

DELIVERIES = f"""
SELECT area, {", ".join(ACCESS.names)}
FROM {snapshot_table(ACCESS)} FINAL
WHERE week = {{week:String}} AND area IN {{areas:Array(String)}}
"""  # noqa: S608

LAST_COMPLETED = f"""
SELECT area, max(occurred_at) AS last_completed
FROM canonical_reports FINAL
WHERE {figure(ACCESS, "deliveries_completed").condition_sql()} AND counts
  AND area IN {{areas:Array(String)}} AND occurred_at < {{end:DateTime64(3, 'UTC')}}
GROUP BY area
"""  # noqa: S608

# Week strings of one width order like the weeks themselves.
REQUESTS = f"""
SELECT {_request_sums()}
FROM {snapshot_table(ACCESS)} FINAL
WHERE week <= {{week:String}}
"""  # noqa: S608

ALERTS = """
SELECT fingerprint, rule, area, party, state, severity, summary, starts_at, updated_at,
       length(report_ids) AS reports
FROM alerts FINAL
WHERE starts_at < {end:DateTime64(3, 'UTC')}
  AND (state = 'firing' OR updated_at >= {start:DateTime64(3, 'UTC')})
ORDER BY starts_at, fingerprint
LIMIT {limit:UInt32}
"""

# Arrivals during the week, from the audit trail; a redelivered record is one report.
ARRIVALS = """
SELECT uniqExactIf(report_id, revision = 1 AND occurred_at < {start:DateTime64(3, 'UTC')})
           AS late_reports,
       uniqExactIf(report_id, revision > 1) AS revised_reports
FROM raw_reports
WHERE received_at >= {start:DateTime64(3, 'UTC')} AND received_at < {end:DateTime64(3, 'UTC')}
"""

_KNOWN_TO = """(kafka_offset < arrayElement({{{name}_offsets:Array(UInt64)}},
                                    indexOf({{{name}_partitions:Array(UInt32)}},
                                            kafka_partition)))"""
KNOWN_TO_EDITION = _KNOWN_TO.format(name="edition")
"""A raw record is below the edition's log position (partition -> end offset)."""

# Against an edition: the week's reports (any revision in the week) that arrived since its
# log position, within the current view's cut (none, an as_of or a newer edition's).
ARRIVALS_SINCE_EDITION = f"""
SELECT countIf(NOT known) AS late_reports,
       countIf(known AND revision_after > revision_then) AS revised_reports
FROM (
    SELECT report_id,
           max({KNOWN_TO_EDITION}) AS known,
           maxIf(revision, {KNOWN_TO_EDITION}) AS revision_then,
           maxIf(revision, NOT {KNOWN_TO_EDITION}) AS revision_after,
           max(occurred_at >= {{start:DateTime64(3, 'UTC')}}
               AND occurred_at < {{end:DateTime64(3, 'UTC')}}) AS in_week
    FROM raw_reports FINAL
    WHERE (isNull({{as_of:Nullable(DateTime64(3, 'UTC'))}})
           OR received_at <= {{as_of:Nullable(DateTime64(3, 'UTC'))}})
      AND (NOT {{use_cut:Bool}} OR {_KNOWN_TO.format(name="cut")})
    GROUP BY report_id
)
WHERE in_week
"""  # noqa: S608 (constants of ours; every value is a bound parameter)


# Coverage (CONTRACT 9): per area, the current field reports of the week and the latest
# event time up to its end. ``{source}`` is the canonical reports (current report) or the
# raw-log fold's ``classified`` (a cut): one select, two sources.
COVERAGE_SELECT = """
SELECT area,
       uniqExactIf(org, week = {{coverage_week:String}}) AS reporting_orgs,
       countIf(week = {{coverage_week:String}}) AS reports,
       maxIf(occurred_at, occurred_at < {{end:DateTime64(3, 'UTC')}}) AS last_report_at,
       countIf(occurred_at < {{end:DateTime64(3, 'UTC')}}) AS reports_before_end
FROM {source}
WHERE kind IN {{kinds:Array(String)}} {current}
  AND ({{area:String}} = '' OR area = {{area:String}})
GROUP BY area
"""
COVERAGE = COVERAGE_SELECT.format(source="canonical_reports FINAL", current="AND NOT retracted")
