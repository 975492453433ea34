-- Stable views for BI tools and direct SQL users (Grafana, Superset, clickhouse-client).
-- Rows with no current report are hidden, as in the API.
CREATE VIEW IF NOT EXISTS weekly_compliance AS
SELECT week, area, party, violations, violations_verified, violations_exempt, killed, injured
FROM weekly_compliance_snapshots FINAL
WHERE violations + violations_exempt > 0;

CREATE VIEW IF NOT EXISTS weekly_access AS
SELECT week, area, deliveries_completed, deliveries_partial, deliveries_blocked,
       deliveries_cancelled, beneficiaries, requests_submitted, requests_approved,
       requests_denied, requests_withdrawn
FROM weekly_access_snapshots FINAL
WHERE deliveries_completed + deliveries_partial + deliveries_blocked + deliveries_cancelled
    + requests_submitted + requests_approved + requests_denied + requests_withdrawn > 0;

CREATE VIEW IF NOT EXISTS current_reports AS
SELECT * FROM canonical_reports FINAL WHERE counts;
