"""Every SQL statement of the query API, parameterised (never built from user input)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from schemas.figures import ACCESS, COMPLIANCE, FigureSet
from services.store.database import Database
from services.store.derived import snapshot_table
from services.store.params import check_week

COMPLIANCE_COUNTS = COMPLIANCE.names
ACCESS_COUNTS = ACCESS.names


def listing(figures: FigureSet) -> str:
    """The rows the API lists for one week of a figure set: the current snapshot of each
    key with any current report, filtered by the keys (an empty filter matches all)."""
    filters = "".join(
        f"\n  AND ({{{k}:String}} = '' OR {k} = {{{k}:String}})" for k in figures.keys
    )
    return f"""
SELECT {", ".join((*figures.keys, *figures.names))}
FROM {snapshot_table(figures)} FINAL
WHERE week = {{week:String}}
  AND {figures.present_sql()}{filters}
ORDER BY {", ".join(figures.keys)}
"""  # noqa: S608 (figure and column names are our constants; values are bound parameters)


WEEKLY_COMPLIANCE = listing(COMPLIANCE)
WEEKLY_ACCESS = listing(ACCESS)

# Recomputed from the canonical reports alone, for reconciliation with the stream.
RECOMPUTED_COMPLIANCE = """
SELECT area, party,
       countIf(NOT exempt) AS violations,
       countIf(NOT exempt AND verification = 'verified') AS violations_verified,
       countIf(exempt) AS violations_exempt,
       sumIf(killed, NOT exempt) AS killed,
       sumIf(injured, NOT exempt) AS injured
FROM canonical_reports FINAL
WHERE kind = 'violation' AND counts AND week = {week:String}
GROUP BY area, party
ORDER BY area, party
"""

RECOMPUTED_ACCESS = """
SELECT area,
       countIf(kind = 'delivery' AND status = 'completed') AS deliveries_completed,
       countIf(kind = 'delivery' AND status = 'partial') AS deliveries_partial,
       countIf(kind = 'delivery' AND status = 'blocked') AS deliveries_blocked,
       countIf(kind = 'delivery' AND status = 'cancelled') AS deliveries_cancelled,
       sumIf(beneficiaries, kind = 'delivery' AND status IN ('completed', 'partial'))
           AS beneficiaries,
       countIf(kind = 'access_request' AND status = 'submitted') AS requests_submitted,
       countIf(kind = 'access_request' AND status = 'approved') AS requests_approved,
       countIf(kind = 'access_request' AND status = 'denied') AS requests_denied,
       countIf(kind = 'access_request' AND status = 'withdrawn') AS requests_withdrawn
FROM canonical_reports FINAL
WHERE kind IN ('delivery', 'access_request') AND counts AND week = {week:String}
GROUP BY area
ORDER BY area
"""

# Weeks with canonical reports or with non-zero snapshots: a snapshot counting something
# in a week without any report is a difference too.
WEEKS = """
SELECT DISTINCT week FROM (
    SELECT toString(week) AS week FROM canonical_reports FINAL
    WHERE kind IN ('violation', 'delivery', 'access_request')
    UNION ALL
    SELECT toString(week) FROM weekly_compliance
    UNION ALL
    SELECT toString(week) FROM weekly_access
)
ORDER BY week
"""

REPORT_REVISIONS = """
SELECT revision, org, key_name, received_at, content_hash, report_json,
       kafka_partition, kafka_offset
