"""Which offsets may be committed: a record is done only when every receiver it was
routed to has delivered or dead-lettered it (or it was silenced or routed nowhere).

Receivers work at their own pace, so records finish out of order; the committable
offset of a partition is the lowest offset still pending (or one past the last seen
when none is), which is what "commit the lowest offset all receivers are done with"
means. A restart resumes there, and anything redelivered that had in fact been sent
carries the same idempotency key and is skipped through the delivery ledger."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RecordRef:
    """One consumed alerts record."""

    topic: str
    partition: int
    offset: int


class OffsetTracker:
    """Not thread-safe: used from the alerter's event loop only."""

    def __init__(self) -> None:
        self._pending: dict[tuple[str, int], dict[int, int]] = {}
        self._next: dict[tuple[str, int], int] = {}
        self._committed: dict[tuple[str, int], int] = {}

    def add(self, ref: RecordRef, parts: int) -> None:
        """A record with ``parts`` pieces of work (0: done at once)."""
        tp = (ref.topic, ref.partition)
        self._next[tp] = max(self._next.get(tp, 0), ref.offset + 1)
        if parts > 0:
            self._pending.setdefault(tp, {})[ref.offset] = parts

    def done(self, refs: Iterable[RecordRef]) -> None:
        """One piece of work of each record in ``refs`` is finished."""
        for ref in refs:
            pending = self._pending.get((ref.topic, ref.partition), {})
            left = pending.get(ref.offset)
            if left is None:
                continue
            if left <= 1:
                del pending[ref.offset]
            else:
                pending[ref.offset] = left - 1

    def pending(self, ref: RecordRef) -> bool:
        """Is this record still being worked on (consumed again after a rebalance)?"""
        return ref.offset in self._pending.get((ref.topic, ref.partition), {})

    @property
    def in_flight(self) -> int:
        return sum(len(p) for p in self._pending.values())

    def committable(self) -> dict[tuple[str, int], int]:
        """Offsets to commit now (only those that moved since the last commit)."""
        ready: dict[tuple[str, int], int] = {}
        for tp, upper in self._next.items():
            pending = self._pending.get(tp)
            offset = min(pending) if pending else upper
            if offset > self._committed.get(tp, -1):
                ready[tp] = offset
        return ready

    def committed(self, offsets: dict[tuple[str, int], int]) -> None:
        self._committed.update(offsets)

    def forget(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Partitions taken away by a rebalance: their new owner resumes from the commit."""
        for tp in partitions:
            self._pending.pop(tp, None)
            self._next.pop(tp, None)
            self._committed.pop(tp, None)
