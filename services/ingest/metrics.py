"""Prometheus metrics of the ingest service."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class IngestMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.reports = Counter(
            "truce_ingest_reports_total",
            "Reports answered 202, by status (accepted, duplicate).",
            ["status"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "truce_ingest_rejected_requests_total",
            "Requests refused, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.publish_seconds = Histogram(
            "truce_ingest_publish_seconds",
            "Time from publish to Kafka acknowledging every report of a request.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.ledger_size = Gauge(
            "truce_ingest_known_reports", "Report ids in the ingest ledger.", registry=self.registry
        )
