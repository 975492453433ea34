"""Everything one agent batch writes, delivered together before the batch is acknowledged.

Faust sends each table write and each output record on its own (a future, a producer
buffer entry, a callback and a changelog offset write per record), which cost more than
the fold itself. Here table writes are buffered per partition and key during the batch;
at its end each written key is stored once in the table's store, and the changelog records
and output records go out as one Kafka record batch per topic partition. The agent awaits
their acknowledgement (``acks=all``) before it asks for the next batch, which is when
``take_events`` acknowledges the batch: a crash before that redelivers the whole batch, and
the stages' versioned, idempotent outputs make the redelivery harmless.
"""

from __future__ import annotations

import asyncio
import functools
from collections import defaultdict
from collections.abc import Callable, ItemsView, Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
import rocksdict
from aiokafka.partitioner import DefaultPartitioner
from faust.streams import current_event
from faust.types import TP

from streams.faust_adapter import as_current_event, keeps_bytes, partition_database, partitions_of

Records = list[tuple[bytes | None, bytes | None]]
Encoded = list[tuple[bytes, bytes | None]]  # a table's writes: a key, and None for a delete
# faust's "json" codec, called directly (its codec registry costs more than the encoding)
encode = functools.partial(orjson.dumps, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_UTC_Z)
_DELETED = object()


class Transport(Protocol):
    async def deliver(self, topic: str, partition: int | None, records: Records) -> int | None:
        """Durably write ``records`` in order to ``topic``; ``partition`` None: by key.
        Returns the offset of the last record when it is known."""


class KafkaTransport:
    """Record batches through an aiokafka producer (the app's own, ``acks=all``)."""

    def __init__(self, producer: Callable[[], Any]) -> None:
        self._producer = producer  # called per delivery: faust starts its producer late
        self._partitioner = DefaultPartitioner()

    async def deliver(self, topic: str, partition: int | None, records: Records) -> int | None:
        producer = self._producer()
        await self._track(producer, topic)
        if partition is not None:
            return await self._send(producer, topic, partition, records)
        every = sorted(await partitions_of(producer, topic))
        by_partition: dict[int, Records] = defaultdict(list)
        for key, value in records:
            by_partition[self._partitioner(key, every, every)].append((key, value))
        await asyncio.gather(*(self._send(producer, topic, p, r) for p, r in by_partition.items()))
        return None

    @staticmethod
    async def _track(producer: Any, topic: str) -> None:
        """Keep ``topic`` in the producer's metadata for good.

        aiokafka's client fetches metadata for every topic until a topic is added to its
        list, and from then on for the listed ones only: a topic known from an all-topics
        fetch vanishes at the next periodic refresh (``metadata_max_age_ms``), and a batch
        queued for it then waits for a leader forever, so the flush never returns."""
        await producer.client.add_topic(topic)  # done at once when it is listed

    @staticmethod
    async def _send(producer: Any, topic: str, partition: int, records: Records) -> int:
        futures = []
        batch = producer.create_batch()
        for key, value in records:
            if batch.append(key=key, value=value, timestamp=None) is None:
                futures.append((await _submit(producer, batch, topic, partition), 0))
                batch = producer.create_batch()
                if batch.append(key=key, value=value, timestamp=None) is None:
                    raise ValueError(f"a record for {topic} is larger than a producer batch")
        count = batch.record_count()
        futures.append((await _submit(producer, batch, topic, partition), count))
        last = -1
        for future, _ in futures:
            metadata = await future
            last = max(last, int(metadata.offset))
        return last + count - 1 if count else last


async def _submit(producer: Any, batch: Any, topic: str, partition: int) -> Any:
    """Queue a complete batch for sending now.

    aiokafka holds an open batch back for the producer's ``linger_ms`` (waiting for more
    ``send()`` calls to join it); a closed one is ready at once. Each flush waits for two
    rounds of acknowledgements, so lingering cost two ``linger_ms`` per agent batch."""
    batch.close()
    return await producer.send_batch(batch, topic, partition=partition)


@dataclass
class _PartitionEvent:
    """Stands in for an event of one partition while a buffered write is stored (faust's
    RocksDB store picks the partition's database from the current event)."""

    @dataclass
    class Message:
        partition: int

    message: Message


