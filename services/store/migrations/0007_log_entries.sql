-- The leaves of the tamper-evident log (CONTRACT 8): every record of the reports topic,
-- its value kept byte for byte (the entry an auditor hashes) with its RFC 9162 leaf hash.
-- Keyed by the record's place in Kafka: a redelivered record replaces itself. Which leaf
-- index a record has is decided by the signed heads (the log-heads topic), not here.
CREATE TABLE IF NOT EXISTS log_entries (
    kafka_partition UInt32,
    kafka_offset UInt64,
    leaf_hash FixedString(32),
    entry String CODEC(ZSTD(3))
) ENGINE = ReplacingMergeTree
ORDER BY (kafka_partition, kafka_offset);
