-- The alerter's delivery log (topic alert-deliveries): one row per attempt outcome of one
-- alert in one notification. delivery_id is the notification's idempotency key, the same
-- on every attempt and after a restart. A redelivered record is the same row again, which
-- ReplacingMergeTree folds away.
CREATE TABLE IF NOT EXISTS alert_deliveries (
    delivery_id String,
    receiver LowCardinality(String),
    channel LowCardinality(String),
    fingerprint LowCardinality(String),
    alert_version UInt64,
    alert_state LowCardinality(String),
    msg_type LowCardinality(String),
    outcome LowCardinality(String),
    attempt UInt32,
    status_code UInt32,
    error String,
    at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree
ORDER BY (receiver, fingerprint, alert_version, delivery_id, outcome, attempt);
