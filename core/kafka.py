"""Kafka client factories (kafka-python) and the topic administration every process shares."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaTimeoutError, TopicAlreadyExistsError

DISCARD_JOIN_S = 5.0
"""How long a discarded producer's sender may take to fail its batches and stop."""


def durable_producer(bootstrap: str, **overrides: object) -> KafkaProducer:
    """An idempotent producer that only reports success once every in-sync replica has the write."""
    config: dict[str, object] = {
        "bootstrap_servers": bootstrap,
        "acks": "all",
        "enable_idempotence": True,
        "retries": 2147483647,
        "max_in_flight_requests_per_connection": 5,
        "linger_ms": 5,
        "compression_type": None,
        "request_timeout_ms": 10_000,
        "delivery_timeout_ms": 30_000,
    }
    config.update(overrides)
    return KafkaProducer(**config)


def admin_client(bootstrap: str, timeout_ms: int = 5_000) -> KafkaAdminClient:
    """An admin client that fails within ``timeout_ms`` when the broker does not answer."""
    return KafkaAdminClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=timeout_ms,
        bootstrap_timeout_ms=timeout_ms,
    )


def group_consumer(*topics: str, **config: object) -> KafkaConsumer:
    """A KafkaConsumer in the group ``config["group_id"]`` that completes every rebalance
    it starts.

    kafka-python (3.0.12) rejoins its group when the partitions of a subscribed topic
    change, which every new member does once: it joins before its first metadata lists
    its topics, is assigned nothing, and rejoins when the metadata arrives. That rejoin is
    driven only by "the metadata differs from what the leader assigned with", and the
    leader records the new metadata while the JoinGroup/SyncGroup round trip is still in
    flight; when the ``poll()`` that started it times out meanwhile, no later poll sees a
    reason to rejoin, the round trip's assignment is never applied, heartbeats stay off,
    and the member consumes nothing for good. The Java client marks such a rebalance as
    needed until it has completed (KAFKA-9815); this does the same."""
    consumer = KafkaConsumer(*topics, **config)
    _rejoin_until_joined(consumer._coordinator)
    return consumer


def discard_producer(producer: KafkaProducer) -> None:
    """Stop ``producer`` at once, failing whatever it still holds.

    kafka-python (3.0.12) ``close(timeout=0)`` raises from its flush while batches are
    pending and never reaches the sender's force-close: the discarded producer went on
    sending them, so a request the partner was told had failed could still be written
    later. Its sender thread (``_sender``, private) is force-closed here instead, which
    fails the pending batches, and the close then completes."""
    try:
        producer.close(timeout=0)
        return
    except KafkaTimeoutError:
        pass
    sender = producer._sender
    if sender is not None:
        sender.force_close()
        sender.join(DISCARD_JOIN_S)
    with contextlib.suppress(KafkaTimeoutError):
        producer.close(timeout=0)


def _rejoin_until_joined(coordinator: Any) -> None:
    """Turn a pending metadata rebalance into ``request_rejoin()``, which only a completed
    join clears (kafka-python's ``ConsumerCoordinator`` internals, checked here so that a
    release that renames them fails at construction, not in the consumer's IO thread)."""
    needed = coordinator.need_rejoin
    _ = (
        coordinator._assignment_snapshot,
        coordinator._metadata_snapshot,
        coordinator.request_rejoin,
    )

    def need_rejoin() -> bool:
        assigned_with = coordinator._assignment_snapshot
        if assigned_with is not None and assigned_with != coordinator._metadata_snapshot:
            coordinator.request_rejoin()
        return bool(needed())

    coordinator.need_rejoin = need_rejoin


def cluster_answers(bootstrap: str, timeout_ms: int = 3_000) -> bool:
    """True when a metadata request succeeds (an open port is not enough)."""
    try:
        admin = admin_client(bootstrap, timeout_ms)
    except Exception:
        return False
    try:
        admin.list_topics()
        return True
    except Exception:
        return False
    finally:
        admin.close()


def ensure_topics(
    bootstrap: str,
    names: Iterable[str],
    *,
    partitions: int,
    compacted: Iterable[str] = (),
) -> None:
    """Create missing topics: infinite retention (the log is the system of record)."""
    compacted_set = set(compacted)
    admin = admin_client(bootstrap)
    try:
        existing = set(admin.list_topics())
        wanted = [
            NewTopic(
                name=name,
                num_partitions=partitions,
                replication_factor=1,
                topic_configs=(
                    {"cleanup.policy": "compact"}
                    if name in compacted_set
                    else {"retention.ms": "-1", "retention.bytes": "-1"}
                ),
            )
            for name in names
            if name not in existing
        ]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(wanted)
    finally:
        admin.close()


def consumer_lag(bootstrap: str, group_id: str, topics: Iterable[str]) -> dict[str, int]:
    """Per topic: records not yet committed by ``group_id`` (end offset - committed)."""
    admin = admin_client(bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    try:
        committed = admin.list_group_offsets(group_id).get(group_id, {})
        lag: dict[str, int] = {}
        for topic in topics:
            partitions = consumer.partitions_for_topic(topic) or set()
            tps = [TopicPartition(topic, p) for p in partitions]
            ends = consumer.end_offsets(tps) if tps else {}
            lag[topic] = sum(
                end - (committed[tp].offset if tp in committed else 0) for tp, end in ends.items()
            )
        return lag
    finally:
        consumer.close()
        admin.close()


def end_offsets(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    """The end offset of every partition of a topic (empty when it does not exist)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in partitions]
        return dict(consumer.end_offsets(tps)) if tps else {}
    finally:
        consumer.close()


def topic_size(bootstrap: str, topic: str) -> int:
    """Records in a topic (end offsets; the Truce topics are never truncated)."""
    return sum(end_offsets(bootstrap, topic).values())
