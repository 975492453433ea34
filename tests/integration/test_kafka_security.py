"""Every Kafka client Truce builds connects to a secured broker from the TRUCE_KAFKA_…
settings alone: SCRAM-SHA-512/256 and PLAIN over SASL_SSL, client certificates over SSL;
a wrong password or an unknown CA is refused with an error that names the cause."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import faust
import pytest
from kafka.errors import KafkaTimeoutError

from core.errors import BrokerError
from core.kafka import (
    admin_client,
    cluster_answers,
    durable_producer,
    ensure_topics,
    plain_consumer,
)
from core.kafka_access import KafkaAccess, kafka_access
from core.settings import Settings
from tests.conftest import free_port, isolated_settings
from tests.support.secure_broker import (
    CLIENT_KEY_PASSWORD,
    PLAIN_USER,
    USERS,
    SecureBroker,
    secure_broker,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    settings = isolated_settings(tmp_path_factory.mktemp("secure"), kafka_heap="256m")
    with secure_broker(settings, free_port(), free_port()) as running:
        yield running


def _settings(home: Path, secured: SecureBroker, **security: object) -> Settings:
    return isolated_settings(home, kafka_bootstrap=secured.sasl_ssl, **{
        "kafka_security_protocol": "SASL_SSL",
        "kafka_ssl_cafile": secured.ca,
        **security,
    })  # fmt: skip


def _scram(home: Path, secured: SecureBroker, user: str = "truce", **extra: object) -> Settings:
    mechanism, password = USERS[user]
    values: dict[str, object] = {
        "kafka_sasl_mechanism": mechanism,
        "kafka_sasl_username": user,
        "kafka_sasl_password": password,
        **extra,
    }
    return _settings(home, secured, **values)


def _round_trip(access: KafkaAccess) -> list[bytes]:
    """Create a topic (admin), write (durable producer), read back (consumer)."""
    topic = f"secure-{uuid.uuid4().hex[:8]}"
    assert ensure_topics(access, [topic], partitions=1) == []
    producer = durable_producer(access)
    try:
        for i in range(3):
            producer.send(topic, key=b"k", value=f"m{i}".encode()).get(timeout=30)
    finally:
        producer.close()
    consumer = plain_consumer(access, topic, auto_offset_reset="earliest",
                              consumer_timeout_ms=10_000)  # fmt: skip
    try:
        return [record.value for record in consumer]
    finally:
        consumer.close()


def test_scram_sha_512_over_ssl_for_producer_consumer_and_admin(
    secured: SecureBroker, tmp_path: Path
) -> None:
    settings = _scram(tmp_path, secured)
    assert "scram-512-secret" not in repr(settings)  # a SecretStr
    assert _round_trip(kafka_access(settings)) == [b"m0", b"m1", b"m2"]


def test_scram_sha_256_and_plain_over_ssl(secured: SecureBroker, tmp_path: Path) -> None:
    assert cluster_answers(kafka_access(_scram(tmp_path, secured, "truce256")))
    user, password = PLAIN_USER
    plain = _settings(tmp_path, secured, kafka_sasl_mechanism="PLAIN",
                      kafka_sasl_username=user, kafka_sasl_password=password)  # fmt: skip
    assert cluster_answers(kafka_access(plain))


def test_client_certificate_over_ssl(secured: SecureBroker, tmp_path: Path) -> None:
    with_cert = isolated_settings(
        tmp_path, kafka_bootstrap=secured.ssl, kafka_security_protocol="SSL",
        kafka_ssl_cafile=secured.ca, kafka_ssl_certfile=secured.client_cert,
        kafka_ssl_keyfile=secured.client_key, kafka_ssl_key_password=CLIENT_KEY_PASSWORD,
    )  # fmt: skip
    assert _round_trip(kafka_access(with_cert)) == [b"m0", b"m1", b"m2"]
    without = isolated_settings(
        tmp_path,
        kafka_bootstrap=secured.ssl,
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=secured.ca,
    )
    assert not cluster_answers(kafka_access(without), timeout_ms=3_000)


def _refusal(access: KafkaAccess) -> BrokerError:
    """The error an admin client fails with once the broker has answered at all: on a
    loaded machine a bootstrap can time out before its first TLS/SASL exchange, which says
    nothing about the credentials, so that is tried again."""
    deadline = time.monotonic() + 120
    while True:
        try:
            admin_client(access, timeout_ms=8_000).close()
        except BrokerError as exc:
            return exc
        except KafkaTimeoutError:
            assert time.monotonic() < deadline, "the broker never answered"
            continue
        raise AssertionError("the client was let in")


def test_a_wrong_password_is_refused_with_a_clear_error(
    secured: SecureBroker, tmp_path: Path
) -> None:
    wrong = _scram(tmp_path, secured, kafka_sasl_password="not-the-password")
    refused = _refusal(kafka_access(wrong))
    # kafka-python surfaces the broker's refusal, or (when it reads the close first) only
    # disconnects from a broker that answers TLS: both are said in so many words
    said = str(refused)
    assert "refused the SASL credentials" in said or "let no session of user" in said, said
    assert "'truce' (SCRAM-SHA-512)" in said
    assert "not-the-password" not in str(refused)
    assert "TRUCE_KAFKA_SASL_PASSWORD" in refused.hint
    assert not cluster_answers(kafka_access(wrong), timeout_ms=3_000)


def test_an_unknown_certificate_authority_is_refused(secured: SecureBroker, tmp_path: Path) -> None:
    untrusted = _scram(tmp_path, secured, kafka_ssl_cafile=secured.other_ca)
    refused = _refusal(kafka_access(untrusted))
    assert "TLS" in str(refused)
    assert "TRUCE_KAFKA_SSL_CAFILE" in refused.hint


def test_a_faust_app_consumes_over_scram_and_ssl(secured: SecureBroker, tmp_path: Path) -> None:
    access = kafka_access(_scram(tmp_path, secured))
    topic_name = f"faust-secure-{uuid.uuid4().hex[:8]}"
    ensure_topics(access, [topic_name], partitions=1)
    producer = durable_producer(access)
    for i in range(3):
        producer.send(topic_name, value=f"f{i}".encode()).get(timeout=30)
    producer.close()
    app = faust.App(
        f"secure-app-{uuid.uuid4().hex[:8]}",
        broker=access.faust_broker(),
        broker_credentials=access.faust_credentials(),
        datadir=str(tmp_path / "faust"),
        store="memory://",
        web_enabled=False,
        topic_replication_factor=1,
        topic_partitions=1,
        consumer_auto_offset_reset="earliest",
    )
    topic = app.topic(topic_name, value_serializer="raw", key_serializer="raw")
    received: list[bytes] = []
    done = asyncio.Event()

    @app.agent(topic)
    async def collect(stream: faust.StreamT[bytes]) -> None:
        async for value in stream:
            received.append(value)
            if len(received) == 3:
                done.set()

    async def run() -> None:
        await app.start()
        try:
            await asyncio.wait_for(done.wait(), timeout=90)
        finally:
            await app.stop()

    asyncio.run(run())
    assert received == [b"f0", b"f1", b"f2"]


def test_aiokafka_clients_connect_with_the_same_settings(
    secured: SecureBroker, tmp_path: Path
) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    access = kafka_access(_scram(tmp_path, secured, "truce256"))
    topic = f"aio-secure-{uuid.uuid4().hex[:8]}"
    ensure_topics(access, [topic], partitions=1)

    async def run() -> list[bytes]:
        producer = AIOKafkaProducer(**access.aiokafka(), acks="all", enable_idempotence=True)
        await producer.start()
        try:
            for i in range(3):
                await producer.send_and_wait(topic, f"a{i}".encode())
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(topic, **access.aiokafka(), auto_offset_reset="earliest")
        await consumer.start()
        try:
            return [(await consumer.getone()).value for _ in range(3)]
        finally:
            await consumer.stop()

    assert asyncio.run(asyncio.wait_for(run(), timeout=60)) == [b"a0", b"a1", b"a2"]
