"""Every use of faust's, mode's and aiokafka's private attributes, in one place.

Checked against faust-streaming 0.15.3 and aiokafka 0.14 (the range pinned in
pyproject.toml); a new version of either is read against this module before the pin moves.

What the worker needs from their insides:
- the current-event context variable (faust picks a table's partition from it);
- the app's aiokafka producer, its metadata wait, and the RocksDB database of a table
  partition (the outbox writes whole batches to both);
- a consumer that never commits past a record it has not handled (below).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import faust
import structlog
from faust.streams import _current_event
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from streams.crash import give_up

log = structlog.get_logger("streams")

REREAD_WAIT_S = 10.0
"""How long a partition sought back to its missing head record waits for that record
before it is sought again (the record has to queue behind what the agent holds)."""
REREADS = 5
"""Seeks back to one missing head record before the worker gives up and crashes: a
restart reads from the committed offset, and a record that is still never delivered is
a hole in the log, which our inputs (never compacted, never written in transactions)
cannot have."""


@contextmanager
def as_current_event(event: Any) -> Iterator[None]:
    """Make ``event`` faust's current event (table reads and writes go to its partition)."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


def app_producer(app: faust.App) -> Callable[[], Any]:
    """The app's aiokafka producer, fetched per call: faust starts it late."""
    return app.producer._ensure_producer  # type: ignore[attr-defined,no-any-return]


async def partitions_of(producer: Any, topic: str) -> set[int]:
    """The partitions of ``topic``, waiting for its metadata if need be."""
    return set(await producer.client._wait_on_metadata(topic))


def keeps_bytes(table: Any) -> bool:
    """Whether ``table`` is stored in RocksDB (bytes), not in memory (agent tests)."""
    return hasattr(table.data, "_db_for_partition")


def partition_database(table: Any, partition: int) -> Any | None:
    """The RocksDB database holding ``partition`` of ``table``; None for the memory store."""
    return table.data._db_for_partition(partition) if keeps_bytes(table) else None


async def rewind_uncommitted(consumer: Any, inputs: frozenset[str]) -> None:
    """Rewind the assigned input partitions that have no committed offset to their start.

    While a rebalance holds the flow, faust drops what its fetcher delivers but still
    moves its read position past it, and relies on seeking to the committed offsets
    afterwards to read it again; a partition without a committed offset is not sought at
    all (aiokafka seeks only to offsets above 0), so what was dropped there is never read:
    the verdicts written to a frozen worker's partitions were lost after its failover."""
    committed = await consumer.seek_to_committed()
    for tp, offset in committed.items():
        if tp.topic in inputs and not offset:
            await consumer.seek(tp, 0)


@dataclass
class _Reread:
    offset: int
    seeks: int = 0
    sought_at: float = field(default=0.0)


class HeadGuardedConsumer(faust_aiokafka.Consumer):
    """faust's consumer, minus a way to lose a record.

    faust commits the end of the first run of consecutive acknowledged offsets, and only
    refuses when the run starts more than one past the committed offset
    (``min(acked) - committed > 1``): a record missing at exactly the committed offset is
    committed over. Records do go missing there: one delivered while a rebalance holds
    the flow is dropped, yet the read position moves past it. The next record's ack then
    committed past it, and it was never read again (a report lost in the chaos soak).

    Here a partition whose record at the committed offset has not been acknowledged is
    not committed, and is sought back to that offset so the record is read again (what
    was handled after it is handled twice, which the stages' idempotent outputs allow).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rereads: dict[TP, _Reread] = {}

    def _missing_head(self, tp: TP) -> int | None:
        """The committed offset of ``tp`` when later records are acknowledged but the
        record at it is not."""
        acked = self._acked[tp]
        committed = self._committed_offset[tp]
        if not acked or committed is None:
            return None
        lowest = min(acked)
        gaps = self._gap[tp]  # offsets the reader saw missing from the log count as done
        if gaps:
            lowest = min(lowest, gaps.begin())
        return int(committed) if lowest > committed else None

    def _new_offset(self, tp: TP) -> int | None:
        head = self._missing_head(tp)
        if head is not None:
            reread = self._rereads.get(tp)
            if reread is None or reread.offset != head:
                self._rereads[tp] = _Reread(head)
            return None
        self._rereads.pop(tp, None)
        offset: int | None = super()._new_offset(tp)
        return offset

    async def _commit_tps(self, tps: Any, start_new_transaction: bool) -> bool:
        committed: bool = await super()._commit_tps(tps, start_new_transaction)
        await self._reread_missing_heads()
        return committed

    async def _reread_missing_heads(self) -> None:
        if not self.flow_active:
            return  # a rebalance seeks every partition to its committed offset anyway
        assigned = self.assignment()
        now = time.monotonic()
        for tp, reread in list(self._rereads.items()):
            if tp not in assigned:
                del self._rereads[tp]
                continue
            if reread.seeks and now - reread.sought_at < REREAD_WAIT_S:
                continue
            if reread.seeks >= REREADS:
                give_up(
                    "consumer",
                    f"record {reread.offset} of {tp.topic}[{tp.partition}] was never "
                    f"delivered after {REREADS} seeks back to it",
                )
            log.warning(
                "record at the committed offset was never handled; reading it again",
                topic=tp.topic,
                partition=tp.partition,
                offset=reread.offset,
                attempt=reread.seeks + 1,
            )
            reread.seeks += 1
            reread.sought_at = now
            await self.seek(tp, reread.offset)


class GuardedTransport(faust_aiokafka.Transport):
    Consumer = HeadGuardedConsumer


class GuardedApp(faust.App):
    """A faust app whose consumer is :class:`HeadGuardedConsumer`."""

    def _new_transport(self) -> Any:
        return GuardedTransport(self.conf.broker_consumer, self)
