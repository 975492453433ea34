"""The worker's consumer never commits past a record it did not handle (real broker).

faust drops a record its fetcher delivers while a rebalance holds the flow, and still
moves its read position past it. Here the record at the committed offset is dropped the
same way (its delivery never reaches the streams), and the records after it are handled:
plain faust then commits past it and it is never read; the worker's consumer reads it
again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import faust
import pytest
from kafka import KafkaAdminClient
from kafka.structs import TopicPartition

from core.kafka import durable_producer, ensure_topics
from streams import faust_adapter
from streams.faust_adapter import GuardedApp

pytestmark = pytest.mark.integration
TIMEOUT_S = 60.0


def _committed(bootstrap: str, group: str, topic: str) -> int | None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets(group).get(group) or {}
    finally:
        admin.close()
    found = offsets.get(TopicPartition(topic, 0))
    return None if found is None else int(found.offset)


def _produce(bootstrap: str, topic: str, values: range) -> None:
    producer = durable_producer(bootstrap)
    for i in values:
        producer.send(topic, key=b"k", value=f"m{i}".encode()).get(timeout=10)
    producer.close()


async def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + TIMEOUT_S
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def _guarded_app(bootstrap: str, group: str, tmp_path: Path) -> GuardedApp:
    return GuardedApp(
        group,
        broker=f"kafka://{bootstrap}",
        datadir=str(tmp_path / "faust"),
        store="memory://",
        web_enabled=False,
        topic_replication_factor=1,
        topic_partitions=1,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=0.2,
    )


def test_a_record_dropped_at_the_committed_offset_is_read_again(
    bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    topic_name = unique_name("head-guard")
    group = unique_name("head-guard-app")
    ensure_topics(bootstrap, [topic_name], partitions=1)
    _produce(bootstrap, topic_name, range(5))

    app = _guarded_app(bootstrap, group, tmp_path)
    topic = app.topic(topic_name, value_serializer="raw", key_serializer="raw")
    handled: list[int] = []

    @app.agent(topic)
    async def collect(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            handled.append(event.message.offset)

    dropped: list[int] = []

    def drop_the_head_once(deliver: Callable[[Any], Awaitable[None]]) -> Any:
        async def callback(message: Any) -> None:
            if not dropped and message.offset == 5:  # the committed offset by then
                dropped.append(message.offset)  # as faust does while the flow is suspended
                return
            await deliver(message)

        return callback

    async def run() -> None:
        consumer = app.consumer  # made in the loop it runs in
        consumer.callback = drop_the_head_once(consumer.callback)
        await app.start()
        try:
            await _until(lambda: handled[:5] == [0, 1, 2, 3, 4], "the first five records")
            await _until(
                lambda: _committed(bootstrap, group, topic_name) == 5, "the commit of five"
            )
            _produce(bootstrap, topic_name, range(5, 10))
            await _until(lambda: bool(dropped) and 9 in handled, "the records after the drop")
            await _until(lambda: 5 in handled, "the dropped record, read again")
            await _until(
                lambda: _committed(bootstrap, group, topic_name) == 10, "the commit of ten"
            )
        finally:
            await app.stop()

    asyncio.run(run())
    assert dropped == [5]
    assert set(handled) == set(range(10))
    assert handled.index(5) > handled.index(9)  # read again after what followed it


def test_a_record_never_delivered_makes_the_worker_give_up_after_its_seeks(
    bootstrap: str,
    unique_name: Callable[[str], str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A hole the guard cannot fill (the record is dropped at every delivery) ends in the
    worker's exit after ``REREADS`` seeks, never in a commit past it."""
    topic_name = unique_name("head-guard-hole")
    group = unique_name("head-guard-hole-app")
    ensure_topics(bootstrap, [topic_name], partitions=1)
    _produce(bootstrap, topic_name, range(5))
    monkeypatch.setattr(faust_adapter, "REREAD_WAIT_S", 0.3)
    gave_up: list[str] = []
    seeks: list[int] = []
    seeks_before_giving_up: list[int] = []

    def give_up(where: str, reason: str) -> None:  # the real one exits the process
        if not gave_up:
            seeks_before_giving_up.append(seeks.count(5))
        gave_up.append(reason)

    monkeypatch.setattr(faust_adapter, "give_up", give_up)

    app = _guarded_app(bootstrap, group, tmp_path)
    topic = app.topic(topic_name, value_serializer="raw", key_serializer="raw")
    handled: list[int] = []
    drops: list[int] = []

    @app.agent(topic)
    async def collect(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            handled.append(event.message.offset)

    def drop_the_head_always(deliver: Callable[[Any], Awaitable[None]]) -> Any:
        async def callback(message: Any) -> None:
            if message.offset == 5:
                drops.append(message.offset)
                return
            await deliver(message)

        return callback

    async def run() -> None:
        consumer: Any = app.consumer
        consumer.callback = drop_the_head_always(consumer.callback)
        seek = consumer.seek

        async def counted_seek(tp: Any, offset: int) -> None:
            seeks.append(offset)
            await seek(tp, offset)

        consumer.seek = counted_seek
        await app.start()
        try:
            await _until(lambda: _committed(bootstrap, group, topic_name) == 5, "commit of five")
            _produce(bootstrap, topic_name, range(5, 10))
            await _until(lambda: bool(gave_up), "the worker giving up")
            assert _committed(bootstrap, group, topic_name) == 5  # never committed over
        finally:
            await app.stop()

    asyncio.run(run())
    assert seeks_before_giving_up == [faust_adapter.REREADS]
    assert drops  # the record was delivered and dropped, never handled
    assert "record 5 of" in gave_up[0]
    assert 5 not in handled
