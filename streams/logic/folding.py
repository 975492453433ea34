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
    subjects: frozenset[str] = field(default_factory=frozenset)
    """Every report a revision of this one judged as a verification: each is told when
    the current revision stops judging it (another subject, another kind, retracted)."""
    members: frozenset[str] = field(default_factory=frozenset)
    """Every report a revision of this one listed as an incident: each is told when the
    current revision stops listing it (see streams.logic.incidents)."""
    incident: str = ""
    """The incident this report belongs to ("" for none), from the claims about it."""
    sources: tuple[str, ...] = ()
    """As an incident: the organisations of its current members."""


def fold(history: History | None, rev: Revision) -> tuple[History | None, Outcome]:
    """Apply one revision; the returned history is None only when there was none and the
    revision was refused (which cannot happen for a first revision)."""
    area = str(rev.report.get("area") or "")
    subject = _subject(rev)
    listed = frozenset(_members(rev))
    if history is None:
        areas = frozenset({area}) if area else frozenset()
        subjects = frozenset({subject}) if subject else frozenset()
        first = History(
            rev.org,
            {rev.revision: rev.content_hash},
            rev,
            1,
            areas,
            subjects=subjects,
            members=listed,
        )
        return first, Outcome.CURRENT
    if rev.org != history.owner:
        return history, Outcome.FOREIGN
    known = history.hashes.get(rev.revision)
    if known is not None:
        return history, Outcome.DUPLICATE if known == rev.content_hash else Outcome.CONFLICT
    hashes = {**history.hashes, rev.revision: rev.content_hash}
    if rev.revision < history.current.revision:
        return replace(history, hashes=hashes), Outcome.SUPERSEDED
    areas = history.areas | ({area} if area else set())
    subjects = history.subjects | ({subject} if subject else set())
    changed = replace(
        history,
        hashes=hashes,
        current=rev,
        seq=history.seq + 1,
        areas=frozenset(areas),
        subjects=frozenset(subjects),
        members=history.members | listed,
    )
    return changed, Outcome.CURRENT


def _subject(rev: Revision) -> str:
    """The report a verification revision judges; "" for every other kind."""
    if rev.report.get("kind") != "verification":
        return ""
    return str(rev.report.get("subject") or "")


def _members(rev: Revision) -> list[str]:
    """The reports an incident revision lists; none for every other kind."""
    if rev.report.get("kind") != "incident":
        return []
    return [str(m) for m in rev.report.get("members") or ()]


def with_incident(history: History, incident: str) -> History:
    """A new sequence number when the report's incident changes (not a revision)."""
    if incident == history.incident:
        return history
    return replace(history, seq=history.seq + 1, incident=incident)


def with_sources(history: History, sources: tuple[str, ...]) -> History:
    """A new sequence number when an incident's sources change (not a revision)."""
    if sources == history.sources:
        return history
    return replace(history, seq=history.seq + 1, sources=sources)


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
        "subjects": sorted(history.subjects),
        "members": sorted(history.members),
        "incident": history.incident,
        "sources": list(history.sources),
    }


def from_dict(data: dict[str, Any]) -> History:
    return History(
        owner=data["owner"],
        hashes={int(k): v for k, v in data["hashes"].items()},
        current=Revision(**data["current"]),
        seq=int(data["seq"]),
        areas=frozenset(data["areas"]),
        verification=data.get("verification", "unverified"),
        subjects=frozenset(data.get("subjects", ())),
        members=frozenset(data.get("members", ())),
        incident=str(data.get("incident", "")),
        sources=tuple(data.get("sources", ())),
    )
