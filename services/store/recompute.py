"""The raw-log recomputation: every weekly figure counted again in SQL from the store's copy
of the reports topic (``raw_reports``), folding revisions and classifying reports by
CONTRACT sections 2, 3 and 6 on its own.

It trusts nothing the stream decided (no ``canonical_reports`` column, no snapshot), so a
classification bug in the stream shows up as a difference in :func:`verify`. It shares no
code with the stream's logic, only the definitions of the figures (``schemas.figures``)
and of the week (``schemas.weeks``). ``as_of`` restricts it to the records received by
then: what was known at that moment, designations and verifications included.

One pass: the fold, the classification and one grouped aggregate per query, for every
week at once; no per-week or per-report loop. Asked for one week, the fold reads only the
reports with a record in that week, and every verification, designation and incident and
every report an incident ever listed (whatever could place a report there or classify it),
each with all its records, so it is exact.

Incidents (CONTRACT section 9): ``claims`` decides each listed report's incident,
``backing`` counts each incident's organisations; a classified row's ``event`` and
``sources`` are what the event figures of ``schemas.figures`` read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Final

from schemas import parties
from schemas.figures import ACCESS, COMPLIANCE, COUNTED_KINDS, FIGURE_SETS, FigureSet
from schemas.weeks import iso_week_sql
from services.store.database import Database
from services.store.derived import snapshot_table
from services.store.params import check_week

VIOLATION: Final = "violation"
VERIFICATION: Final = "verification"
DESIGNATION: Final = "designation"
INCIDENT: Final = "incident"
UNVERIFIED: Final = "unverified"
"""The verification status of a violation no current verification judges."""

MISCLASSIFIED_LIMIT: Final = 100
"""How many disagreeing reports :func:`verify` lists (their total is always given)."""

METRICS: Final[Mapping[str, str]] = {COMPLIANCE.name: "weekly", ACCESS.name: "access"}
"""A figure set's name in verify's differences: the endpoint its rows are served by."""

CELL_KEYS: Final[tuple[str, ...]] = tuple(
    dict.fromkeys(k for s in FIGURE_SETS for k in ("week", *s.keys))
)
"""The finest grouping every figure set's rows are sums of: (week, area, party)."""

# The first record of a report in log order (its owner), and the record that decides a
# (report_id, revision): the owner's first one. Later copies are duplicates or conflicts.
_LOG_ORDER = "(kafka_partition, kafka_offset)"
_CURRENT_FIRST = "(-toInt64(revision), kafka_partition, kafka_offset)"
CURRENT_COLUMNS = ("revision", "kind", "occurred_at", "received_at", "area", "retracted",
                    "report_json")  # fmt: skip

