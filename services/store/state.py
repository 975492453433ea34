"""What the store's handlers share: the database, the sink thread, keys and metrics."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from prometheus_client import CollectorRegistry

from core.failpoints import STORE_INSERT, Failpoints
from core.http import require_roles
from core.kafka import replication
from core.kafka_access import kafka_access
from core.keys import ApiKey, KeyStore, Role
from core.limits import RateLimiter
from core.settings import Settings
from schemas import group_names, log_heads_topic, topic_names
from services.store.database import Database
from services.store.editions import Publisher, Restated, edition_producer, pinned_head
from services.store.freshness import PipelineCollector
from services.store.log.keeper import LogKeeper
from services.store.log.signer import load_or_create
from services.store.rows import (
    alert_row,
    canonical_row,
    dead_letter_row,
    delivery_row,
    edition_row,
    log_entry_row,
    metric_row,
    raw_row,
)
from services.store.schedule import Schedule, Slot
from services.store.sink import Sink
from services.store.sql import SqlEndpoint
from services.store.telemetry import StoreMetrics


class StoreState:
    def __init__(self, settings: Settings, database: Database | None = None) -> None:
        self.settings = settings
        self.db = database or Database(settings.clickhouse_url)
        self.keys = KeyStore(settings)
        self.sql = SqlEndpoint(settings, self.db.dsn)
        self.metrics = StoreMetrics()
        names = topic_names(settings.topic_prefix)
        self.sink = Sink(
            bootstrap=kafka_access(settings),
            group_id=group_names(settings.topic_prefix).store_sink,
            converters={
                names.reports: (raw_row, log_entry_row),
                names.events: canonical_row,
                names.metrics: metric_row,
                names.deadletter: dead_letter_row,
                names.alerts: alert_row,
                names.deliveries: delivery_row,
                names.editions: edition_row,
            },
            insert=Failpoints(settings.failpoints_dir).guard(STORE_INSERT, self.db.insert),
            metrics=self.metrics,
        )
        self.log = LogKeeper(
            db=self.db,
            cluster=kafka_access(settings),
            heads_topic=log_heads_topic(settings.topic_prefix),
            reports_topic=names.reports,
            sink_group=group_names(settings.topic_prefix).store_sink,
            signer=None,
            interval_s=settings.log_head_interval_s,
            replication=replication(settings),
        )
        self.metrics.registry.register(PipelineCollector(settings, self.db))
        self.limiter = RateLimiter(settings.query_rate_limit_per_s, settings.query_rate_limit_burst)
        self._readers = require_roles(
            lambda: self.keys, Role.MONITOR, Role.TASKFORCE, limiter=self.limiter
        )
        self._anyone = require_roles(lambda: self.keys, *Role, limiter=self.limiter)
        self._publishers = require_roles(lambda: self.keys, Role.TASKFORCE, limiter=self.limiter)
        self.editions = Publisher(
            self.db,
            names.editions,
            edition_producer(kafka_access(settings)),
            lambda: pinned_head(self.log),
        )
        self.restated = Restated()
        self.schedule = (  # one process runs it: the one that signs tree heads
            Schedule(self.editions, Slot.parse(settings.edition_schedule))
            if settings.edition_schedule and settings.log_publisher
            else None
        )

    def start(self) -> None:
        self.db.migrate()
        if self.settings.log_publisher:  # the one process holding the key signs heads
            self.log.signer = load_or_create(
                self.settings.log_signing_key_path,
                create=self.settings.log_signing_key is None,
            )
        self.sink.start()
        self.log.start()
        if self.schedule is not None:
            self.schedule.start()

    def stop(self) -> None:
        if self.schedule is not None:
            self.schedule.stop()
            self.schedule.join(timeout=15)
        self.editions.close()
        self.log.stop()
        self.sink.stop()
        self.log.join(timeout=15)
        self.sink.join(timeout=15)
        self.log.close()
        self.sql.close()
        self.db.close()

    def auth_reader(self, request: Request) -> ApiKey:
        return self._readers(request)

    def auth_publisher(self, request: Request) -> ApiKey:
        return self._publishers(request)

    def auth_any(self, request: Request) -> ApiKey:
        return self._anyone(request)

    def readiness(self) -> dict[str, bool]:
        return {
            "clickhouse": self.db.answers(),
            "sink": self.sink.healthy.is_set(),
            "log": self.log.healthy.is_set(),
        }

    def readiness_details(self) -> dict[str, Any]:
        return {"error": self.sink.last_error or self.log.last_error}

    def metrics_registry(self) -> CollectorRegistry:
        return self.metrics.registry


def state(request: Request) -> StoreState:
    st: StoreState = request.app.state.store
    return st
