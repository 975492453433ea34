"""How far behind the published figures are, on the store's `/metrics`: the lag of every
consumer group of the pipeline, and the age of the newest report received and counted.

On-call staff need one place that says "the numbers are N seconds old" and where they
are held up; the store is that place, since it sees both Kafka and what is queryable.
Measured at scrape time (a few Kafka and ClickHouse round trips), cached briefly so that
several scrapers cost no more than one."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import structlog
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from core.kafka import consumer_lag
from core.kafka_access import kafka_access
from core.settings import Settings
from schemas import group_inputs
from services.store.database import Database

log = structlog.get_logger("store.freshness")

CACHE_S = 5.0
NEWEST = (
    "SELECT (SELECT maxOrNull(received_at) FROM raw_reports) AS received, "
    "(SELECT maxOrNull(received_at) FROM canonical_reports) AS counted"
)


class PipelineCollector(Collector):
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings, self.db = settings, db
        self.kafka = kafka_access(settings)
        self._lock = threading.Lock()
        self._cached: tuple[float, list[Metric]] | None = None

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] > CACHE_S:
                self._cached = (now, [*self._lags(), *self._ages()])
            yield from self._cached[1]

    def _lags(self) -> list[Metric]:
        lag = GaugeMetricFamily(
            "truce_consumer_lag_records",
            "Records each consumer group of the pipeline has not committed yet, per topic.",
            labels=["group", "topic"],
        )
        for role, (group, topics) in group_inputs(self.settings.topic_prefix).items():
            try:
                measured = consumer_lag(self.kafka, group, topics)
            except Exception as exc:  # the broker is away: no sample rather than a wrong one
                log.warning("consumer lag not measured", group=group, error=str(exc)[:300])
                continue
            for topic, records in measured.items():
                lag.add_metric([role, topic], records)
        return [lag]

    def _ages(self) -> list[Metric]:
        age = GaugeMetricFamily(
            "truce_newest_report_age_seconds",
            "Age of the newest report stored as received (raw) and as counted (classified "
            "by the stream); their difference is how far counting is behind intake.",
            labels=["stage"],
        )
        try:
            row: dict[str, Any] = self.db.rows(NEWEST)[0]
        except Exception:  # ClickHouse is away: readiness says so
            return [age]
        wall = datetime.now(UTC)
        for stage in ("received", "counted"):
            moment = row[stage]
            if moment is not None:  # nothing stored yet: no age
                stamp = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
                age.add_metric([stage], max(0.0, (wall - stamp).total_seconds()))
        return [age]