# The fold (CONTRACT sections 2 and 6) and the classification, as common table
# expressions ending in ``classified``: one row per current, non-retracted report of a
# counted kind. Every value is a bound parameter (see :func:`parameters`).
MATERIALIZE_FOLD: Final = "enable_materialized_cte = 1"
"""The setting under which ``live`` is computed once per query: ClickHouse otherwise
inlines a CTE at each reference, and ``live`` is read six times (verdicts, designations,
claims, backing directly and through claims, facts), so the fold ran six times (3.4x the
time at 200k records). Without it the query is the same, only slower."""
FOLD = f"""
received AS (
    SELECT report_id, revision, kind, org, received_at, occurred_at, area, retracted,
           report_json, kafka_partition, kafka_offset,
           argMin(org, {_LOG_ORDER}) OVER (PARTITION BY report_id) AS owner
    FROM raw_reports FINAL
    WHERE (isNull({{as_of:Nullable(DateTime64(3, 'UTC'))}})
           OR received_at <= {{as_of:Nullable(DateTime64(3, 'UTC'))}})
      AND (NOT {{use_cut:Bool}}
           OR kafka_offset < arrayElement({{cut_offsets:Array(UInt64)}},
                                          indexOf({{cut_partitions:Array(UInt32)}},
                                                  kafka_partition)))
      AND ({{week:String}} = '' OR report_id IN (
          SELECT report_id FROM raw_reports
          WHERE kind IN ({{verification_kind:String}}, {{designation_kind:String}},
                         {{incident_kind:String}})
             OR {iso_week_sql("occurred_at")} = {{week:String}})
          OR report_id IN (
          SELECT arrayJoin(JSONExtract(report_json, 'members', 'Array(String)'))
          FROM raw_reports WHERE kind = {{incident_kind:String}}))
),
current AS (
    SELECT report_id, any(owner) AS owned_by,
           argMin(tuple({", ".join(CURRENT_COLUMNS)}), {_CURRENT_FIRST}) AS top
    FROM received
    WHERE org = owner
    GROUP BY report_id
),
live AS MATERIALIZED (
    -- read by every CTE below: computed once (MATERIALIZE_FOLD), not once per reader
    SELECT report_id, owned_by AS org,
           {", ".join(f"top.{i} AS {c}" for i, c in enumerate(CURRENT_COLUMNS, 1))}
    FROM current
    WHERE NOT top.{CURRENT_COLUMNS.index("retracted") + 1}
),
verdicts AS (
    SELECT JSONExtractString(report_json, 'subject') AS subject,
           argMax(JSONExtractString(report_json, 'status'), (occurred_at, report_id)) AS verdict
    FROM live
    WHERE kind = {{verification_kind:String}}
    GROUP BY subject
),
designations AS (
    SELECT area,
           groupArray(tuple(occurred_at, parseDateTime64BestEffortOrNull(
               JSONExtractString(report_json, 'effective_to'), 3, 'UTC'), report_id)) AS periods
    FROM live
    WHERE kind = {{designation_kind:String}}
    GROUP BY area
),
claims AS (
    -- CONTRACT section 9: a violation belongs to the current, non-retracted incident that
    -- lists it with the latest occurred_at (ties: greatest report_id)
    SELECT member, argMax(report_id, (occurred_at, report_id)) AS incident
    FROM (SELECT report_id, occurred_at,
                 arrayJoin(JSONExtract(report_json, 'members', 'Array(String)')) AS member
          FROM live WHERE kind = {{incident_kind:String}})
    GROUP BY member
),
backing AS (
    -- an incident's sources: the organisations of its current member violations
    SELECT c.incident AS incident, toUInt32(uniqExact(l.org)) AS sources
    FROM live AS l
    INNER JOIN claims AS c ON c.member = l.report_id
    WHERE l.kind = {{violation_kind:String}}
    GROUP BY c.incident
),
facts AS (
    SELECT report_id, kind, revision, org, occurred_at, received_at, area,
           {iso_week_sql("occurred_at")} AS week,
           JSONExtractString(report_json, 'perpetrator') AS party,
           JSONExtractString(report_json, 'target') AS target,
           JSONExtractString(report_json, 'status') AS status,
           toUInt32(JSONExtractUInt(report_json, 'killed')) AS killed,
           toUInt32(JSONExtractUInt(report_json, 'injured')) AS injured,
           toUInt64(JSONExtractUInt(report_json, 'beneficiaries')) AS beneficiaries
    FROM live
    WHERE kind IN {{counted:Array(String)}}
      AND ({{week:String}} = '' OR week = {{week:String}})
),
classified AS (
    SELECT f.report_id AS report_id, f.kind AS kind, f.revision AS revision, f.org AS org,
           f.occurred_at AS occurred_at, f.received_at AS received_at, f.week AS week,
           f.area AS area, f.party AS party, f.target AS target, f.status AS status,
           f.killed AS killed, f.injured AS injured, f.beneficiaries AS beneficiaries,
           multiIf(f.kind NOT IN ({{violation_kind:String}}, {{incident_kind:String}}), '',
                   has({{designated:Array(String)}}, f.party), 'designated_perpetrator',
                   has({{designated:Array(String)}}, f.target), 'designated_target',
                   notEmpty(arrayFilter(p -> p.1 <= f.occurred_at
                                        AND (isNull(p.2) OR f.occurred_at < p.2), d.periods)),
                   concat('designation:', arrayMin(arrayMap(p -> p.3, arrayFilter(
                       p -> p.1 <= f.occurred_at AND (isNull(p.2) OR f.occurred_at < p.2),
                       d.periods)))),
                   '') AS exempt_reason,
           toBool(exempt_reason != '') AS exempt,
           if(f.kind = {{violation_kind:String}},
              if(v.verdict = '', {{unverified:String}}, v.verdict), '') AS verification,
           toBool(f.kind = {{incident_kind:String}}
                  OR (f.kind = {{violation_kind:String}} AND cl.incident = '')) AS event,
           toUInt32(multiIf(f.kind = {{incident_kind:String}}, b.sources,
                            event, 1, 0)) AS sources
    FROM facts AS f
    LEFT JOIN verdicts AS v ON v.subject = f.report_id
    LEFT JOIN designations AS d ON d.area = f.area
    LEFT JOIN claims AS cl ON cl.member = f.report_id
    LEFT JOIN backing AS b ON b.incident = f.report_id
)
"""  # noqa: S608 (constants of ours; every value is a bound parameter)

