"""Publishing and reading editions of the weekly report (CONTRACT section 7).

An edition is the week's report recounted from the raw log at one log position (the one
its signed tree head covers, so `truce audit` recounts the same records), rendered once in
every format and written to the editions topic, the system of record. The ``editions``
table is its projection: rebuilt by the sink from the topic, holding each record's bytes,
so what is served after `truce rebuild` is what was published.

Numbering is decided under one lock in the publishing process; several query replicas
publishing the same week at the same moment could both pick N (the table keeps the first
record in the log: the second publisher's answer would then name an edition never served).
Run the schedule and publish from one process."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from kafka import KafkaProducer

from core.errors import NotFound, Unavailable
from core.kafka import durable_producer
from schemas.editions import EditionRecord, EditionSummary
from schemas.log import SignedHead
from schemas.weekly_report import EditionStamp, Restatement, WeeklyReport
from services.store.database import Database
from services.store.rows import TABLES, edition_row
from services.store.weekly.assemble import Against
from services.store.weekly.assemble import weekly_report as assemble
from services.store.weekly.formats import FORMATS
from services.store.weekly.render import render
from services.store.weekly.restate import restatements

MAX_EDITION_BYTES = 16 << 20
"""The largest edition record the producer sends (gzip-compressed on the wire)."""


@dataclass(frozen=True)
class Pin:
    """The log position an edition is counted from, and the signed head that covers it."""

    offsets: dict[int, int]
    log_head: dict[str, Any] | None


class HeadSource(Protocol):
    """What editions need of the Merkle log's keeper (services/store/log/keeper.py)."""

    @property
    def signer(self) -> object | None: ...

    def publish_now(self, timeout_s: float = 30.0) -> SignedHead | None: ...

    def current_head(self) -> SignedHead | None: ...


def pinned_head(log: HeadSource) -> Pin:
    """The head an edition pins: a new one covering every reports record stored now (this
    store signs heads), or the latest one read (another process signs them). Its offsets
    are exactly the records the edition is counted from, so `truce audit` recounts them."""
    head = log.publish_now() if log.signer is not None else log.current_head()
    if head is None:
        if log.signer is None:
            raise Unavailable("no signed tree head has been published yet; retry shortly")
        return Pin({}, None)  # the log is empty: an edition of nothing, pinned to nothing
    return Pin({int(p): int(o) for p, o in head.offsets.items()}, head.public())


LATEST = """
SELECT edition, argMax(record, first_in_log) AS record
FROM editions
WHERE week = {week:String}
GROUP BY edition
ORDER BY edition
"""


def editions(db: Database, week: str) -> list[EditionRecord]:
    """Every edition of a week, oldest first (the first record in the log of each)."""
    return [EditionRecord.model_validate_json(r["record"]) for r in db.rows(LATEST, week=week)]


def edition(db: Database, week: str, number: int) -> EditionRecord:
    found = [e for e in editions(db, week) if e.edition == number]
    if not found:
        raise NotFound(f"week {week} has no edition {number}")
    return found[0]


def position(record: EditionRecord) -> dict[int, int]:
    return {int(p): int(o) for p, o in record.log_position.items()}


STORED = """
SELECT kafka_partition AS partition, max(kafka_offset) AS last
FROM raw_reports
GROUP BY kafka_partition
ORDER BY partition
"""


class Restated:
    """The restatements of each week against its latest edition, reused while the store
    holds the same reports records: they are three raw-log folds (seconds at a million
    records), and the dashboard asks for the current report on every view. The records
    stored only grow (the sink appends; a rebuild refills the same ones), so the highest
    stored offset per partition says whether anything could have changed."""

    LIMIT = 64

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._found: dict[tuple[str, int], tuple[tuple[Any, ...], list[Restatement]]] = {}

    def get(self, db: Database, week: str, latest: EditionRecord) -> list[Restatement]:
        stored = tuple((int(r["partition"]), int(r["last"])) for r in db.rows(STORED))
        key = (week, latest.edition)
        with self._lock:
            hit = self._found.get(key)
        if hit is not None and hit[0] == stored:
            return hit[1]
        found = restatements(db, week, position(latest))
        with self._lock:
            if len(self._found) >= self.LIMIT:
                self._found.pop(next(iter(self._found)))
            self._found[key] = (stored, found)
        return found


