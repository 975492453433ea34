"""A request is acknowledged only when every one of its records is (CONTRACT section 2:
202 only after the broker acknowledged every report of the request)."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace

import pytest

from services.ingest.publisher import _Acks


def _from_thread(*calls: object) -> None:
    """Acknowledgements arrive on the producer's network thread, not the loop's."""
    thread = threading.Thread(target=lambda: [call() for call in calls])  # type: ignore[operator]
    thread.start()
    thread.join()


def _at(partition: int, offset: int) -> SimpleNamespace:
    """What kafka-python hands the callback: the record's metadata."""
    return SimpleNamespace(partition=partition, offset=offset)


async def _settled(future: asyncio.Future[None]) -> bool:
    await asyncio.sleep(0.05)  # let call_soon_threadsafe callbacks run
    return future.done()


def test_done_only_after_the_last_acknowledgement() -> None:
    async def run() -> None:
        acks = _Acks(asyncio.get_running_loop(), 3)
        _from_thread(lambda: acks.ok(2, _at(1, 40)), lambda: acks.ok(0, _at(0, 7)))
        assert not await _settled(acks.done)
        _from_thread(lambda: acks.ok(1, _at(1, 39)))
        assert await _settled(acks.done)
        assert acks.done.result() is None
        assert acks.positions == [(0, 7), (1, 39), (1, 40)]  # in the records' order

    asyncio.run(run())


def test_the_first_failure_fails_the_request_and_later_acks_change_nothing() -> None:
    async def run() -> None:
        acks = _Acks(asyncio.get_running_loop(), 3)
        error = RuntimeError("broker gone")
        _from_thread(lambda: acks.ok(0, _at(0, 1)), lambda: acks.failed(error))
        _from_thread(lambda: acks.ok(1, _at(0, 2)), lambda: acks.failed(RuntimeError("second")))
        assert await _settled(acks.done)
        with pytest.raises(RuntimeError, match="broker gone"):
            acks.done.result()

    asyncio.run(run())