CLASSIFIED = f"""
WITH {FOLD}
SELECT report_id, kind, revision, org, occurred_at, received_at, week, area, party, target,
       status, killed, injured, beneficiaries, exempt, exempt_reason, verification, event,
       sources
FROM classified
ORDER BY occurred_at, report_id
SETTINGS {MATERIALIZE_FOLD}
"""  # noqa: S608 (constants of ours; every value is a bound parameter)

CELLS = f"""
WITH {FOLD}
SELECT {", ".join(CELL_KEYS)},
       {COMPLIANCE.sql()},
       {ACCESS.sql()}
FROM classified
GROUP BY {", ".join(CELL_KEYS)}
SETTINGS prefer_column_name_to_alias = 1, {MATERIALIZE_FOLD}
"""  # noqa: S608 (prefer_column_name_to_alias: incident_killed sums the column killed, not
#   the aggregate named killed)

# What verify compares per report: the columns the figures read, plus the row they land in.
_COMPARED = ("kind", "week", "area", "party", "status", "exempt", "verification", "killed",
             "injured", "beneficiaries", "event", "sources")  # fmt: skip
MISCLASSIFIED = f"""
WITH {FOLD},
streamed AS (
    SELECT report_id, {", ".join(c for c in _COMPARED if c != "verification")},
           if(kind = {{violation_kind:String}}, canonical.verification, '') AS verification
    FROM canonical_reports AS canonical FINAL
    WHERE counts AND kind IN {{counted:Array(String)}}
      AND ({{week:String}} = '' OR week = {{week:String}})
)
SELECT *, count() OVER () AS total
FROM (
    SELECT if(s.report_id = '', c.report_id, s.report_id) AS id,
           s.report_id != '' AS in_stream, c.report_id != '' AS in_log,
           {", ".join(f"s.{c} AS streamed_{c}, c.{c} AS recounted_{c}" for c in _COMPARED)}
    FROM streamed AS s
    FULL OUTER JOIN classified AS c ON s.report_id = c.report_id
    WHERE s.report_id = '' OR c.report_id = ''
       OR tuple({", ".join(f"s.{c}" for c in _COMPARED)})
          != tuple({", ".join(f"c.{c}" for c in _COMPARED)})
)
ORDER BY id  -- (the total is taken in an outer query: chDB 26 loops planning it inside)
LIMIT {{limit:UInt32}}
SETTINGS {MATERIALIZE_FOLD}
"""  # noqa: S608


Offsets = Mapping[int, int]
"""A position in the reports topic: partition -> end offset (exclusive). A partition it
does not name contributes nothing."""


