"""Prometheus metrics of the ingest service.

With several ingest processes on one port a scrape reaches one of them, so they write
their samples to prometheus-client's multiprocess directory (``PROMETHEUS_MULTIPROC_DIR``,
which `truce up` sets to TRUCE_HOME/ingest/metrics and empties before the first start) and
every scrape sums the counters and histograms of all of them, those that died included;
the ledger gauge is the largest of the live processes'."""

from __future__ import annotations

import os
import re
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess

from core.errors import ConfigError
from core.settings import PROMETHEUS_MULTIPROC_ENV, Settings
from services.ingest.coordination import process_identity

_LIVE_FILE = re.compile(r"^gauge_live\w+?_(\d+)\.db$")


def multiprocess_dir() -> Path | None:
    """prometheus-client's switch, read by the library at import: None when unset."""
    value = os.environ.get(PROMETHEUS_MULTIPROC_ENV)
    return Path(value) if value else None


def forget_dead_processes(directory: Path) -> None:
    """Drop the live gauges of processes that are gone (SIGKILL leaves them behind)."""
    for path in directory.glob("gauge_live*.db"):
        match = _LIVE_FILE.match(path.name)
        if match and process_identity(int(match.group(1))) is None:
            multiprocess.mark_process_dead(int(match.group(1)), str(directory))  # type: ignore[no-untyped-call]


class IngestMetrics:
    def __init__(self, settings: Settings) -> None:
        self.shared = multiprocess_dir()
        if settings.ingest_workers > 1 and self.shared is None:
            raise ConfigError(
                f"{settings.ingest_workers} ingest processes need {PROMETHEUS_MULTIPROC_ENV} "
                "(each scrape reaches one of them)",
                hint=f"set it to {settings.ingest_metrics_dir}, as `truce up` does",
            )
        self.registry = CollectorRegistry()
        if self.shared is not None:
            forget_dead_processes(self.shared)
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
            "truce_ingest_known_reports",
            "Report ids in the ingest ledger (the largest of the live ingest processes').",
            registry=self.registry,
            multiprocess_mode="livemax",
        )

    def collect(self) -> CollectorRegistry:
        """What a scrape answers: this process's registry, or every process's samples."""
        if self.shared is None:
            return self.registry
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, str(self.shared))  # type: ignore[no-untyped-call]
        return registry
