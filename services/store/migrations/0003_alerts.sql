-- Spike-rule alerts from the stream. One row per episode of an alert (a fingerprint is
-- reused when the same alert fires again later); the highest version is its current state.
CREATE TABLE IF NOT EXISTS alerts (
    fingerprint LowCardinality(String),
    rule LowCardinality(String),
    area LowCardinality(String),
    party LowCardinality(String),
    window LowCardinality(String),
    state LowCardinality(String),
    severity LowCardinality(String),
    summary String,
    value Float64,
    threshold Float64,
    starts_at DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC'),
    version UInt64,
    report_ids Array(String)
) ENGINE = ReplacingMergeTree(version)
ORDER BY (fingerprint, starts_at);
