"""The outbox's delivery order, which is what keeps a SIGKILLed stream worker exact:
outputs acknowledged first, then changelogs, and only then the local store. A store
written first ran ahead of outputs that were never sent; the redelivered batch then
looked like duplicates and its reports were never counted (seen in CI's crash test)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from faust.types import TP

from streams.outbox import Outbox, Records

CHANGELOG = "app-histories-changelog"


@dataclass
class _Topic:
    name: str

    def get_topic_name(self) -> str:
        return self.name


@dataclass
class _Store(dict[str, Any]):
    """Faust's memory store as far as the outbox uses it."""

    persisted: dict[TP, int] = field(default_factory=dict)

    def set_persisted_offset(self, tp: TP, offset: int) -> None:
        self.persisted[tp] = offset

    def __hash__(self) -> int:
        return id(self)


class _Table:
    name = "histories"
    key_serializer = "json"
    value_serializer = "json"

    def __init__(self) -> None:
        self.data = _Store()
        self.changelog_topic = _Topic(CHANGELOG)


@dataclass
class _Transport:
    """Records each delivery with what the local store held at that moment."""

    store: _Store
    fail_on: str | None = None
    log: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    async def deliver(self, topic: str, partition: int | None, records: Records) -> int | None:
        self.log.append((topic, dict(self.store)))
        if topic == self.fail_on:
            raise ConnectionError(f"{topic} not acknowledged")
        return 41 if topic == CHANGELOG else None


def _outbox(fail_on: str | None = None) -> tuple[Outbox, _Table, _Transport]:
    table = _Table()
    transport = _Transport(table.data, fail_on)
    outbox = Outbox(transport)
    buffered = outbox.table(table)
    buffered.pending = {0: {"r-1": {"revision": 1}}}
    outbox.send("events", b"r-1", b'{"version":1}')
    return outbox, table, transport


def test_outputs_then_changelog_then_the_local_store() -> None:
    outbox, table, transport = _outbox()
    asyncio.run(outbox.flush())
    assert [topic for topic, _ in transport.log] == ["events", CHANGELOG]
    assert all(store == {} for _, store in transport.log)  # nothing stored before the acks
    assert table.data == {"r-1": {"revision": 1}}
    assert table.data.persisted == {TP(CHANGELOG, 0): 41}


@pytest.mark.parametrize("fail_on", ["events", CHANGELOG])
def test_a_delivery_that_fails_leaves_the_local_store_behind(fail_on: str) -> None:
    outbox, table, transport = _outbox(fail_on)
    with pytest.raises(ConnectionError):
        asyncio.run(outbox.flush())
    assert table.data == {}
    assert table.data.persisted == {}
    if fail_on == "events":  # no changelog may claim a batch whose outputs are not out
        assert [topic for topic, _ in transport.log] == ["events"]
