"""Reads the reports topic from the beginning into the ledger, then keeps tailing it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson
import structlog
from kafka import TopicPartition

from core.kafka import plain_consumer
from core.kafka_access import Cluster
from core.merkle import leaf_hash
from services.ingest.ledger import Entry, Ledger, Receipt

log = structlog.get_logger("ingest.follower")

FOLLOW_MIN_BYTES = 256 * 1024
FOLLOW_WAIT_MS = 250
REPORT_EVERY_S = 2.0
"""How often the follower tells the other ingest processes how far it has read."""


class LogFollower(threading.Thread):
    """A daemon thread; ``caught_up`` is set once the start-up end offsets were reached."""

    def __init__(
        self,
        bootstrap: Cluster,
        topic: str,
        ledger: Ledger,
        report: Callable[[Mapping[int, int]], None] = lambda positions: None,
    ) -> None:
        super().__init__(name="ledger-follower", daemon=True)
        self.bootstrap = bootstrap
        self.topic = topic
        self.ledger = ledger
        self._report = report
        """Told every REPORT_EVERY_S (and before reading starts) how far the ledger has read;
        it must not raise."""
        self.caught_up = threading.Event()
        self._stop_event = threading.Event()
        self.records_read = 0
        self._positions: dict[int, int] = {}  # partition -> next offset not yet applied
        self._moved = threading.Condition()

    def stop(self) -> None:
        self._stop_event.set()

    def wait_applied(self, ends: dict[int, int], timeout_s: float) -> bool:
        """Blocking: True once every record before ``ends`` (partition -> offset) is in
        the ledger, False after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        with self._moved:
            while any(self._positions.get(p, -1) < end for p, end in ends.items()):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._moved.wait(min(left, 0.5))
            return True

    def _consumer(self) -> tuple[Any, dict[Any, int]]:
        self._report({})  # registered before the end offsets: nothing after them is forgotten
        consumer = plain_consumer(
            self.bootstrap,
            enable_auto_commit=False,
            group_id=None,
            fetch_max_bytes=64 * 1024 * 1024,
            # This process's own accepts are already in the ledger; waiting a little for
            # fuller fetches costs other replicas' accepts at most FOLLOW_WAIT_MS of lag,
            # and saves a fetch per few records when single reports stream in.
            fetch_min_bytes=FOLLOW_MIN_BYTES,
            fetch_max_wait_ms=FOLLOW_WAIT_MS,
            max_partition_fetch_bytes=16 * 1024 * 1024,
        )
        partitions = consumer.partitions_for_topic(self.topic) or set()
        assigned = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        return consumer, consumer.end_offsets(assigned) if assigned else {}

    def _apply(self, record: Any) -> None:
        value: bytes | None = record.value
        if value is None:
            return
        try:
            envelope = orjson.loads(value)
            report = envelope["report"]
            self.ledger.record(
                Entry(
                    str(report["report_id"]),
                    int(report.get("revision", 1)),
                    str(envelope["content_hash"]),
                    str(envelope["org"]),
                    Receipt(leaf_hash(value), record.partition, record.offset),
                    envelope.get("instance_id"),
                )
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.warning("undecodable record on reports topic; skipped by the ledger")
        self.records_read += 1

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                self._follow()
            except Exception:
                log.exception("ledger follower failed; retrying")
                self._stop_event.wait(2.0)

    def _follow(self) -> None:
        consumer, end = self._consumer()
        reported = time.monotonic()
        try:
            while not self._stop_event.is_set():
                batches = consumer.poll(timeout_ms=500, max_records=5000)
                for records in batches.values():
                    for record in records:
                        self._apply(record)
                with self._moved:
                    self._positions = {tp.partition: consumer.position(tp) for tp in end}
                    self._moved.notify_all()
                if time.monotonic() - reported > REPORT_EVERY_S:
                    self._report(dict(self._positions))
                    reported = time.monotonic()
                if not self.caught_up.is_set() and all(
                    consumer.position(tp) >= offset for tp, offset in end.items()
                ):
                    self.caught_up.set()
                    log.info("ledger caught up", reports=len(self.ledger))
        finally:
            consumer.close()
