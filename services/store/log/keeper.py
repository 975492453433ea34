"""The log keeper: folds the signed heads topic into the in-memory tree, and (in the one
publishing store) signs and publishes a new head when new reports were stored.

Leaf order. A head records, per partition of the reports topic, the end offset it covers.
The leaves head k adds are the reports records between head k-1's offsets and its own,
ordered by (partition, offset). Both topics are the system of record (never dropped by
`truce rebuild`), so the order is a function of the log, and a rebuilt store re-derives
every head's tree exactly: it reads the heads back and, once its sink has stored the range
a head covers, checks the head's tree size and root against the leaves before serving it.

One chain. The tree only grows by applying heads read back from the topic, in topic
order, and a head applies only if it extends the last applied one (offsets no lower, the
recomputed size and root equal to the signed ones). A second publisher racing the first
cannot fork the tree: whichever head lands second no longer extends the first and is
skipped (logged) by every reader alike."""

from __future__ import annotations

import threading
import time
from array import array
from typing import Any

import orjson
import structlog
from kafka import TopicPartition
from kafka.errors import KafkaError

from core.errors import Unavailable
from core.kafka import admin_client, durable_producer, ensure_topics, plain_consumer
from core.kafka_access import Cluster
from core.merkle import EMPTY_ROOT
from schemas.log import SignedHead
from services.store.database import Database
from services.store.log.signer import HeadSigner
from services.store.log.tree import MerkleTree

log = structlog.get_logger("store.log")

Prepared = tuple[dict[str, int], dict[str, int], list[tuple[int, int]], list[bytes]]
"""(previous offsets, offsets, positions, leaf hashes) of a head built here."""

LEAVES_SQL = """
SELECT kafka_partition, kafka_offset, leaf_hash FROM log_entries
WHERE kafka_partition = {partition:UInt32}
  AND kafka_offset >= {start:UInt64} AND kafka_offset < {end:UInt64}
ORDER BY kafka_offset LIMIT 1 BY kafka_offset
"""
ENTRIES_SQL = """
SELECT kafka_offset, entry FROM log_entries
WHERE kafka_partition = {partition:UInt32}
  AND kafka_offset >= {start:UInt64} AND kafka_offset <= {last:UInt64}
ORDER BY kafka_offset LIMIT 1 BY kafka_offset
"""


