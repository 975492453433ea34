"""Kafka client factories (kafka-python) and the topic administration every process shares."""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import structlog
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import (
    KafkaError,
    KafkaTimeoutError,
    SaslAuthenticationFailedError,
    TopicAlreadyExistsError,
)

from core.errors import BrokerError
from core.kafka_access import Cluster, KafkaAccess, access_of
from core.settings import Settings

log = structlog.get_logger("kafka")

GROUP_SESSION_TIMEOUT_S = 10.0
GROUP_SESSION: dict[str, object] = {
    "session_timeout_ms": int(GROUP_SESSION_TIMEOUT_S * 1000),
    "heartbeat_interval_ms": int(GROUP_SESSION_TIMEOUT_S * 1000) // 4,
}
"""The group session of our kafka-python consumers (store sink, alerter). kafka-python's
default is 45 s: a store restarted after a SIGKILL waited that long for its dead
predecessor to leave the group before it got the partitions (the soak: 46 s without
fresh figures after every store crash)."""

DISCARD_JOIN_S = 5.0
"""How long a discarded producer's sender may take to fail its batches and stop."""


class _SaslRefusals(logging.Handler):
    """Notices the broker refusing SASL credentials: kafka-python (3.0.x) logs the
    SaslAuthenticationFailedError of each connection attempt and raises only "Unable to
    bootstrap" once its timeout is over, which does not say that the password is wrong."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.refused: Exception | None = None

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        for arg in args:
            if isinstance(arg, SaslAuthenticationFailedError):
                self.refused = arg


def _handshake(access: KafkaAccess) -> str | None:
    """How a TCP (and, with TLS, TLS) handshake with the first bootstrap server ends:
    None when it succeeds, else the reason."""
    host, _, port = access.bootstrap_list[0].rpartition(":")
    context = access.ssl_context()
    try:
        with socket.create_connection((host, int(port)), timeout=5) as raw:
            if context is not None:
                context.wrap_socket(raw, server_hostname=host).close()
            return None
    except ssl.SSLError as exc:
        return f"TLS: {exc}"
    except OSError as exc:
        return f"connect: {exc}"


@contextlib.contextmanager
def _explained(access: KafkaAccess) -> Iterator[None]:
    """Turn a failed bootstrap into an error that names the cause: refused credentials or
    a certificate the CA file does not vouch for."""
    refusals = _SaslRefusals()
    kafka_log = logging.getLogger("kafka")
    kafka_log.addHandler(refusals)
    try:
        yield
    except KafkaError as exc:
        if refusals.refused is not None:
            raise BrokerError(
                f"Kafka at {access.bootstrap} refused the SASL credentials of user "
                f"{access.sasl_username!r} ({access.sasl_mechanism}): {refusals.refused}",
                hint="check TRUCE_KAFKA_SASL_USERNAME, TRUCE_KAFKA_SASL_PASSWORD and "
                "TRUCE_KAFKA_SASL_MECHANISM",
            ) from exc
        problem = _handshake(access)
        if problem is not None and problem.startswith("TLS"):
            raise BrokerError(
                f"the TLS handshake with Kafka at {access.bootstrap} failed: {problem}",
                hint="TRUCE_KAFKA_SSL_CAFILE must hold the CA that signed the brokers' "
                "certificates (TRUCE_KAFKA_SSL_CHECK_HOSTNAME: their names)",
            ) from exc
        if problem is None and access.uses_sasl:
            # the broker answers, but no session got past SASL: kafka-python sometimes
            # reads the broker's close before its refusal and logs only "disconnected"
            raise BrokerError(
                f"Kafka at {access.bootstrap} answers but let no session of user "
                f"{access.sasl_username!r} ({access.sasl_mechanism}) in: {exc}",
                hint="check TRUCE_KAFKA_SASL_USERNAME, TRUCE_KAFKA_SASL_PASSWORD and "
                "TRUCE_KAFKA_SASL_MECHANISM",
            ) from exc
        raise
    finally:
        kafka_log.removeHandler(refusals)


def durable_producer(cluster: Cluster, **overrides: object) -> KafkaProducer:
    """An idempotent producer that only reports success once every in-sync replica has the write
    (at least ``min.insync.replicas`` of them: the topics are created with it)."""
    config: dict[str, object] = {
        **access_of(cluster).kafka_python(),
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
    with _explained(access_of(cluster)):
        return KafkaProducer(**config)


def admin_client(cluster: Cluster, timeout_ms: int = 5_000) -> KafkaAdminClient:
    """An admin client that fails within ``timeout_ms`` when the broker does not answer."""
    access = access_of(cluster)
    with _explained(access):
        return KafkaAdminClient(
            **access.kafka_python(),
            request_timeout_ms=timeout_ms,
            bootstrap_timeout_ms=timeout_ms,
        )


def plain_consumer(cluster: Cluster, *topics: str, **config: object) -> KafkaConsumer:
    """A KafkaConsumer with the cluster's credentials (``group_id=None`` unless given)."""
    options: dict[str, object] = {"group_id": None, **access_of(cluster).kafka_python()}
    with _explained(access_of(cluster)):
        return KafkaConsumer(*topics, **{**options, **config})


