"""Durable publishing: a request is accepted only once Kafka acknowledged every report
of it (acks=all, idempotent producer). The blocking producer calls run in a thread; the
acknowledgements are awaited on the event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from core.errors import TruceError
from core.kafka import durable_producer


class PublishUnavailable(TruceError):
    """Kafka did not acknowledge in time; nothing of the request counts as accepted."""


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
            return self._create_producer()

    def _create_producer(self) -> Any:
        if self._producer is None:
            timeout_ms = int(self.timeout_s * 1000)
            self._producer = durable_producer(
                self._bootstrap,
                linger_ms=2,
                max_block_ms=timeout_ms,
                request_timeout_ms=max(timeout_ms // 2, 1000),
                delivery_timeout_ms=max(timeout_ms, 2000),
                batch_size=256 * 1024,
            )
        return self._producer

    def _send_all(self, records: Sequence[tuple[bytes, bytes]]) -> list[Any]:
        producer = self._ensure_producer()
        return [producer.send(self.topic, key=key, value=value) for key, value in records]

    async def publish(self, records: Sequence[tuple[bytes, bytes]]) -> None:
        """Return once every record is acknowledged; raise PublishUnavailable otherwise."""
        loop = asyncio.get_running_loop()
        try:
            futures = await asyncio.wait_for(
                loop.run_in_executor(self._executor, self._send_all, records), self.timeout_s
            )
            waits = [self._awaitable(loop, future) for future in futures]
            await asyncio.wait_for(asyncio.gather(*waits), self.timeout_s)
        except (TimeoutError, Exception) as exc:
            raise PublishUnavailable(
                f"Kafka did not acknowledge the reports: {exc or type(exc).__name__}",
                hint="retry later with the same report ids; duplicates are harmless",
            ) from exc

    @staticmethod
    def _awaitable(loop: asyncio.AbstractEventLoop, future: Any) -> asyncio.Future[Any]:
        done: asyncio.Future[Any] = loop.create_future()

        def settle(value: Any = None, error: BaseException | None = None) -> None:
            if done.done():
                return
            if error is None:
                done.set_result(value)
            else:
                done.set_exception(error)

        def ok(value: Any) -> None:
            loop.call_soon_threadsafe(settle, value)

        def failed(exc: BaseException) -> None:
            loop.call_soon_threadsafe(settle, None, exc)

        future.add_callback(ok)
        future.add_errback(failed)
        return done

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)
            self._producer = None
        self._executor.shutdown(wait=False)