class LogKeeper(threading.Thread):
    def __init__(
        self,
        *,
        db: Database,
        cluster: Cluster,
        heads_topic: str,
        reports_topic: str,
        sink_group: str,
        signer: HeadSigner | None,
        interval_s: float,
        replication: Any = None,
    ) -> None:
        super().__init__(name="log-keeper", daemon=True)
        self.db = db
        self.cluster = cluster
        self.heads_topic = heads_topic
        self.reports_topic = reports_topic
        self.sink_group = sink_group
        self.signer = signer
        self.interval_s = interval_s
        self.replication = replication
        self.tree = MerkleTree()
        self._parts = array("I")  # leaf index -> reports partition
        self._offs = array("Q")  # leaf index -> offset
        self._heads: list[SignedHead] = []
        self._pending: list[SignedHead] = []  # read, not applicable yet (sink behind)
        self._lock = threading.RLock()
        self._applied = threading.Condition(self._lock)
        self._publish_lock = threading.Lock()
        self._stop_event = threading.Event()
        self._read_upto = 0  # next offset of the heads topic to read
        self._sent = False  # this process has sent a head
        self._next_check = 0.0  # when to ask again how far the sink has stored
        self._prepared: Prepared | None = None  # the leaves of the head we just built
        self._producer: Any = None
        self.healthy = threading.Event()
        self.last_error: str | None = None
        self.skipped = 0

    # -- what the query service reads ------------------------------------------------------
    def current_head(self) -> SignedHead | None:
        """The latest head whose tree this store has checked; None before the first."""
        with self._lock:
            return self._heads[-1] if self._heads else None

    def heads(self) -> list[SignedHead]:
        with self._lock:
            return list(self._heads)

    def position(self, index: int) -> tuple[int, int]:
        """(partition, offset) of the leaf at ``index`` on the reports topic."""
        return self._parts[index], self._offs[index]

    def entries(self, start: int, end: int) -> list[tuple[int, int, bytes]]:
        """(partition, offset, entry bytes) of leaves ``[start, end)``, in tree order."""
        runs: dict[int, tuple[int, int]] = {}
        for i in range(start, end):
            p, o = self._parts[i], self._offs[i]
            low, high = runs.get(p, (o, o))
            runs[p] = (min(low, o), max(high, o))
        found: dict[tuple[int, int], bytes] = {}
        for p, (low, high) in runs.items():
            for offset, entry in self._query(ENTRIES_SQL, partition=p, start=low, last=high):
                found[(p, int(offset))] = _bytes(entry)
        out = []
        for i in range(start, end):
            key = (self._parts[i], self._offs[i])
            if key not in found:
                raise Unavailable("the store has not stored this part of the log yet")
            out.append((*key, found[key]))
        return out

    # -- the thread ------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                self._follow()
            except Exception as exc:  # broker or ClickHouse trouble: start over, keep the tree
                self.last_error = f"log: {exc}"[:500]
                self.healthy.clear()
                log.exception("log keeper failed; retrying")
                self._stop_event.wait(2.0)

    def _follow(self) -> None:
        ensure_topics(
            self.cluster,
            [self.heads_topic],
            partitions=1,
            **({"replication": self.replication} if self.replication else {}),
        )
        tp = TopicPartition(self.heads_topic, 0)
        consumer = plain_consumer(self.cluster, enable_auto_commit=False)
        try:
            consumer.assign([tp])
            with self._lock:
                consumer.seek(tp, self._read_upto)
            next_publish = time.monotonic() + self.interval_s
            while not self._stop_event.is_set():
                for records in consumer.poll(timeout_ms=200).values():
                    for record in records:
                        self._read(record.value, record.offset)
                self._apply_pending()
                self.last_error = None
                caught_up = consumer.position(tp) >= consumer.end_offsets([tp])[tp]
                if self.signer and caught_up and self._read_upto == 0:
                    self._publish_genesis()  # a new log: its first head is the empty tree
                    continue
                if caught_up:  # ready once the heads topic has been read to its end
                    self.healthy.set()
                if self.signer and caught_up and time.monotonic() >= next_publish:
                    self._publish()
                    next_publish = time.monotonic() + self.interval_s
        finally:
            consumer.close(autocommit=False)

    def _read(self, value: bytes, offset: int) -> None:
        with self._lock:
            self._read_upto = offset + 1
            try:
                head = SignedHead.model_validate_json(value)
            except ValueError as exc:
                self.skipped += 1
                log.error("undecodable head skipped", offset=offset, error=str(exc)[:300])
                return
            self._pending.append(head)

    def _apply_pending(self) -> None:
        """Apply the heads read, in order, as far as the sink has stored their leaves."""
        if not self._pending:
            return
        if self._pending[0].offsets and time.monotonic() < self._next_check:
            return  # waiting for the sink (a rebuild): ask Kafka about once a second
        self._next_check = time.monotonic() + 1.0
        stored = self.stored_offsets()
        with self._lock:
            while self._pending:
                head = self._pending[0]
                if any(stored.get(int(p), 0) < end for p, end in head.offsets.items()):
                    return  # its leaves are not all in ClickHouse yet
                self._pending.pop(0)
                self._apply(head)

    def _apply(self, head: SignedHead) -> None:
        last = self._heads[-1] if self._heads else None
        previous = last.offsets if last else {}
        if any(head.offsets.get(p, 0) < end for p, end in previous.items()):
            self._skip(head, "does not extend the previous head (lower offsets)")
            return
        prepared, self._prepared = self._prepared, None
        if prepared is not None and prepared[0] == previous and prepared[1] == head.offsets:
            positions, leaves = prepared[2], prepared[3]  # our own head: fetched already
        else:
            positions, leaves = self._leaves(previous, head.offsets)
        size = self.tree.size
        if size + len(leaves) != head.tree_size:
            self._skip(head, f"covers {size + len(leaves)} leaves, says {head.tree_size}")
            return
        self.tree.extend(leaves)
        if self.tree.root(head.tree_size).hex() != head.root_hash:
            self.tree.truncate(size)
            self._skip(head, "its root is not the root of the leaves it covers")
            return
        for p, o in positions:
            self._parts.append(p)
            self._offs.append(o)
        self._heads.append(head)
        self._applied.notify_all()

    def _skip(self, head: SignedHead, why: str) -> None:
        self.skipped += 1
        log.warning("tree head skipped", tree_size=head.tree_size, reason=why)

    def _leaves(
        self, start: dict[str, int], end: dict[str, int]
    ) -> tuple[list[tuple[int, int]], list[bytes]]:
        """The leaves between two sets of offsets, in tree order: by partition, offset."""
        positions: list[tuple[int, int]] = []
        leaves: list[bytes] = []
        for p in sorted(end, key=int):
            first, last = start.get(p, 0), end[p]
            if first >= last:
                continue
            for _, offset, leaf in self._query(LEAVES_SQL, partition=int(p), start=first, end=last):
                positions.append((int(p), int(offset)))
                leaves.append(_bytes(leaf))
        return positions, leaves

    def _query(self, sql: str, **parameters: Any) -> list[Any]:
        """Rows with String columns as bytes: entries are kept byte for byte."""
        result = self.db.client.query(
            sql, parameters=parameters, query_formats={"String": "bytes", "FixedString": "bytes"}
        )
        return list(result.result_rows)

    def stored_offsets(self) -> dict[int, int]:
        """Per reports partition, the offset below which the sink has stored every record
        (its committed offsets: it commits only after ClickHouse has the rows)."""
        admin = admin_client(self.cluster)
        try:
            committed = admin.list_group_offsets(self.sink_group).get(self.sink_group, {})
        finally:
            admin.close()
        return {
            tp.partition: meta.offset
            for tp, meta in committed.items()
            if tp.topic == self.reports_topic and meta.offset >= 0
        }

    # -- publishing ------------------------------------------------------------------------
    def _publish(self) -> SignedHead | None:
        """Sign and send a head over everything stored beyond the last head (None when
        nothing is new). The tree grows when it is read back, like anyone else's head."""
        with self._publish_lock:
            stored = self.stored_offsets()
            with self._lock:
                if self._pending or not self.healthy.is_set():
                    return None  # not caught up with the heads topic: never fork
                head = self.build_head({str(p): o for p, o in stored.items()})
            if head is None:
                return None
            self._send(head)
            return head

    def _publish_genesis(self) -> None:
        """Sign and send the empty tree's head (RFC 9162 allows one), so that a new log
        answers /v1/log/head at once; never when this process has sent a head already."""
        assert self.signer is not None
        with self._publish_lock:
            if self._sent:
                return
            self._send(self._signed(0, EMPTY_ROOT, {}, None))

    def _send(self, head: SignedHead) -> None:
        if self._producer is None:
            self._producer = durable_producer(self.cluster)
        self._producer.send(self.heads_topic, orjson.dumps(head.model_dump())).get(30)
        self._sent = True
        log.info("tree head published", tree_size=head.tree_size, root=head.root_hash)

    def _signed(
        self, tree_size: int, root: bytes, offsets: dict[str, int], last: SignedHead | None
    ) -> SignedHead:
        assert self.signer is not None
        timestamp = max(int(time.time() * 1000), last.timestamp if last else 0)
        return SignedHead(
            tree_size=tree_size,
            root_hash=root.hex(),
            timestamp=timestamp,
            signature=self.signer.sign(tree_size, timestamp, root),
            key_id=self.signer.key_id,
            offsets=offsets,
        )

    def build_head(self, stored: dict[str, int]) -> SignedHead | None:
        """The signed head extending the last applied one up to the ``stored`` offsets
        (None when that adds nothing). Call with the lock held; its leaves are kept for
        when the head is read back."""
        assert self.signer is not None
        last = self._heads[-1] if self._heads else None
        previous = last.offsets if last else {}
        offsets = dict(stored)
        for p, o in previous.items():
            offsets[p] = max(offsets.get(p, 0), o)
        offsets = {p: o for p, o in offsets.items() if o > 0}
        if offsets == {p: o for p, o in previous.items() if o > 0}:
            return None
        positions, leaves = self._leaves(previous, offsets)
        if not leaves:
            return None
        size = self.tree.size
        self.tree.extend(leaves)
        root = self.tree.root(self.tree.size)
        self.tree.truncate(size)
        self._prepared = (previous, offsets, positions, leaves)
        return self._signed(size + len(leaves), root, offsets, last)

    def publish_now(self, timeout_s: float = 30.0) -> SignedHead | None:
        """A head covering every reports record the sink has stored now, once this store
        has applied it (editions pin it); the current head when nothing is new."""
        if self.signer is None:
            raise Unavailable("this store does not publish tree heads (TRUCE_LOG_PUBLISHER)")
        deadline = time.monotonic() + timeout_s
        if not self.healthy.wait(timeout_s):  # every head so far read, or we could fork
            raise Unavailable("the log keeper has not read the heads topic yet")
        while True:
            with self._lock:
                pending = bool(self._pending)
            if not pending:
                try:
                    head = self._publish()
                except KafkaError as exc:
                    raise Unavailable(f"the tree head could not be published: {exc}") from None
                if head is None:
                    return self.current_head()
                break
            if time.monotonic() > deadline:
                raise Unavailable("the log keeper is still reading the heads topic")
            time.sleep(0.1)
        with self._applied:
            while not self._heads or self._heads[-1].tree_size < head.tree_size:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Unavailable("the new tree head was not read back in time")
                self._applied.wait(left)
            return self._heads[-1]

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)


def _bytes(value: Any) -> bytes:
    """clickhouse-connect hands String columns back as str unless told otherwise."""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    return str(value).encode("utf-8", "surrogateescape")
