"""Durable publishing: a request is accepted only once Kafka acknowledged every report
of it (acks=all, idempotent producer), and the event loop never waits on the producer.

kafka-python's ``send`` only blocks while it waits for the topic's metadata (at start-up,
or after the broker dropped it); otherwise it appends to the producer's buffer and
returns. So records go out on the loop thread when the topic's partitions are known, and
through a worker thread when they are not. Acknowledgements arrive on the producer's
network thread; each request gets one asyncio future, settled once its last record is
acknowledged (or the first fails)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from core.errors import TruceError
from core.kafka import durable_producer

LINGER_MS = 5
"""How long the producer gathers records into one request: a few ms of latency for far
fewer produce requests (and less CPU) when single reports arrive at hundreds per second."""


class PublishUnavailable(TruceError):
    """Kafka did not acknowledge in time; nothing of the request counts as accepted."""


class _Acks:
    """Counts one request's acknowledgements on the producer's thread; settles ``done`` on
    the loop when the last arrives or the first error does."""

    def __init__(self, loop: asyncio.AbstractEventLoop, expected: int) -> None:
        self.loop = loop
        self.done: asyncio.Future[None] = loop.create_future()
        self._left = expected
        self._lock = threading.Lock()

    def ok(self, _metadata: Any) -> None:
        with self._lock:
            self._left -= 1
            last = self._left == 0
        if last:
            self.loop.call_soon_threadsafe(self._settle, None)

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            first = self._left > 0
            self._left = 0
        if first:
            self.loop.call_soon_threadsafe(self._settle, exc)

    def _settle(self, error: BaseException | None) -> None:
        if self.done.done():
            return
        if error is None:
            self.done.set_result(None)
        else:
            self.done.set_exception(error)


class Publisher:
    def __init__(self, bootstrap: str, topic: str, timeout_s: float) -> None:
        self.topic = topic
        self.timeout_s = timeout_s
        self._bootstrap = bootstrap
        self._producer: Any = None
        self._producer_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="publish")

    def _ensure_producer(self) -> Any:
        with self._producer_lock:  # two executor threads may ask at once
            if self._producer is None:
                timeout_ms = int(self.timeout_s * 1000)
                self._producer = durable_producer(
                    self._bootstrap,
                    linger_ms=LINGER_MS,
                    max_block_ms=timeout_ms,
                    request_timeout_ms=max(timeout_ms // 2, 1000),
                    delivery_timeout_ms=max(timeout_ms, 2000),
                    batch_size=256 * 1024,
                )
            return self._producer

    def _sends_without_blocking(self) -> bool:
        """True when ``send`` cannot wait: the producer exists and knows the topic's
        partitions (kafka-python keeps them in its private ``_metadata``; without it,
        every send takes the worker thread)."""
        metadata = getattr(self._producer, "_metadata", None)
        return metadata is not None and metadata.partitions_for_topic(self.topic) is not None

    def _send_all(self, records: Sequence[tuple[bytes, bytes]], acks: _Acks) -> None:
        producer = self._ensure_producer()
        for key, value in records:
            future = producer.send(self.topic, key=key, value=value)
            future.add_callback(acks.ok)
            future.add_errback(acks.failed)

    async def publish(self, records: Sequence[tuple[bytes, bytes]]) -> None:
        """Return once every record is acknowledged; raise PublishUnavailable otherwise."""
        loop = asyncio.get_running_loop()
        acks = _Acks(loop, len(records))
        try:
            async with asyncio.timeout(self.timeout_s):
                if self._sends_without_blocking():
                    self._send_all(records, acks)
                else:
                    await loop.run_in_executor(self._executor, self._send_all, records, acks)
                await acks.done
        except Exception as exc:
            raise PublishUnavailable(
                f"Kafka did not acknowledge the reports: {exc or type(exc).__name__}",
                hint="retry later with the same report ids; duplicates are harmless",
            ) from exc

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)
            self._producer = None
        self._executor.shutdown(wait=False)
