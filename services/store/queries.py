"""Every SQL statement of the query API, parameterised (never built from user input)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from schemas.figures import ACCESS, COMPLIANCE, FigureSet
from services.store.database import Database
from services.store.derived import snapshot_table

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


# The reports behind a number (drill-down): current, non-retracted canonical reports, the
# rows every count of CONTRACT section 3 is made of (with ``retracted``, the withdrawn ones
# too). An empty filter matches everything; ``org`` is a partner's own (CONTRACT 1).
_REPORT_FILTER = """
WHERE (counts OR {retracted:UInt8} = 1)
  AND ({org:String} = '' OR org = {org:String})
  AND received_at >= {updated_after:DateTime64(3, 'UTC')}
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
       category, status, killed, injured, beneficiaries, exempt, exempt_reason, verification,
       retracted
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
