"""The weekly report's SQL, parameterised (never built from user input).

The counts are the stream's weekly metrics (the snapshot tables behind /v1/metrics/weekly
and /v1/metrics/access, CONTRACT section 3), so the report and the API cannot disagree and
stay fast however many reports are stored. What needs single reports (the exempt list, the
last completed delivery) reads the canonical reports: current revision, ``counts`` = not
retracted, the same rows GET /v1/reports lists. /v1/verify proves the two agree."""

from __future__ import annotations

VIOLATIONS = """
SELECT week, party,
       sum(violations) AS violations_sum,
       sum(violations_verified) AS verified,
       sum(killed) AS killed_sum,
       sum(injured) AS injured_sum,
       sum(violations_exempt) AS exempt_violations
FROM weekly_compliance_snapshots FINAL
WHERE week IN ({week:String}, {previous:String})
GROUP BY week, party
"""

EXEMPT = """
SELECT report_id, area, party, target, exempt_reason AS reason, occurred_at, killed, injured,
       verification
FROM canonical_reports FINAL
WHERE kind = 'violation' AND counts AND exempt AND week = {week:String}
ORDER BY occurred_at, report_id
LIMIT {limit:UInt32}
"""

DELIVERIES = """
SELECT area, deliveries_completed, deliveries_partial, deliveries_blocked, deliveries_cancelled,
       beneficiaries
FROM weekly_access_snapshots FINAL
WHERE week = {week:String} AND area IN {areas:Array(String)}
"""

LAST_COMPLETED = """
SELECT area, max(occurred_at) AS last_completed
FROM canonical_reports FINAL
WHERE kind = 'delivery' AND status = 'completed' AND counts AND area IN {areas:Array(String)}
  AND occurred_at < {end:DateTime64(3, 'UTC')}
GROUP BY area
"""

# Week strings of one width order like the weeks themselves.
REQUESTS = """
SELECT sumIf(requests_submitted + requests_approved + requests_denied + requests_withdrawn,
             week = {week:String}) AS week_submitted,
       sumIf(requests_approved, week = {week:String}) AS week_approved,
       sumIf(requests_denied, week = {week:String}) AS week_denied,
       sumIf(requests_withdrawn, week = {week:String}) AS week_withdrawn,
       sumIf(requests_submitted, week = {week:String}) AS week_pending,
       sum(requests_submitted + requests_approved + requests_denied + requests_withdrawn)
           AS cumulative_submitted,
       sum(requests_approved) AS cumulative_approved,
       sum(requests_denied) AS cumulative_denied,
       sum(requests_withdrawn) AS cumulative_withdrawn,
       sum(requests_submitted) AS cumulative_pending
FROM weekly_access_snapshots FINAL
WHERE week <= {week:String}
"""

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
