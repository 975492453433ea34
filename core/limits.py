"""Per-key rate limiting (token buckets) so one key's retry storm cannot starve others.

A token is spent when the key is authenticated, before the request body is read: a
malformed, oversized or refused request costs as much as an accepted one. Several
processes serving one port (TRUCE_INGEST_WORKERS) share their buckets through one SQLite
file, so a key gets its rate once, whichever process its connections land on."""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class Limiter(Protocol):
    def acquire(self, key: str) -> float:
        """0 when allowed now; otherwise the seconds to wait before retrying."""
        ...


def _spend(tokens: float, elapsed: float, rate: float, burst: float) -> tuple[float, float]:
    """The bucket after ``elapsed`` seconds of refill and one request: (tokens left, the
    seconds to wait, 0 when the request may go now). The one home of the bucket's rule."""
    tokens = min(burst, tokens + max(elapsed, 0.0) * rate)
    if tokens >= 1:
        return tokens - 1, 0.0
    return tokens, (1 - tokens) / rate


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """``rate_per_s`` tokens a second per key, up to ``burst`` saved up (one process)."""

    def __init__(self, rate_per_s: float, burst: int) -> None:
        self.rate = rate_per_s
        self.burst = float(burst)
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str) -> float:
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.setdefault(key, _Bucket(self.burst, now))
            bucket.tokens, wait = _spend(bucket.tokens, now - bucket.updated, self.rate, self.burst)
            bucket.updated = now
            return wait


class SharedRateLimiter:
    """:class:`RateLimiter` whose buckets live in a SQLite file that every process of one
    machine opens (``time.monotonic`` is the machine's clock, the same in each). A bucket
    is read and written in one immediate transaction (~25 µs; no fsync: losing the file
    only forgets how many tokens were spent)."""

    def __init__(self, path: Path, rate_per_s: float, burst: int) -> None:
        self.rate = rate_per_s
        self.burst = float(burst)
        self._path = path
        self._local = threading.local()  # a sqlite3 connection belongs to one thread

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self._path, isolation_level=None, timeout=10.0)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=OFF")
            db.execute(
                "CREATE TABLE IF NOT EXISTS buckets (key TEXT PRIMARY KEY, tokens REAL NOT NULL,"
                " updated REAL NOT NULL) WITHOUT ROWID"
            )
            self._local.db = db
        return db

    def acquire(self, key: str) -> float:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            now = time.monotonic()
            row = db.execute("SELECT tokens, updated FROM buckets WHERE key = ?", (key,)).fetchone()
            tokens, updated = row if row is not None else (self.burst, now)
            tokens, wait = _spend(tokens, now - updated, self.rate, self.burst)
            db.execute("INSERT OR REPLACE INTO buckets VALUES (?, ?, ?)", (key, tokens, now))
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return wait


def retry_after(seconds: float) -> str:
    """A ``Retry-After`` value: whole seconds, at least one."""
    return str(max(1, math.ceil(seconds)))
