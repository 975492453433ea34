"""The stream worker's outbox transport on the real broker: record batches arrive in
order, and every topic it writes to stays in the producer's metadata (a topic that drops
out of it leaves a queued batch waiting for a leader forever: the worker hung this way
after five minutes, at aiokafka's first periodic metadata refresh)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from core.kafka import ensure_topics
from streams.outbox import KafkaTransport

pytestmark = pytest.mark.integration
REFRESH_MS = 300


Seen = list[tuple[int, int, bytes, bytes]]  # partition, offset, key, value


async def read_all(bootstrap: str, topic: str, count: int) -> Seen:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        seen: Seen = []
        async with asyncio.timeout(30):
            while len(seen) < count:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    seen.extend((r.partition, r.offset, r.key, r.value) for r in records)
        return seen
    finally:
        await consumer.stop()


def test_topics_stay_in_the_metadata_and_batches_arrive_in_order(
    bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    early, late = unique_name("outbox-early"), unique_name("outbox-late")
    ensure_topics(bootstrap, [early], partitions=2)

    async def scenario() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", metadata_max_age_ms=REFRESH_MS
        )
        await producer.start()
        try:
            # with no topic listed, a metadata fetch covers every topic (faust's topic
            # creation through this client does this): early is known without being listed
            await producer.client.force_metadata_update()
            assert producer.client.cluster.partitions_for_topic(early) == {0, 1}
            transport = KafkaTransport(lambda: producer)
            records = [(f"k{i % 5}".encode(), f"v{i}".encode()) for i in range(300)]
            await transport.deliver(early, None, records)
            last = await transport.deliver(early, 1, [(b"x", b"a"), (b"x", b"b")])
            # a topic created later must be listed in the client to be fetched, and from
            # then on only listed topics are: early must be listed too, or it vanishes
            ensure_topics(bootstrap, [late], partitions=1)
            await transport.deliver(late, 0, [(b"y", b"c")])
            await asyncio.sleep(REFRESH_MS * 4 / 1000)  # a few periodic refreshes
            assert producer.client.cluster.partitions_for_topic(early) == {0, 1}
            async with asyncio.timeout(10):  # a queued batch finds its leader
                await transport.deliver(early, 0, [(b"z", b"d")])
        finally:
            await producer.stop()
        seen = await read_all(bootstrap, early, 303)
        for key in {k for k, _ in records}:
            got = [v for _, _, k, v in seen if k == key and v.startswith(b"v")]
            assert got == [v for k, v in records if k == key]  # per key, in order
        assert len({p for p, _, k, _ in seen if k.startswith(b"k")}) == 2  # spread by key
        # the offset returned is that of the batch's last record (recovery starts there)
        assert last == next(o for p, o, _, v in seen if p == 1 and v == b"b")

    asyncio.run(scenario())


def test_a_delivery_does_not_wait_for_the_producers_linger(
    bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    """The outbox hands aiokafka complete batches: held back for ``linger_ms`` like an open
    batch, every agent batch waited two lingers (outputs, then changelogs) for nothing."""
    topic = unique_name("outbox-linger")
    ensure_topics(bootstrap, [topic], partitions=2)
    linger_s = 30

    async def scenario() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", linger_ms=linger_s * 1000
        )
        await producer.start()
        try:
            transport = KafkaTransport(lambda: producer)
            await transport.deliver(topic, 0, [(b"warm", b"up")])  # metadata, connections
            async with asyncio.timeout(linger_s / 3):
                await transport.deliver(topic, None, [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")])
                await transport.deliver(topic, 1, [(b"d", b"4")])
        finally:
            await producer.stop()
        assert len(await read_all(bootstrap, topic, 5)) == 5

    asyncio.run(scenario())