def parameters(
    as_of: datetime | None, week: str | None, offsets: Offsets | None = None
) -> dict[str, Any]:
    """The bound values every recomputation query reads; designated parties come from the
    reference data, never from SQL text. ``offsets`` restricts the recount to the records
    below a log position (an edition's), ``as_of`` to those received by then."""
    cut = sorted((offsets or {}).items())
    return {
        "as_of": as_of,
        "use_cut": offsets is not None,
        "cut_partitions": [int(p) for p, _ in cut],
        "cut_offsets": [int(o) for _, o in cut],
        "week": check_week(week) if week is not None else "",
        "counted": sorted(COUNTED_KINDS),
        "designated": sorted(code for code, party in parties().items() if party.designated),
        "violation_kind": VIOLATION,
        "verification_kind": VERIFICATION,
        "designation_kind": DESIGNATION,
        "incident_kind": INCIDENT,
        "unverified": UNVERIFIED,
    }


def classified_reports(
    db: Database,
    as_of: datetime | None = None,
    week: str | None = None,
    offsets: Offsets | None = None,
) -> list[dict[str, Any]]:
    """Every current, non-retracted report of a counted kind as the raw log classifies it
    (week, area, party, exempt, verification, counts), in event-time order."""
    return db.rows(CLASSIFIED, **parameters(as_of, week, offsets))


