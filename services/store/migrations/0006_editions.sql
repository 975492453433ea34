-- Published editions of the weekly report: a projection of the editions topic, which is
-- their system of record (`truce rebuild` drops this table and the sink refills it).
-- ``record`` is the topic record's value byte for byte, so an edition served from here
-- after a rebuild is the one published. The first record of a (week, edition) in the log
-- wins (version: the complement of its offset; one week's records share a partition).
CREATE TABLE IF NOT EXISTS editions (
    week LowCardinality(String),
    edition UInt32,
    published_at DateTime64(3, 'UTC'),
    sha256 FixedString(64),
    record String CODEC(ZSTD(3)),
    kafka_partition UInt32,
    kafka_offset UInt64,
    first_in_log UInt64
) ENGINE = ReplacingMergeTree(first_in_log)
ORDER BY (week, edition);