def current_report(
    db: Database, week: str, now: datetime | None = None, restated: Restated | None = None
) -> WeeklyReport:
    """The week's current report; with editions, its restatements against the latest and
    its data quality counted against it."""
    published = editions(db, week)
    if not published:
        return assemble(db, week, now)
    latest = published[-1]
    cut = position(latest)
    report = assemble(db, week, now, against=Against(latest.edition, latest.published_at, cut))
    found = (restated or Restated()).get(db, week, latest)
    return report.model_copy(update={"restated_against": latest.edition, "restatements": found})


def freeze(db: Database, week: str, number: int, pin: Pin, at: datetime) -> EditionRecord:
    """Edition ``number`` of the week, counted at the pinned position and rendered."""
    earlier = [e for e in editions(db, week) if e.edition < number]
    against = None
    if earlier:
        last = earlier[-1]
        against = Against(last.edition, last.published_at, position(last))
    report = assemble(db, week, at, cut=pin.offsets, against=against)
    where = {str(p): o for p, o in sorted(pin.offsets.items())}
    stamp = EditionStamp(edition=number, published_at=at, log_head=pin.log_head,
                         log_position=where)  # fmt: skip
    report = report.model_copy(update={"edition": stamp, "log_head": pin.log_head})
    renderings = {name: render(report, fmt) for name, fmt in FORMATS.items()}
    return EditionRecord(
        week=week, edition=number, published_at=at, log_head=pin.log_head,
        sha256=hashlib.sha256(renderings["json"].encode()).hexdigest(),
        log_position=stamp.log_position, renderings=renderings,
    )  # fmt: skip


class Publisher:
    """Publishes editions from this process: one at a time, each written to the editions
    topic (acks=all) and to its projection before it is answered."""

    def __init__(
        self,
        db: Database,
        topic: str,
        producer: Callable[[], KafkaProducer],
        pin: Callable[[], Pin],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.db = db
        self.topic = topic
        self._make_producer = producer
        self._producer: KafkaProducer | None = None
        self.pin = pin
        self.clock = clock
        self.lock = threading.Lock()

    def _send(self, record: EditionRecord) -> tuple[bytes, int, int]:
        if self._producer is None:
            self._producer = self._make_producer()
        value = record.model_dump_json().encode()
        try:
            meta = self._producer.send(self.topic, key=record.week.encode(), value=value).get(
                timeout=30
            )
        except Exception as exc:  # kafka-python raises its own errors and timeouts
            raise Unavailable(f"the editions topic did not take edition: {exc}"[:300]) from exc
        return value, int(meta.partition), int(meta.offset)

    def publish(self, week: str) -> EditionSummary:
        """Freeze the week's next edition; answers once it is durable and served."""
        with self.lock:
            pin = self.pin()
            moment = self.clock().astimezone(UTC)
            at = moment.replace(microsecond=moment.microsecond // 1000 * 1000)  # ClickHouse ms
            number = max((e.edition for e in editions(self.db, week)), default=0) + 1
            record = freeze(self.db, week, number, pin, at)
            value, partition, offset = self._send(record)
            (row,) = edition_row(value, partition, offset)
            self.db.insert(row.table, [row.values], TABLES[row.table])
            return record.summary()

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)
            self._producer = None


def edition_producer(cluster: Any) -> Callable[[], KafkaProducer]:
    """A durable producer for edition records (large: compressed, bigger requests)."""
    return lambda: durable_producer(
        cluster, compression_type="gzip", max_request_size=MAX_EDITION_BYTES
    )
