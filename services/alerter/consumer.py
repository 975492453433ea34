"""The alerts topic → the dispatcher, with offsets committed only once every receiver of
a record has delivered or dead-lettered it (and the delivery records are durable).

kafka-python calls block, so they all run on one dedicated thread (a consumer must not
be used from two threads at once); the event loop only awaits them."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import structlog
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from core.errors import BrokerError
from core.kafka import group_consumer
from core.kafka_access import Cluster
from schemas import Alert
from services.alerter.dispatcher import Dispatcher
from services.alerter.history import AlertHistory
from services.alerter.offsets import OffsetTracker, RecordRef
from services.alerter.replay import record_time
from services.alerter.telemetry import AlerterMetrics

log = structlog.get_logger("alerter.consumer")


class _Rebalances(ConsumerRebalanceListener):  # type: ignore[misc]
    """Notes partitions this member lost in a rebalance (revoked and not assigned back);
    the loop forgets their pending work, since their new owner resumes from the last
    commit with the same idempotency keys. Partitions assigned back keep their state.
    Both callbacks run inside ``poll`` on the Kafka thread; the loop reads ``lost`` after
    the poll returned, so the two never run at once."""

    def __init__(self) -> None:
        self.revoked: set[tuple[str, int]] = set()
        self.lost: set[tuple[str, int]] = set()

    def on_partitions_revoked(self, revoked: Any) -> None:
        self.revoked.update((tp.topic, tp.partition) for tp in revoked)

    def on_partitions_assigned(self, assigned: Any) -> None:
        kept = {(tp.topic, tp.partition) for tp in assigned}
        self.lost.update(self.revoked - kept)
        self.lost -= kept
        self.revoked = set()


class AlertConsumer:
    def __init__(
        self,
        *,
        bootstrap: Cluster,
        topic: str,
        group_id: str,
        producer: KafkaProducer,
        dispatcher: Dispatcher,
        tracker: OffsetTracker,
        history: AlertHistory,
        metrics: AlerterMetrics,
        max_in_flight: int,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.group_id = group_id
        self.producer = producer
        self.dispatcher = dispatcher
        self.tracker = tracker
        self.history = history
        self.metrics = metrics
        self.max_in_flight = max_in_flight
        self.polling = False
        self.last_error: str | None = None
        self._kafka = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alerter-kafka")
        self._listener = _Rebalances()

    async def _call(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._kafka, partial(func, *args, **kwargs))

    def _make(self) -> KafkaConsumer:
        consumer = group_consumer(
            self.bootstrap,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_interval_ms=3_600_000,
        )
        # Learn the topic's partitions before joining: a group leader without them assigns
        # nothing, and the next metadata refresh (and rebalance) can be minutes away.
        deadline = time.monotonic() + 60
        while not consumer.partitions_for_topic(self.topic):
            if time.monotonic() > deadline:
                consumer.close()
                raise BrokerError(f"topic {self.topic} has no partitions")
            time.sleep(0.5)
        consumer.subscribe([self.topic], listener=self._listener)
        return consumer

    async def run(self) -> None:
        """Consume until cancelled; reconnects after broker trouble (nothing committed
        early, so nothing is lost)."""
        while True:
            try:
                await self._consume()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.polling = False
                self.last_error = f"consumer: {exc}"[:500]
                log.exception("alerts consumer failed; reconnecting")
                await asyncio.sleep(2.0)

    async def _consume(self) -> None:
        consumer = await self._call(self._make)
        paused = False
        try:
            while True:
                polled = await self._call(consumer.poll, timeout_ms=200, max_records=500)
                self.polling, self.last_error = True, None
                self._forget_lost()
                for records in polled.values():
                    for record in records:
                        self._handle(record)
                await self._commit(consumer)
                self.metrics.in_flight.set(self.tracker.in_flight)
                full = self.tracker.in_flight >= self.max_in_flight
                if full != paused:
                    assigned = await self._call(consumer.assignment)
                    await self._call(consumer.pause if full else consumer.resume, *assigned)
                    paused = full
        finally:
            self.polling = False
            await self._call(consumer.close, autocommit=False)

    def _forget_lost(self) -> None:
        if self._listener.lost:
            log.info("partitions lost to a rebalance", partitions=sorted(self._listener.lost))
            self.tracker.forget(self._listener.lost)
            self._listener.lost = set()

    def _handle(self, record: Any) -> None:
        ref = RecordRef(record.topic, record.partition, record.offset)
        self.metrics.consumed.inc()
        try:
            alert = Alert.model_validate_json(record.value)
        except ValueError as exc:
            log.error("alert record does not decode; skipped", offset=ref.offset, error=str(exc))
            self.tracker.add(ref, 0)
            return
        self.history.add(alert, record_time(record))
        if self.tracker.pending(ref):
            return  # redelivered by a rebalance while its first delivery is still under way
        log.debug("alert consumed", partition=ref.partition, offset=ref.offset, area=alert.area,
                  rule=alert.rule, state=alert.state, version=alert.version)  # fmt: skip
        self.dispatcher.submit(alert, ref)

    async def _commit(self, consumer: KafkaConsumer) -> None:
        offsets = self.tracker.committable()
        if not offsets:
            return
        assigned = await self._call(consumer.assignment)
        offsets = {tp: o for tp, o in offsets.items() if TopicPartition(*tp) in assigned}
        if not offsets:
            return
        await self._call(self.producer.flush, timeout=30)  # delivery records first
        try:
            await self._call(
                consumer.commit,
                {
                    TopicPartition(topic, partition): OffsetAndMetadata(offset, "", -1)
                    for (topic, partition), offset in offsets.items()
                },
            )
        except KafkaError as exc:  # a rebalance: the next commit carries the same offsets
            log.warning("commit failed; will retry", error=str(exc))
            return
        self.tracker.committed(offsets)
        log.debug("offsets committed", offsets={f"{t}/{p}": o for (t, p), o in offsets.items()})

    def close(self) -> None:
        self._kafka.shutdown(wait=True, cancel_futures=True)
