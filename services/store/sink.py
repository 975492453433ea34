"""The sink: topics → ClickHouse in batches bounded by size and time.

Offsets are committed only after every row of the batch is inserted. When ClickHouse
fails, the batch is kept and retried with backoff while consumption is paused, so nothing
is lost and memory stays bounded. Redelivered records change nothing: raw rows are keyed
by their Kafka offset, derived rows carry a version (ReplacingMergeTree).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import structlog
from kafka.errors import KafkaError

from core.kafka import group_consumer
from core.kafka_access import Cluster
from services.store.rows import TABLES, Converter, Row
from services.store.telemetry import StoreMetrics

log = structlog.get_logger("store.sink")

Inserter = Callable[[str, list[list[Any]], list[str]], None]


class Sink(threading.Thread):
    def __init__(
        self,
        *,
        bootstrap: Cluster,
        group_id: str,
        converters: Mapping[str, Converter | Sequence[Converter]],
        insert: Inserter,
        metrics: StoreMetrics,
        max_rows: int = 5000,
        max_wait_s: float = 0.25,
        max_backoff_s: float = 10.0,
    ) -> None:
        super().__init__(name="clickhouse-sink", daemon=True)
        self.bootstrap = bootstrap
        self.group_id = group_id
        self.converters: dict[str, tuple[Converter, ...]] = {
            topic: (convert,) if callable(convert) else tuple(convert)
            for topic, convert in converters.items()
        }  # several converters of one topic fail independently (a log entry never does)
        self.insert = insert
        self.metrics = metrics
        self.max_rows = max_rows
        self.max_wait_s = max_wait_s
        self.max_backoff_s = max_backoff_s
        self.healthy = threading.Event()
        self.last_error: str | None = None
        self.started = threading.Event()
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                self._consume()
            except Exception as exc:  # broker trouble: reconnect, nothing committed
                self.last_error = f"consumer: {exc}"
                self.healthy.clear()
                log.exception("sink consumer failed; reconnecting")
                self._stop_event.wait(2.0)

    def _consumer(self) -> Any:
        return group_consumer(
            self.bootstrap,
            *self.converters,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.max_rows,
            max_poll_interval_ms=3_600_000,
            fetch_max_bytes=64 * 1024 * 1024,
        )

    def _consume(self) -> None:
        consumer = self._consumer()
        try:
            rows: dict[str, list[list[Any]]] = {}
            pending = 0
            oldest = 0.0
            self.started.set()
            self.healthy.set()
            while not self._stop_event.is_set():
                polled = consumer.poll(timeout_ms=100, max_records=self.max_rows)
                for tp, records in polled.items():
                    converts = self.converters[tp.topic]
                    for record in records:
                        for convert in converts:
                            for row in self._convert(convert, record):
                                rows.setdefault(row.table, []).append(row.values)
                        if not pending:
                            oldest = time.monotonic()
                        pending += 1
                if pending and (
                    pending >= self.max_rows or time.monotonic() - oldest >= self.max_wait_s
                ):
                    self._flush(consumer, rows)
                    rows, pending = {}, 0
            if pending:
                self._flush(consumer, rows)
        finally:
            consumer.close(autocommit=False)

    def _convert(self, convert: Converter, record: Any) -> list[Row]:
        try:
            return convert(record.value, record.partition, record.offset)
        except Exception as exc:  # whatever the record holds, it must not stop the sink
            self.metrics.undecodable.labels(record.topic).inc()
            log.error(
                "record does not decode; skipped",
                topic=record.topic, partition=record.partition, offset=record.offset,
                error=str(exc)[:500],
            )  # fmt: skip
            return []

    def _flush(self, consumer: Any, rows: dict[str, list[list[Any]]]) -> None:
        """Insert everything, then commit; on failure pause, back off and retry.

        A failed commit (the group is rebalancing) is retried the same way: inserting the
        batch again is harmless, and the polls while paused let the rebalance finish."""
        backoff = 0.2
        paused = False
        while True:
            started = time.perf_counter()
            try:
                for table, values in rows.items():
                    self.insert(table, values, TABLES[table])
                    self.metrics.rows.labels(table).inc(len(values))
            except Exception as exc:
                self.metrics.insert_failures.inc()
                self.last_error = f"clickhouse: {exc}"[:500]
            else:
                try:
                    consumer.commit()
                except KafkaError as exc:
                    self.last_error = f"kafka commit: {exc}"[:500]
                else:
                    self.metrics.insert_seconds.observe(time.perf_counter() - started)
                    if paused:
                        consumer.resume(*consumer.assignment())
                    self.healthy.set()
                    self.last_error = None
                    return
            self.healthy.clear()
            log.warning("batch not stored; retrying", error=self.last_error, backoff_s=backoff)
            paused = True
            if not self._wait_paused(consumer, backoff):
                return  # stopping: nothing of the batch is committed, it is redelivered
            backoff = min(backoff * 2, self.max_backoff_s)

    def _wait_paused(self, consumer: Any, seconds: float) -> bool:
        """Back off while polling with every partition paused (False when asked to stop).

        Polling keeps the member in its group and lets a rebalance complete (a member that
        stops polling stalls the whole group). A rebalance can hand over partitions that are
        not paused yet: whatever they return is rewound, so no later commit skips it."""
        deadline = time.monotonic() + seconds
        while not self._stop_event.is_set():
            consumer.pause(*consumer.assignment())
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            polled = consumer.poll(timeout_ms=max(1, min(remaining_ms, 200)))
            for tp, records in polled.items():
                if records:
                    consumer.seek(tp, records[0].offset)
            if remaining_ms <= 200:
                consumer.pause(*consumer.assignment())
                return True
        return False
