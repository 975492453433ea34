"""What ingest must remember to answer duplicate / 409 / 403: report id → owner and
revision → content hash. Rebuilt from the reports topic at start-up and kept current by
tailing it, so a restart (or another replica's accept) is not forgotten."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from enum import StrEnum


class Verdict(StrEnum):
    NEW = "accepted"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    FOREIGN = "foreign"


def _revision_key(report_id: str, revision: int) -> str:
    """Unambiguous: the revision (digits only) is what follows the last space."""
    return f"{report_id} {revision}"


class Ledger:
    """Thread-safe; the first revision recorded for an id fixes its owner.

    Two flat ``str → str`` dicts, so the garbage collector does not track them: with one
    object per report, every full collection walked the whole ledger (pauses of 50-160 ms
    at 150,000 reports, the single-POST p99)."""

    def __init__(self) -> None:
        self._owners: dict[str, str] = {}
        self._hashes: dict[str, str] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._owners)

    def judge(self, report_id: str, revision: int, content_hash: str, org: str) -> Verdict:
        """Ownership first, then (id, revision) identity (CONTRACT section 2)."""
        with self._lock:
            owner = self._owners.get(report_id)
            if owner is None:
                return Verdict.NEW
            if owner != org:
                return Verdict.FOREIGN
            known = self._hashes.get(_revision_key(report_id, revision))
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
                self._owners.setdefault(report_id, org)
                self._hashes.setdefault(_revision_key(report_id, revision), content_hash)
