"""What the ingest processes of one machine share (TRUCE_INGEST_WORKERS serve one port):
which report ids are being judged and published right now and by which process, the
accepts every process must know before the log brings them back, and the publishes whose
outcome is in doubt.

Without it two processes could both accept one (id, revision) with different content, or
a resend landing on another process than its original would be written twice (that
process's ledger learns of the original only when it reads it back from the log, up to a
fetch later). One SQLite file (WAL, no fsync): nothing in it outlives the log, which every
process reads at start-up, so losing the file loses nothing accepted.

A claim's holder is ``pid:start time`` (from ``/proc``), so a process that died holding
claims is told from a new process that reused its pid; what a dead holder was publishing
is in doubt until the log has been read to its end."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from services.ingest.ledger import Entry, Ledger, Receipt

_SCHEMA = """
CREATE TABLE IF NOT EXISTS claims (
    report_id TEXT PRIMARY KEY, holder TEXT NOT NULL, in_doubt INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS accepted (
    report_id TEXT NOT NULL, revision INTEGER NOT NULL, content_hash TEXT NOT NULL,
    org TEXT NOT NULL, leaf_hash BLOB NOT NULL, log_partition INTEGER NOT NULL,
    log_offset INTEGER NOT NULL, PRIMARY KEY (report_id, revision)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS accepted_position ON accepted (log_partition, log_offset);
CREATE TABLE IF NOT EXISTS readers (holder TEXT PRIMARY KEY, positions TEXT NOT NULL)
    WITHOUT ROWID;
"""
_CLAIMED = (
    "SELECT report_id, holder, in_doubt FROM claims"
    " WHERE report_id IN (SELECT value FROM json_each(?))"
)
_KNOWN = (
    "SELECT report_id, revision, content_hash, org, leaf_hash, log_partition, log_offset"
    " FROM accepted WHERE report_id IN (SELECT value FROM json_each(?))"
)

CLAIM_POLL_S = (0.001, 0.05)
"""First and longest pause between attempts to claim ids another live process holds."""


def process_identity(pid: int) -> str | None:
    """``pid:start time`` of a live process, None if it is gone (or a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return f"{pid}:{fields[19]}"


def _alive(holder: str) -> bool:
    pid = holder.partition(":")[0]
    return pid.isdigit() and process_identity(int(pid)) == holder


class ClaimTimeout(Exception):
    """Another live process kept some of the ids claimed for the whole wait."""


@dataclass
class Claim:
    """The ids one request holds across every process, and what it learnt on taking them."""

    ids: frozenset[str]
    in_doubt: set[str]
    """Ids whose last publish (by any process) may or may not be in the log."""
    accepted: list[Entry] = field(default_factory=list)

    def settled(self) -> None:
        """The log was read to its end after every doubtful publish: no doubt is left."""
        self.in_doubt.clear()

    def failed(self, ids: Iterable[str]) -> None:
        """These ids' publish got no answer: in doubt for whoever sends them next."""
        self.in_doubt.update(ids)


class Coordination:
    """One per ingest process; its methods run on the event loop's thread except
    :meth:`report_positions`, which the log follower's thread calls."""

    def __init__(self, path: Path, ledger: Ledger) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.ledger = ledger
        me = process_identity(os.getpid())
        self.holder = me if me is not None else f"{os.getpid()}:0"
        self._local = threading.local()
        self._db().executescript(_SCHEMA)

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=OFF")
            self._local.db = db
        return db

    @asynccontextmanager
    async def claim(self, ids: Iterable[str], timeout_s: float) -> AsyncIterator[Claim]:
        """Hold ``ids`` against every other process for the block; on entry, the accepts
        of these ids that other processes made are in the ledger. Raises ClaimTimeout."""
        wanted = frozenset(ids)
        deadline = time.monotonic() + timeout_s
        pause = CLAIM_POLL_S[0]
        while (claim := self._try_claim(wanted)) is None:
            if time.monotonic() > deadline:
                raise ClaimTimeout
            await asyncio.sleep(pause)
            pause = min(pause * 2, CLAIM_POLL_S[1])
        try:
            yield claim
        finally:
            self._release(claim)

    def _try_claim(self, ids: frozenset[str]) -> Claim | None:
        db = self._db()
        listed = json.dumps(sorted(ids))
        db.execute("BEGIN IMMEDIATE")
        try:
            rows = db.execute(_CLAIMED, (listed,)).fetchall()
            in_doubt: set[str] = set()
            for report_id, holder, doubtful in rows:
                if holder and holder != self.holder and _alive(holder):
                    db.execute("ROLLBACK")
                    return None
                if doubtful or holder:  # a dead holder may have been publishing it
                    in_doubt.add(report_id)
            db.executemany(
                "INSERT OR REPLACE INTO claims VALUES (?, ?, ?)",
                [(rid, self.holder, int(rid in in_doubt)) for rid in ids],
            )
            known = db.execute(_KNOWN, (listed,)).fetchall()
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        self.ledger.record_many(
            Entry(rid, rev, content, org, Receipt(leaf, partition, offset))
            for rid, rev, content, org, leaf, partition, offset in known
        )
        return Claim(ids, in_doubt)

    def _release(self, claim: Claim) -> None:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT OR IGNORE INTO accepted VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(e.report_id, e.revision, e.content_hash, e.org, *e.receipt)
                 for e in claim.accepted],
            )  # fmt: skip
            db.executemany(
                "UPDATE claims SET holder = '', in_doubt = 1 WHERE report_id = ?",
                [(rid,) for rid in claim.in_doubt],
            )
            db.executemany(
                "DELETE FROM claims WHERE report_id = ?",
                [(rid,) for rid in claim.ids - claim.in_doubt],
            )
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def report_positions(self, positions: Mapping[int, int]) -> None:
        """This process's log follower has applied every record before ``positions``
        (partition → offset; a partition not listed: nothing yet). Accepts that every live
        process has read back from the log are forgotten here. Registering with no
        positions before the follower starts keeps everything it has not read."""
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(
                "INSERT OR REPLACE INTO readers VALUES (?, ?)",
                (self.holder, json.dumps({str(p): o for p, o in positions.items()})),
            )
            readers = db.execute("SELECT holder, positions FROM readers").fetchall()
            live: list[dict[str, int]] = []
            for holder, read in readers:
                if holder == self.holder or _alive(holder):
                    live.append(json.loads(read))
                else:
                    db.execute("DELETE FROM readers WHERE holder = ?", (holder,))
            partitions = db.execute("SELECT DISTINCT log_partition FROM accepted").fetchall()
            for (partition,) in partitions:
                floor = min(read.get(str(partition), 0) for read in live)
                db.execute(
                    "DELETE FROM accepted WHERE log_partition = ? AND log_offset < ?",
                    (partition, floor),
                )
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def forget_reader(self) -> None:
        """On a clean stop: this process reads no more, so it holds nothing back."""
        db = self._db()
        db.execute("DELETE FROM readers WHERE holder = ?", (self.holder,))
