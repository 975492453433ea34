"""The weekly report's SQL, parameterised (never built from user input).

Every count reads the canonical reports (current revision, ``counts`` = not retracted), the
same rows ``GET /v1/reports`` lists for a drill-down, so a number and the reports behind it
cannot disagree; ``/v1/verify`` proves these recounts equal the stream's metrics."""

from __future__ import annotations

VIOLATIONS = """
SELECT week, party,
       countIf(NOT exempt) AS violations,
       countIf(NOT exempt AND verification = 'verified') AS verified,
       sumIf(killed, NOT exempt) AS killed,
       sumIf(injured, NOT exempt) AS injured,
       countIf(exempt) AS exempt_violations
FROM canonical_reports FINAL
WHERE kind = 'violation' AND counts AND week IN ({week:String}, {previous:String})
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
SELECT area,
       countIf(week = {week:String} AND status = 'completed') AS deliveries_completed,
       countIf(week = {week:String} AND status = 'partial') AS deliveries_partial,
       countIf(week = {week:String} AND status = 'blocked') AS deliveries_blocked,
       countIf(week = {week:String} AND status = 'cancelled') AS deliveries_cancelled,
       sumIf(beneficiaries, week = {week:String} AND status IN ('completed', 'partial'))
           AS beneficiaries,
       countIf(status = 'completed') AS completed_ever,
       maxIf(occurred_at, status = 'completed') AS last_completed
FROM canonical_reports FINAL
WHERE kind = 'delivery' AND counts AND area IN {areas:Array(String)}
  AND occurred_at < {end:DateTime64(3, 'UTC')}
GROUP BY area
"""

REQUESTS = """
SELECT countIf(week = {week:String}) AS week_submitted,
       countIf(week = {week:String} AND status = 'approved') AS week_approved,
       countIf(week = {week:String} AND status = 'denied') AS week_denied,
       countIf(week = {week:String} AND status = 'withdrawn') AS week_withdrawn,
       countIf(week = {week:String} AND status = 'submitted') AS week_pending,
       count() AS cumulative_submitted,
       countIf(status = 'approved') AS cumulative_approved,
       countIf(status = 'denied') AS cumulative_denied,
       countIf(status = 'withdrawn') AS cumulative_withdrawn,
       countIf(status = 'submitted') AS cumulative_pending
FROM canonical_reports FINAL
WHERE kind = 'access_request' AND counts AND occurred_at < {end:DateTime64(3, 'UTC')}
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