def rows_of(figures: FigureSet, cells: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A figure set's rows, summed from the cells over the keys it does not have, and only
    the rows with a current report (:meth:`FigureSet.present`)."""
    keys = ("week", *figures.keys)
    totals: dict[tuple[Any, ...], dict[str, int]] = {}
    for cell in cells:
        row = totals.setdefault(tuple(cell[k] for k in keys), figures.zero())
        for name in figures.names:
            row[name] += int(cell[name])
    return [
        {**dict(zip(keys, key, strict=True)), **row}
        for key, row in sorted(totals.items())
        if figures.present(row)
    ]


def cells(
    db: Database,
    as_of: datetime | None = None,
    week: str | None = None,
    offsets: Offsets | None = None,
) -> list[dict[str, Any]]:
    """Every figure per (week, area, party) cell, counted from the raw log."""
    return db.rows(CELLS, **parameters(as_of, week, offsets))


def recompute(
    db: Database,
    as_of: datetime | None = None,
    week: str | None = None,
    offsets: Offsets | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """``{"compliance": rows, "access": rows}`` counted from the raw log alone: every week,
    or one; with ``as_of``, from the records received up to then; with ``offsets``, from
    the records below that log position."""
    found = cells(db, as_of, week, offsets)
    return {figures.name: rows_of(figures, found) for figures in FIGURE_SETS}


def _compared(figures: FigureSet) -> str:
    """One figure set's published rows (highest version, present rows) against its
    recounted ones (the cells summed over the keys it lacks, present rows), joined on
    (week, keys): one row per key either side has, the figures as arrays in
    ``figures.names`` order."""
    keys = ("week", *figures.keys)
    values = ", ".join(f"toInt64({n})" for n in figures.names)
    sums = ", ".join(f"sum({n}) AS {n}" for n in figures.names)
    on = " AND ".join(f"s.{k} = c.{k}" for k in keys)
    return f"""
    SELECT {{metric_{figures.name}:String}} AS metric,
           if(s.found, s.week, c.week) AS week,
           [{", ".join(f"if(s.found, s.{k}, c.{k})" for k in figures.keys)}] AS key,
           s.found AS in_stream, c.found AS in_log,
           s.figures AS streamed, c.figures AS recounted
    FROM (SELECT {", ".join(f"toString({k}) AS {k}" for k in keys)}, [{values}] AS figures,
                 true AS found
          FROM {snapshot_table(figures)} FINAL
          WHERE ({{week:String}} = '' OR week = {{week:String}}) AND {figures.present_sql()})
         AS s
    FULL OUTER JOIN
         (SELECT {", ".join(f"toString({k}) AS {k}" for k in keys)}, [{values}] AS figures,
                 true AS found
          FROM (SELECT {", ".join(keys)}, {sums} FROM cells GROUP BY {", ".join(keys)})
          WHERE {figures.present_sql()}) AS c
    ON {on}"""  # noqa: S608


COMPARED = f"""
WITH {FOLD},
cells AS MATERIALIZED (
    SELECT {", ".join(CELL_KEYS)},
           {COMPLIANCE.sql()},
           {ACCESS.sql()}
    FROM classified
    GROUP BY {", ".join(CELL_KEYS)}
),
compared AS MATERIALIZED (
    {" UNION ALL ".join(_compared(s) for s in FIGURE_SETS)}
)
SELECT metric, week, key, in_stream, in_log, streamed, recounted
FROM compared
WHERE NOT (in_stream AND in_log AND streamed = recounted)
UNION ALL
SELECT DISTINCT '' AS metric, week, [] AS key, false AS in_stream, false AS in_log,
       [] AS streamed, [] AS recounted
FROM compared
SETTINGS prefer_column_name_to_alias = 1, {MATERIALIZE_FOLD}
"""  # noqa: S608 (one query for every week: the differences of every figure set, then a
#   row per week either side has, metric ''; prefer_column_name_to_alias as in CELLS)


def _misclassified(db: Database, bound: Mapping[str, Any]) -> tuple[int, list[Any]]:
    """(how many, the first ones): reports whose stream classification (canonical_reports)
    differs from the raw log's, or that only one of the two counts."""
    rows = db.rows(MISCLASSIFIED, **bound, limit=MISCLASSIFIED_LIMIT)
    listed = [
        {
            "report_id": r["id"],
            "streamed": {c: r[f"streamed_{c}"] for c in _COMPARED} if r["in_stream"] else None,
            "recounted": {c: r[f"recounted_{c}"] for c in _COMPARED} if r["in_log"] else None,
        }
        for r in rows
    ]
    return (int(rows[0]["total"]) if rows else 0), listed


def _figures(figures: FigureSet, values: list[int], present: bool) -> dict[str, int] | None:
    return dict(zip(figures.names, map(int, values), strict=True)) if present else None


def verify(db: Database, week: str | None = None) -> dict[str, Any]:
    """The stream's published weekly rows against the raw-log recomputation, every week at
    once (or one): ``{"weeks", "ok", "differences", "misclassified",
    "misclassified_total"}``. ``ok`` says whether every published figure is right;
    ``misclassified`` names the reports whose stream classification is wrong. Two
    queries whatever the number of weeks: the figures compared in SQL (COMPARED), then
    the reports (MISCLASSIFIED)."""
    bound = parameters(None, week)
    by_metric = {METRICS[s.name]: s for s in FIGURE_SETS}
    rows = db.rows(COMPARED, **bound, **{f"metric_{s.name}": METRICS[s.name] for s in FIGURE_SETS})
    weeks: set[str] = set() if week is None else {bound["week"]}
    differences: list[dict[str, Any]] = []
    for row in rows:
        weeks.add(str(row["week"]))
        if not row["metric"]:
            continue
        figures = by_metric[row["metric"]]
        differences.append(
            {
                "metric": row["metric"],
                "week": str(row["week"]),
                "key": dict(zip(figures.keys, map(str, row["key"]), strict=True)),
                "streamed": _figures(figures, row["streamed"], row["in_stream"]),
                "recounted": _figures(figures, row["recounted"], row["in_log"]),
            }
        )
    order = {METRICS[s.name]: i for i, s in enumerate(FIGURE_SETS)}
    differences.sort(key=lambda d: (d["week"], order[d["metric"]], tuple(d["key"].values())))
    total, misclassified = _misclassified(db, bound)
    return {
        "weeks": sorted(weeks),
        "ok": not differences,
        "differences": differences,
        "misclassified": misclassified,
        "misclassified_total": total,
    }
