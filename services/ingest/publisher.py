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
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import structlog

from core.errors import TruceError
from core.kafka import discard_producer, durable_producer
from core.kafka_access import Cluster

log = structlog.get_logger("ingest.publisher")

LINGER_MS = 5
"""How long the producer gathers records into one request: a few ms of latency for far
fewer produce requests (and less CPU) when single reports arrive at hundreds per second."""


class PublishUnavailable(TruceError):
    """Kafka did not acknowledge in time; nothing of the request counts as accepted."""


def _reason(exc: BaseException, timeout_s: float) -> str:
    """What went wrong, in words a partner can read (a timeout's message is empty)."""
    if isinstance(exc, TimeoutError):
        return f"no acknowledgement from the brokers within {timeout_s:g} s"
    return str(exc) or type(exc).__name__


class _Acks:
    """Counts one request's acknowledgements on the producer's thread; settles ``done`` on
    the loop when the last arrives or the first error does."""

    def __init__(self, loop: asyncio.AbstractEventLoop, expected: int) -> None:
        self.loop = loop
        self.done: asyncio.Future[None] = loop.create_future()
        self.positions: list[tuple[int, int]] = [(-1, -1)] * expected
        """Each record's (partition, offset), in the order they were given."""
        self._left = expected
        self._lock = threading.Lock()

    def ok(self, index: int, metadata: Any) -> None:
        self.positions[index] = (metadata.partition, metadata.offset)
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
    """Owns the process's producer and replaces it after any failed publish.

    A kafka-python producer whose broker was SIGKILLed with batches in flight can stay
    wedged after the broker is back (every send timing out, for minutes), so a failure is
    never retried on the same producer: it is closed at once (its pending records fail,
    and so do their requests: none was acknowledged) and the next publish builds a new
    one. ``healthy`` is part of readiness."""

    def __init__(self, bootstrap: Cluster, topic: str, timeout_s: float) -> None:
        self.topic = topic
        self.timeout_s = timeout_s
        self._bootstrap = bootstrap
        self._producer: Any = None
        self._producer_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="publish")
        self._healthy = True
        self.last_error = ""
        self.replaced = 0
        self._closing: Future[None] | None = None

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
        for index, (key, value) in enumerate(records):
            future = producer.send(self.topic, key=key, value=value)
            future.add_callback(acks.ok, index)
            future.add_errback(acks.failed)

    async def publish(self, records: Sequence[tuple[bytes, bytes]]) -> list[tuple[int, int]]:
        """Once every record is acknowledged, each one's (partition, offset) in the log;
        PublishUnavailable otherwise."""
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
            reason = _reason(exc, self.timeout_s)
            self._failed(reason)
            raise PublishUnavailable(
                f"Kafka did not acknowledge the reports: {reason}",
                hint="retry later with the same report ids; duplicates are harmless",
            ) from exc
        self._healthy = True
        return acks.positions

    @property
    def healthy(self) -> bool:
        """False from a failed publish until a publish (or :meth:`probe`) succeeds."""
        return self._healthy

    def probe(self) -> bool:
        """Blocking: a fresh producer fetches the topic's metadata (for readiness after a
        failure, when no request may come to prove the producer works again)."""
        if self._healthy:
            return True
        try:
            if self._ensure_producer().partitions_for(self.topic):
                self._healthy = True
        except Exception as exc:
            self._failed(_reason(exc, self.timeout_s))
        return self._healthy

    def _failed(self, reason: str) -> None:
        self._healthy = False
        self.last_error = reason
        with self._producer_lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            self.replaced += 1
            log.warning("producer replaced after a failed publish", reason=reason)
            self._closing = self._executor.submit(discard_producer, producer)

    async def settled(self) -> None:
        """Once the producer replaced last has closed: it sends nothing any more, so what it
        had in flight is either in the log by now or never will be."""
        closing = self._closing
        if closing is not None:
            try:
                await asyncio.wrap_future(closing)
            except Exception:  # logged
                log.exception("discarding the failed producer raised; it may still send")

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)
            self._producer = None
        self._executor.shutdown(wait=False)
