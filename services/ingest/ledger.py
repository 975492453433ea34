"""What ingest must remember to answer duplicate / 409 / 403: report id → owner and
revision → content hash. Rebuilt from the reports topic at start-up and kept current by
tailing it, so a restart (or another replica's accept) is not forgotten."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum


class Verdict(StrEnum):
    NEW = "accepted"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    FOREIGN = "foreign"


@dataclass
class _Entry:
    owner: str
    revisions: dict[int, str] = field(default_factory=dict)


class Ledger:
    """Thread-safe; the first revision recorded for an id fixes its owner."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def judge(self, report_id: str, revision: int, content_hash: str, org: str) -> Verdict:
        """Ownership first, then (id, revision) identity (CONTRACT section 2)."""
        with self._lock:
            entry = self._entries.get(report_id)
            if entry is None:
                return Verdict.NEW
            if entry.owner != org:
                return Verdict.FOREIGN
            known = entry.revisions.get(revision)
            if known is None:
                return Verdict.NEW
            return Verdict.DUPLICATE if known == content_hash else Verdict.CONFLICT

    def record(self, report_id: str, revision: int, content_hash: str, org: str) -> None:
        """Remember an accepted revision; the log's first write of a revision stays."""
        self.record_many([(report_id, revision, content_hash, org)])

    def record_many(self, accepted: Iterable[tuple[str, int, str, str]]) -> None:
        """:meth:`record` for a whole request under one lock (a batch has 1,000)."""
        with self._lock:
            for report_id, revision, content_hash, org in accepted:
                entry = self._entries.get(report_id)
                if entry is None:
                    entry = self._entries[report_id] = _Entry(owner=org)
                entry.revisions.setdefault(revision, content_hash)