def group_consumer(cluster: Cluster, *topics: str, **config: object) -> KafkaConsumer:
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
    access = access_of(cluster)
    settings = {**GROUP_SESSION, **config}
    with _explained(access):
        consumer = KafkaConsumer(*topics, **access.kafka_python(), **settings)
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


def cluster_answers(cluster: Cluster, timeout_ms: int = 3_000) -> bool:
    """True when a metadata request succeeds (an open port is not enough)."""
    try:
        admin = admin_client(cluster, timeout_ms)
    except Exception:
        return False
    try:
        admin.list_topics()
        return True
    except Exception:
        return False
    finally:
        admin.close()


@dataclass(frozen=True)
class Replication:
    """How many copies of each partition, and how many must have a write before acks=all
    answers: a broker's disk alone never holds the only copy of an accepted report."""

    factor: int = 1
    min_insync: int = 1


def replication(settings: Settings) -> Replication:
    """The replication every topic Truce creates gets (Faust's too: streams/app.py)."""
    return Replication(settings.replication_factor, settings.min_insync_replicas)


def ensure_topics(
    cluster: Cluster,
    names: Iterable[str],
    *,
    partitions: int,
    compacted: Iterable[str] = (),
    replication: Replication = Replication(),
) -> list[str]:
    """Create missing topics (infinite retention: the log is the system of record) with
    ``replication``; return how the existing ones differ from it (never changed here:
    adding replicas is a reassignment an operator plans)."""
    compacted_set = set(compacted)
    names = list(names)
    admin = admin_client(cluster)
    try:
        existing = set(admin.list_topics())
        wanted = [
            NewTopic(
                name=name,
                num_partitions=partitions,
                replication_factor=replication.factor,
                topic_configs={
                    "min.insync.replicas": str(replication.min_insync),
                    **(
                        {"cleanup.policy": "compact"}
                        if name in compacted_set
                        else {"retention.ms": "-1", "retention.bytes": "-1"}
                    ),
                },
            )
            for name in names
            if name not in existing
        ]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(wanted)
        problems = _mismatches(admin, [name for name in names if name in existing], replication)
    finally:
        admin.close()
    for problem in problems:  # every service that creates topics warns at start-up
        log.warning("topic replication differs from the settings", problem=problem)
    return problems


def replication_mismatches(
    cluster: Cluster, names: Iterable[str], replication: Replication
) -> list[str]:
    """How the existing topics among ``names`` differ from ``replication`` (one line each)."""
    admin = admin_client(cluster)
    try:
        existing = set(admin.list_topics())
        return _mismatches(admin, [name for name in names if name in existing], replication)
    finally:
        admin.close()


def _mismatches(admin: KafkaAdminClient, names: list[str], replication: Replication) -> list[str]:
    if not names:
        return []
    problems: list[str] = []
    for topic in admin.describe_topics(names):
        factors = {len(partition["replica_nodes"]) for partition in topic["partitions"]}
        if factors != {replication.factor}:
            shown = "/".join(str(f) for f in sorted(factors))
            problems.append(
                f"{topic['name']}: replication factor {shown}, wanted {replication.factor}"
            )
    resources = [
        ConfigResource(ConfigResourceType.TOPIC, name, configs={"min.insync.replicas": None})
        for name in names
    ]
    described = admin.describe_configs(resources, config_filter="all")
    for name, configs in sorted(described.get("topic", {}).items()):
        value = configs.get("min.insync.replicas", {}).get("value")
        if value is None or int(value) != replication.min_insync:
            problems.append(f"{name}: min.insync.replicas {value}, wanted {replication.min_insync}")
    return problems


def consumer_lag(cluster: Cluster, group_id: str, topics: Iterable[str]) -> dict[str, int]:
    """Per topic: records not yet committed by ``group_id`` (end offset - committed)."""
    admin = admin_client(cluster)
    consumer = plain_consumer(cluster)
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


def end_offsets(cluster: Cluster, topic: str) -> dict[TopicPartition, int]:
    """The end offset of every partition of a topic (empty when it does not exist)."""
    consumer = plain_consumer(cluster)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in partitions]
        return dict(consumer.end_offsets(tps)) if tps else {}
    finally:
        consumer.close()


def topic_size(cluster: Cluster, topic: str) -> int:
    """Records in a topic (end offsets; the Truce topics are never truncated)."""
    return sum(end_offsets(cluster, topic).values())
