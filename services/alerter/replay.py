"""Reading a topic from its beginning to its current end, outside any consumer group:
how the alerter rebuilds its in-memory state (alert history, delivery ledger, silences)
at start, since nothing but the log is its memory."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from core.errors import BrokerError
from core.kafka import plain_consumer
from core.kafka_access import Cluster

Handler = Callable[[bytes], None]
RecordHandler = Callable[[Any], None]
"""Takes a kafka-python ``ConsumerRecord`` (value, timestamp, offset ...)."""


def values(handle: Handler) -> RecordHandler:
    """A record handler that reads the value only."""
    return lambda record: handle(record.value)


def record_time(record: Any) -> datetime:
    """When the record was written (its producer's CreateTime), in UTC."""
    return datetime.fromtimestamp(record.timestamp / 1000, UTC)


def open_from_start(
    bootstrap: Cluster, topic: str
) -> tuple[KafkaConsumer, dict[TopicPartition, int]]:
    """A group-less consumer at the start of every partition, and each partition's end."""
    consumer = plain_consumer(bootstrap, enable_auto_commit=False)
    tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    return consumer, (consumer.end_offsets(tps) if tps else {})


def poll_into(consumer: KafkaConsumer, handle: RecordHandler, timeout_ms: int = 500) -> None:
    for records in consumer.poll(timeout_ms=timeout_ms).values():
        for record in records:
            handle(record)


def read_to_end(
    consumer: KafkaConsumer, end: dict[TopicPartition, int], handle: RecordHandler, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while any(consumer.position(tp) < offset for tp, offset in end.items()):
        if time.monotonic() > deadline:
            raise BrokerError(f"could not read {sorted({tp.topic for tp in end})} to the end")
        poll_into(consumer, handle)


def replay(
    bootstrap: Cluster, topic: str, handle: RecordHandler, timeout_s: float = 120.0
) -> None:
    """Every record of ``topic`` up to its end at the time of the call."""
    consumer, end = open_from_start(bootstrap, topic)
    try:
        read_to_end(consumer, end, handle, timeout_s)
    finally:
        consumer.close()
