"""Prometheus metrics of the store process (sink and query API)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class StoreMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.rows = Counter(
            "truce_store_rows_written_total", "Rows inserted, by table.", ["table"],
            registry=self.registry,
        )  # fmt: skip
        self.insert_failures = Counter(
            "truce_store_insert_failures_total", "Failed ClickHouse batch inserts.",
            registry=self.registry,
        )  # fmt: skip
        self.undecodable = Counter(
            "truce_store_undecodable_records_total", "Records that did not decode, by topic.",
            ["topic"], registry=self.registry,
        )  # fmt: skip
        self.insert_seconds = Histogram(
            "truce_store_batch_seconds", "Insert + commit time of one sink batch.",
            registry=self.registry,
        )  # fmt: skip
        self.query_seconds = Histogram(
            "truce_store_query_seconds", "Query API time, by endpoint.", ["endpoint"],
            registry=self.registry,
        )  # fmt: skip
