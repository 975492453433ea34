"""A minimal Faust agent consumes what kafka-python produced, on the real broker."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import faust
import pytest

from core.kafka import durable_producer, ensure_topics

pytestmark = pytest.mark.integration


def test_faust_agent_reads_real_topic(
    bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    topic_name = unique_name("faust-in")
    ensure_topics(bootstrap, [topic_name], partitions=1)
    producer = durable_producer(bootstrap)
    for i in range(5):
        producer.send(topic_name, key=b"k", value=f"m{i}".encode()).get(timeout=10)
    producer.close()

    app = faust.App(
        unique_name("probe-app"),
        broker=f"kafka://{bootstrap}",
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
            if len(received) == 5:
                done.set()

    async def run() -> None:
        await app.start()
        try:
            await asyncio.wait_for(done.wait(), timeout=60)
        finally:
            await app.stop()

    asyncio.run(run())
    assert received == [f"m{i}".encode() for i in range(5)]
