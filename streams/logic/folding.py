"""Folding a report's revisions into its current state (CONTRACT section 2).

The stream is the authority: it applies the same ownership and conflict rules as
ingest, in log order, so racing ingest replicas cannot make two truths.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    CURRENT = "current"  # a new highest revision: the current state changed
    SUPERSEDED = "superseded"  # a valid lower revision arriving late: stored, no change
    DUPLICATE = "duplicate"  # the same (id, revision, content) again: no change
    FOREIGN = "foreign_owner"  # another organisation's revision: refused
    CONFLICT = "revision_conflict"  # same (id, revision), other content: refused


@dataclass(frozen=True)
class Revision:
    """One revision as the fold needs it: the envelope fields, report kept as a dict."""

    report_id: str
    revision: int
    org: str
    content_hash: str
    received_at: str
    report: dict[str, Any]


@dataclass(frozen=True)
class History:
    """Everything remembered about one report id."""

    owner: str
    hashes: dict[int, str]
    current: Revision
    seq: int = 1
    areas: frozenset[str] = field(default_factory=frozenset)
    verification: str = "unverified"


def fold(history: History | None, rev: Revision) -> tuple[History | None, Outcome]:
    """Apply one revision; the returned history is None only when there was none and the
    revision was refused (which cannot happen for a first revision)."""
    area = str(rev.report.get("area") or "")
    if history is None:
        areas = frozenset({area}) if area else frozenset()
        return History(rev.org, {rev.revision: rev.content_hash}, rev, 1, areas), Outcome.CURRENT
    if rev.org != history.owner:
        return history, Outcome.FOREIGN
    known = history.hashes.get(rev.revision)
    if known is not None:
        return history, Outcome.DUPLICATE if known == rev.content_hash else Outcome.CONFLICT
    hashes = {**history.hashes, rev.revision: rev.content_hash}
    if rev.revision < history.current.revision:
        return replace(history, hashes=hashes), Outcome.SUPERSEDED
    areas = history.areas | ({area} if area else set())
    changed = History(
        history.owner, hashes, rev, history.seq + 1, frozenset(areas), history.verification
    )
    return changed, Outcome.CURRENT


def with_verification(history: History, status: str) -> History:
    """A new sequence number when the verification status changes (not a revision)."""
    if status == history.verification:
        return history
    return replace(history, seq=history.seq + 1, verification=status)


def to_dict(history: History) -> dict[str, Any]:
    """Table representation (JSON-able)."""
    return {
        "owner": history.owner,
        "hashes": {str(k): v for k, v in history.hashes.items()},
        "current": history.current.__dict__,
        "seq": history.seq,
        "areas": sorted(history.areas),
        "verification": history.verification,
    }


def from_dict(data: dict[str, Any]) -> History:
    return History(
        owner=data["owner"],
        hashes={int(k): v for k, v in data["hashes"].items()},
        current=Revision(**data["current"]),
        seq=int(data["seq"]),
        areas=frozenset(data["areas"]),
        verification=data.get("verification", "unverified"),
    )