FROM raw_reports FINAL
WHERE report_id = {report_id:String}
ORDER BY revision, received_at, kafka_offset
"""

REPORT_CURRENT = """
SELECT * FROM canonical_reports FINAL WHERE report_id = {report_id:String}
"""


def weekly(db: Database, week: str, area: str = "", party: str = "") -> list[dict[str, Any]]:
    return db.rows(WEEKLY_COMPLIANCE, week=week, area=area, party=party)


def access(db: Database, week: str, area: str = "") -> list[dict[str, Any]]:
    return db.rows(WEEKLY_ACCESS, week=week, area=area)


def _keyed(
    rows: list[dict[str, Any]], keys: tuple[str, ...]
) -> dict[tuple[Any, ...], dict[str, int]]:
    return {
        tuple(r[k] for k in keys): {c: int(v) for c, v in r.items() if c not in keys} for r in rows
    }


def reconcile(db: Database, week: str) -> list[dict[str, Any]]:
    """Every difference between the stream's metrics and a SQL recount of the week."""
    differences: list[dict[str, Any]] = []
    pairs = (
        ("weekly", weekly(db, week), db.rows(RECOMPUTED_COMPLIANCE, week=week), ("area", "party")),
        ("access", access(db, week), db.rows(RECOMPUTED_ACCESS, week=week), ("area",)),
    )
    for metric, streamed_rows, recounted_rows, keys in pairs:
        streamed, recounted = _keyed(streamed_rows, keys), _keyed(recounted_rows, keys)
        for key in sorted(set(streamed) | set(recounted)):
            if streamed.get(key) != recounted.get(key):
                differences.append(
                    {
                        "metric": metric,
                        "week": week,
                        "key": dict(zip(keys, key, strict=True)),
                        "streamed": streamed.get(key),
                        "recounted": recounted.get(key),
                    }
                )
    return differences


def weeks(db: Database) -> list[str]:
    return [str(r["week"]) for r in db.rows(WEEKS)]


ALERTS = """
SELECT fingerprint, rule, area, party, window, state, severity, summary, value, threshold,
       starts_at, updated_at, version, report_ids
FROM alerts FINAL
WHERE updated_at >= {since:DateTime64(3, 'UTC')}
  AND ({area:String} = '' OR area = {area:String})
ORDER BY updated_at DESC, fingerprint
LIMIT {limit:UInt32}
"""


def alerts(db: Database, since: datetime, area: str = "", limit: int = 500) -> list[dict[str, Any]]:
    return db.rows(ALERTS, since=since, area=area, limit=limit)


def verify(db: Database, week: str | None) -> dict[str, Any]:
    """``{"weeks", "ok", "differences"}`` for one checked week, or every week when None."""
    checked = [check_week(week)] if week is not None else weeks(db)
    differences = [d for w in checked for d in reconcile(db, w)]
    return {"weeks": checked, "ok": not differences, "differences": differences}


# The reports behind a number (drill-down): current, non-retracted canonical reports, the
# rows every count of CONTRACT section 3 is made of. An empty filter matches everything.
_REPORT_FILTER = """
WHERE counts
  AND ({week:String} = '' OR week = {week:String})
  AND ({area:String} = '' OR area = {area:String})
  AND ({party:String} = '' OR party = {party:String})
  AND ({kind:String} = '' OR kind = {kind:String})
  AND ({status:String} = '' OR status = {status:String})
  AND ({verification:String} = '' OR verification = {verification:String})
  AND ({exempt:Int8} < 0 OR exempt = ({exempt:Int8} = 1))
"""
REPORT_LIST = f"""
SELECT report_id, kind, revision, org, occurred_at, received_at, week, area, party, target,
       category, status, killed, injured, beneficiaries, exempt, exempt_reason, verification
FROM canonical_reports FINAL
{_REPORT_FILTER}
ORDER BY occurred_at, report_id
LIMIT {{limit:UInt32}} OFFSET {{offset:UInt32}}
"""  # noqa: S608 (a constant; the values are bound parameters)
REPORT_COUNT = f"SELECT count() AS total FROM canonical_reports FINAL {_REPORT_FILTER}"  # noqa: S608


def report_list(
    db: Database, filters: dict[str, Any], limit: int, offset: int
) -> tuple[int, list[dict[str, Any]]]:
    """(how many match, one page of them in event-time order)."""
    (count,) = db.rows(REPORT_COUNT, **filters)
    return int(count["total"]), db.rows(REPORT_LIST, **filters, limit=limit, offset=offset)
