"""The real broker: kafka-python producer and group consumer, aiokafka consumer, a Faust agent,
start failures."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from kafka import TopicPartition

from core.errors import BrokerError
from core.kafka import cluster_answers, durable_producer, ensure_topics, group_consumer
from services.runtime import broker
from tests.conftest import isolated_settings

pytestmark = pytest.mark.integration


def test_broker_answers_metadata(bootstrap: str) -> None:
    assert cluster_answers(bootstrap)


def test_kafka_python_acks_all_is_read_by_aiokafka(
    bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    topic = unique_name("probe")
    ensure_topics(bootstrap, [topic], partitions=2)
    producer = durable_producer(bootstrap)
    sent = [producer.send(topic, key=f"k{i}".encode(), value=f"v{i}".encode()) for i in range(20)]
    offsets = [future.get(timeout=10) for future in sent]
    producer.close()
    assert all(meta.offset >= 0 for meta in offsets)

    async def consume() -> set[bytes]:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=unique_name("g"),
            auto_offset_reset="earliest",
        )
        await consumer.start()
        seen: set[bytes] = set()
        try:
            deadline = time.monotonic() + 30
            while len(seen) < 20 and time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=1000)
                for records in batch.values():
                    seen.update(r.value for r in records if r.value is not None)
        finally:
            await consumer.stop()
        return seen

    assert asyncio.run(consume()) == {f"v{i}".encode() for i in range(20)}


def test_group_consumers_take_their_partitions_with_polls_shorter_than_a_rebalance(
    bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    """A new member usually joins before its metadata lists its topic, is assigned nothing
    and rejoins once the metadata arrives. With 1 ms polls every JoinGroup/SyncGroup round
    trip outlives the poll that started it, and kafka-python alone then mostly never
    applies the rejoin's assignment: the member stays without partitions for good (as the
    store's sink did after `truce rebuild`). Several new members, because on a broker whose
    group coordinator is still starting the first one sees its metadata in time. The
    deadline only turns that hang into a failure."""
    topic = unique_name("rejoin")
    ensure_topics(bootstrap, [topic], partitions=2)
    wanted = {TopicPartition(topic, 0), TopicPartition(topic, 1)}
    for _ in range(4):
        consumer = group_consumer(
            bootstrap, topic, group_id=unique_name("g"), enable_auto_commit=False
        )
        try:
            deadline = time.monotonic() + 60
            while consumer.assignment() != wanted and time.monotonic() < deadline:
                consumer.poll(timeout_ms=1)
            assert consumer.assignment() == wanted
        finally:
            consumer.close()


def test_topics_keep_records_forever(bootstrap: str, unique_name: Callable[[str], str]) -> None:
    from kafka.admin import ConfigResource, ConfigResourceType

    from core.kafka import admin_client

    topic = unique_name("log")
    ensure_topics(bootstrap, [topic], partitions=1)
    admin = admin_client(bootstrap)
    try:
        result = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        admin.close()
    config = result["topic"][topic]
    assert config["retention.ms"]["value"] == "-1"
    assert config["retention.bytes"]["value"] == "-1"


def test_port_taken_fails_fast_with_clear_error(tmp_path: Path, broker_settings: object) -> None:
    from core.settings import Settings

    assert isinstance(broker_settings, Settings)
    taken = isolated_settings(tmp_path / "home", kafka_port=broker_settings.kafka_port)
    started = time.monotonic()
    with pytest.raises(BrokerError) as info:
        broker.start(taken)
    assert time.monotonic() - started < 10
    assert f"port 127.0.0.1:{broker_settings.kafka_port} is already in use" in str(info.value)
    assert "TRUCE_KAFKA_PORT" in info.value.hint


def test_broker_that_dies_reports_log_tail(tmp_path: Path) -> None:
    bad = isolated_settings(tmp_path / "home")
    bad.kafka_data_dir.mkdir(parents=True)
    (bad.kafka_data_dir / "meta.properties").write_text("version=1\nnode.id=99\n")
    started = time.monotonic()
    with pytest.raises(BrokerError) as info:
        broker.start(bad)
    assert time.monotonic() - started < bad.kafka_start_timeout_s
    message = str(info.value)
    assert message.startswith("Kafka broker exited with code")
    assert "kafka-server.log" in info.value.hint
