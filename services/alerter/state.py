"""What the alerter's handlers and background tasks share, and its start-up order:
rebuild memory from the log (alert history, delivery ledger, silences), then consume."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import structlog
from fastapi import Request
from prometheus_client import CollectorRegistry

from core.http import require_roles
from core.kafka import durable_producer, ensure_topics, replication
from core.kafka_access import kafka_access
from core.keys import ApiKey, KeyStore, Role
from core.settings import Settings
from schemas import AlertDelivery, group_names, topic_names
from services.alerter.config import ConfigSource
from services.alerter.consumer import AlertConsumer
from services.alerter.dispatcher import Dispatcher
from services.alerter.history import AlertHistory
from services.alerter.ledger import DeliveryLedger
from services.alerter.offsets import OffsetTracker
from services.alerter.replay import replay
from services.alerter.silences import SilenceBook, SilenceLog
from services.alerter.telemetry import AlerterMetrics

log = structlog.get_logger("alerter")


class AlerterState:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.names = topic_names(settings.topic_prefix)
        self.config = ConfigSource(settings.alerter_config_path)
        self.keys = KeyStore(settings)
        self.metrics = AlerterMetrics()
        self.history = AlertHistory()
        self.ledger = DeliveryLedger()
        self.tracker = OffsetTracker()
        self.silences = SilenceBook()
        self.kafka = kafka_access(settings)
        self.silence_log = SilenceLog(
            self.kafka, settings.topic_prefix, settings.kafka_partitions, replication(settings)
        )
        self.silences_loaded = threading.Event()
        self._stop = threading.Event()
        self.producer = durable_producer(self.kafka)
        self.client = httpx.AsyncClient(follow_redirects=False)
        self.dispatcher = Dispatcher(
            settings, self.config, self.silences, self.ledger, self.tracker,
            self.publish, self.metrics, self.client,
        )  # fmt: skip
        self.consumer = AlertConsumer(
            bootstrap=self.kafka,
            topic=self.names.alerts,
            group_id=group_names(settings.topic_prefix).alerter,
            producer=self.producer,
            dispatcher=self.dispatcher,
            tracker=self.tracker,
            history=self.history,
            metrics=self.metrics,
            max_in_flight=settings.alerter_max_in_flight,
        )
        self._task: asyncio.Task[None] | None = None
        self._follower: threading.Thread | None = None
        self.monitor = require_roles(lambda: self.keys, Role.MONITOR, Role.TASKFORCE)
        self.silencer = require_roles(lambda: self.keys, Role.TASKFORCE)
        self.operator = require_roles(lambda: self.keys)

    def publish(self, delivery: AlertDelivery) -> None:
        """Queue a delivery record (made durable before the next offset commit)."""
        self.ledger.record(delivery)
        self.producer.send(
            self.names.deliveries,
            key=delivery.fingerprint.encode(),
            value=delivery.model_dump_json().encode(),
        )

    def _rebuild(self) -> None:
        names = self.names
        ensure_topics(
            self.kafka,
            [names.alerts, names.deliveries],
            partitions=self.settings.kafka_partitions,
            replication=replication(self.settings),
        )
        self.silence_log.ensure()
        replay(self.kafka, names.alerts, self.history.add_record)
        self.ledger.load(self.kafka, names.deliveries)
        self._follower = threading.Thread(
            target=self.silence_log.follow,
            args=(self.silences, self.silences_loaded, self._stop),
            name="silences",
            daemon=True,
        )
        self._follower.start()
        if not self.silences_loaded.wait(timeout=120):
            raise TimeoutError("could not load the silences topic")

    async def start(self) -> None:
        await asyncio.to_thread(self._rebuild)
        self._task = asyncio.create_task(self.consumer.run())
        log.info("alerter started", config=str(self.config.path))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.dispatcher.close()
        await self.client.aclose()
        self._stop.set()
        await asyncio.to_thread(self.consumer.close)
        await asyncio.to_thread(self.producer.close, 10)

    def readiness(self) -> dict[str, bool]:
        return {
            "consumer": self.consumer.polling,
            "silences": self.silences_loaded.is_set(),
        }

    def readiness_details(self) -> dict[str, Any]:
        return {"error": self.consumer.last_error, "config_error": self.config.error}

    def metrics_registry(self) -> CollectorRegistry:
        return self.metrics.registry


def state(request: Request) -> AlerterState:
    st: AlerterState = request.app.state.alerter
    return st


def monitor_key(request: Request) -> ApiKey:
    return state(request).monitor(request)


def silencer_key(request: Request) -> ApiKey:
    return state(request).silencer(request)


def operator_key(request: Request) -> ApiKey:
    return state(request).operator(request)