class BufferedTable(MutableMapping[str, Any]):
    """A faust table whose writes wait in memory (per partition of the current event)
    until the outbox flushes them; reads see the pending writes first."""

    def __init__(self, table: Any) -> None:
        if (table.key_serializer, table.value_serializer) != ("json", "json"):
            raise ValueError(f"table {table.name} must use json keys and values")
        self.table = table
        self.pending: dict[int, dict[str, Any]] = {}

    @staticmethod
    def _partition() -> int:
        event = current_event()
        return -1 if event is None else int(event.message.partition)

    def __getitem__(self, key: str) -> Any:
        partition = self._partition()
        writes = self.pending.get(partition)
        if writes is not None and key in writes:
            value = writes[key]
        elif partition < 0 and any(key in w for w in self.pending.values()):
            value = next(w[key] for w in self.pending.values() if key in w)
        elif partition >= 0 and self._rocksdb:
            return self._read(partition, key)
        else:
            return self.table[key]
        if value is _DELETED:
            raise KeyError(key)
        return value

    @property
    def _rocksdb(self) -> bool:
        return keeps_bytes(self.table)

    def _read(self, partition: int, key: str) -> Any:
        """One lookup in the partition's database (faust's own read looks a key up twice,
        once to test that it is there)."""
        database = partition_database(self.table, partition)
        raw_value = None if database is None else database.get(encode(key))
        if raw_value is None:
            raise KeyError(key)
        return orjson.loads(raw_value)

    def __setitem__(self, key: str, value: Any) -> None:
        self.pending.setdefault(self._partition(), {})[key] = value

    def __delitem__(self, key: str) -> None:
        self[key]
        self.pending.setdefault(self._partition(), {})[key] = _DELETED

    def __iter__(self) -> Iterator[str]:
        pending = {k for writes in self.pending.values() for k in writes}
        deleted = {k for w in self.pending.values() for k, v in w.items() if v is _DELETED}
        for key in self.table:
            if key not in pending:
                yield key
        yield from (k for k in sorted(pending) if k not in deleted)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def items(self) -> ItemsView[str, Any]:
        """Every item of every assigned partition (faust's own iteration, which does not
        depend on the current event), pending writes included."""
        return _Items(self)

    def merged_items(self) -> Iterator[tuple[str, Any]]:
        pending = {k: v for writes in self.pending.values() for k, v in writes.items()}
        for key, value in self.table.items():
            if key not in pending:
                yield key, value
        yield from ((k, v) for k, v in pending.items() if v is not _DELETED)


class _Items(ItemsView[str, Any]):
    _mapping: BufferedTable

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        return self._mapping.merged_items()


class Outbox:
    """Collects one batch's table writes and output records; :meth:`flush` delivers them."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.tables: list[BufferedTable] = []
        self.outputs: dict[str, Records] = defaultdict(list)

    def table(self, table: Any) -> BufferedTable:
        buffered = BufferedTable(table)
        self.tables.append(buffered)
        return buffered

    def send(self, topic: str, key: bytes, value: bytes) -> None:
        self.outputs[topic].append((key, value))

    async def flush(self) -> None:
        """Deliver the outputs, then the changelogs, and only then store the writes locally.

        That order keeps a worker killed at any point from losing a report: until the
        outputs are acknowledged nothing says the batch was handled, so it is handled again
        from scratch (outputs are versioned snapshots; sending one twice changes nothing);
        a changelog that reached Kafka before the local store did is replayed into it on
        recovery. Stored first, the local state ran ahead of outputs that were never sent,
        and the redelivered batch then looked like duplicates and emitted nothing."""
        outputs = [(topic, None, records) for topic, records in self.outputs.items()]
        self.outputs = defaultdict(list)
        stores: list[tuple[Any, str, int, dict[str, Any], Encoded]] = []
        for buffered in self.tables:
            table = buffered.table
            changelog = table.changelog_topic.get_topic_name()
            for partition, writes in sorted(buffered.pending.items()):
                if partition < 0:
                    raise RuntimeError("a table was written outside of any event")
                stores.append((table, changelog, partition, writes, self._encoded(writes)))
        await asyncio.gather(*(self.transport.deliver(*send) for send in outputs))
        offsets = await asyncio.gather(
            *(
                self.transport.deliver(changelog, partition, list(records))
                for _, changelog, partition, _, records in stores
            )
        )
        for (table, changelog, partition, writes, records), offset in zip(
            stores, offsets, strict=True
        ):
            self._store(table, partition, writes, records)
            if offset is not None:  # recovery after a restart reads the changelog from here
                table.data.set_persisted_offset(TP(changelog, partition), offset)
        for buffered in self.tables:
            buffered.pending = {}

    @staticmethod
    def _encoded(writes: dict[str, Any]) -> Encoded:
        """Changelog records of one partition's writes, encoded with the table's serializers."""
        return [
            (encode(key), None if value is _DELETED else encode(value))
            for key, value in writes.items()
        ]

    @staticmethod
    def _store(table: Any, partition: int, writes: dict[str, Any], records: Encoded) -> None:
        """Write each key once to the table's store (as faust's ``Table.__setitem__`` does,
        without its changelog send; on RocksDB as one write batch of the changelog's bytes)."""
        store = table.data
        database = partition_database(table, partition)
        if database is not None:  # RocksDB keeps bytes
            batch = rocksdict.WriteBatch(raw_mode=True)
            for raw_key, raw_value in records:
                if raw_value is None:
                    batch.delete(raw_key)
                else:
                    batch.put(raw_key, raw_value)
            database.write(batch)
            return
        stand_in = _PartitionEvent(_PartitionEvent.Message(partition))
        with as_current_event(stand_in):  # the memory store (agent tests) keeps objects,
            for key, value in writes.items():  # in the current event's partition
                if value is _DELETED:
                    store.pop(key, None)
                else:
                    store[key] = value
