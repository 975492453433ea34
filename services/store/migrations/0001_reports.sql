-- Every record of the reports topic exactly as it arrived: the audit trail.
-- Idempotent under redelivery: the sorting key ends with the record's Kafka partition and
-- offset, so a redelivered record replaces itself and two distinct records never merge.
CREATE TABLE IF NOT EXISTS raw_reports (
    report_id String,
    revision UInt32,
    kind LowCardinality(String),
    org LowCardinality(String),
    key_name LowCardinality(String),
    received_at DateTime64(3, 'UTC'),
    occurred_at DateTime64(3, 'UTC'),
    area LowCardinality(String),
    retracted Bool,
    schema_version UInt16,
    content_hash FixedString(64),
    report_json String CODEC(ZSTD(3)),
    kafka_partition UInt32,
    kafka_offset UInt64
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY (report_id, revision, kafka_partition, kafka_offset);

-- Current state and classification of every report (stream's canonical topic).
CREATE TABLE IF NOT EXISTS canonical_reports (
    report_id String,
    version UInt64,
    kind LowCardinality(String),
    revision UInt32,
    org LowCardinality(String),
    received_at DateTime64(3, 'UTC'),
    occurred_at DateTime64(3, 'UTC'),
    week LowCardinality(String),
    area LowCardinality(String),
    party LowCardinality(String),
    target LowCardinality(String),
    category LowCardinality(String),
    status LowCardinality(String),
    subject String,
    killed UInt32,
    injured UInt32,
    beneficiaries UInt64,
    retracted Bool,
    counts Bool,
    exempt Bool,
    exempt_reason LowCardinality(String),
    verification LowCardinality(String),
    report_json String CODEC(ZSTD(3))
) ENGINE = ReplacingMergeTree(version)
ORDER BY report_id;

-- Weekly snapshots from the stream; readers take the highest version per key.
CREATE TABLE IF NOT EXISTS weekly_compliance_snapshots (
    week LowCardinality(String),
    area LowCardinality(String),
    party LowCardinality(String),
    violations UInt32,
    violations_verified UInt32,
    violations_exempt UInt32,
    killed UInt32,
    injured UInt32,
    version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (week, area, party);

CREATE TABLE IF NOT EXISTS weekly_access_snapshots (
    week LowCardinality(String),
    area LowCardinality(String),
    deliveries_completed UInt32,
    deliveries_partial UInt32,
    deliveries_blocked UInt32,
    deliveries_cancelled UInt32,
    beneficiaries UInt64,
    requests_submitted UInt32,
    requests_approved UInt32,
    requests_denied UInt32,
    requests_withdrawn UInt32,
    version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (week, area);

-- Revisions the stream refused (another organisation's, or a conflicting revision).
CREATE TABLE IF NOT EXISTS dead_letters (
    report_id String,
    revision UInt32,
    org LowCardinality(String),
    reason LowCardinality(String),
    detail String,
    received_at Nullable(DateTime64(3, 'UTC')),
    kafka_partition UInt32,
    kafka_offset UInt64
) ENGINE = ReplacingMergeTree
ORDER BY (kafka_partition, kafka_offset);
