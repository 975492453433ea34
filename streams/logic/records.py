"""The typed records the two stages hand each other and send: a placement on the folded
topic, a verdict, an incident's claim or a member's membership on the verdicts topic (the
references between reports; a claim and a membership name their ``type``, a verdict has
none, as before incidents), a metric snapshot on the metrics topic.

Placements and verdicts are dataclasses whose field names are their JSON keys (orjson
writes them as they are); a snapshot names its figure set explicitly on the wire, since
one topic carries rows of both sets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from schemas.figures import FigureSet


@dataclass(frozen=True)
class Emit:
    """One record to send: ``role`` names the topic (folded, verdicts, events, metrics,
    alerts, deadletter); ``value`` is a typed record or a dict shaped as its schema."""

    role: str
    key: str
    value: Any


@dataclass(frozen=True, slots=True)
class Placement:
    """A report's current state for the partition of one area (stage one to stage two):
    live there (``removed`` False, with its report) or withdrawn from it."""

    report_id: str
    seq: int  # a new one for every change of the report's state, never reused
    kind: str
    org: str
    revision: int
    received_at: str
    verification: str
    area: str
    removed: bool
    report: dict[str, Any] | None
    incident: str = ""  # of a violation: the incident it belongs to, "" for none
    sources: tuple[str, ...] = ()  # of an incident: the organisations of its members

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Placement:
        return cls(
            str(data["report_id"]),
            int(data["seq"]),
            str(data["kind"]),
            str(data["org"]),
            int(data["revision"]),
            str(data["received_at"]),
            str(data["verification"]),
            str(data["area"]),
            bool(data["removed"]),
            data["report"],
            str(data.get("incident") or ""),  # placements stored before incidents lack them
            tuple(data.get("sources") or ()),
        )

    def wire(self) -> dict[str, Any]:
        """As stored in a table and sent (the same keys orjson writes)."""
        wired = {name: getattr(self, name) for name in self.__slots__}
        wired["sources"] = list(self.sources)
        return wired

    @property
    def live(self) -> dict[str, Any] | None:
        """The report while it is placed here, None once it has left."""
        return None if self.removed else self.report


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one verification says about one subject now: a status, or withdrawn (another
    subject, another kind or retracted) as ``retracted``. ``seq`` orders its versions."""

    report_id: str
    subject: str
    seq: int
    occurred_at: str | None
    status: str | None
    retracted: bool

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Verdict:
        return cls(
            str(data["report_id"]),
            str(data["subject"]),
            int(data["seq"]),
            data["occurred_at"],
            data["status"],
            bool(data["retracted"]),
        )

    def wire(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class Claim:
    """An incident's word to one report it lists, or listed (references topic, keyed by
    the member): ``live`` while its current revision is a non-retracted incident listing
    the member. ``version`` is the incident's current revision (see streams.logic.incidents)."""

    incident: str
    member: str
    version: int
    occurred_at: str | None
    live: bool
    type: str = "claim"

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Claim:
        return cls(
            str(data["incident"]),
            str(data["member"]),
            int(data["version"]),
            data["occurred_at"],
            bool(data["live"]),
        )

    def wire(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class Membership:
    """A listed report's answer to an incident that claims it (references topic, keyed by
    the incident): ``live`` while it is a current, non-retracted violation belonging to
    that incident; ``org`` is its organisation (its owner, which never changes)."""

    member: str
    incident: str
    version: int
    org: str
    live: bool
    type: str = "membership"

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Membership:
        return cls(
            str(data["member"]),
            str(data["incident"]),
            int(data["version"]),
            str(data["org"]),
            bool(data["live"]),
        )

    def wire(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The current value of one weekly row (metrics topic), versioned by the offset of
    the record that produced it."""

    figures: FigureSet
    week: str
    area: str
    party: str  # "" for a row without a party key
    values: Mapping[str, int]
    version: int

    @property
    def key(self) -> str:
        parts = [self.figures.name, self.week, self.area]
        if "party" in self.figures.keys:
            parts.append(self.party)
        return "|".join(parts)

    def wire(self) -> dict[str, Any]:
        keys: dict[str, Any] = {"type": self.figures.name, "week": self.week, "area": self.area}
        if "party" in self.figures.keys:
            keys["party"] = self.party
        return {**keys, **self.values, "version": self.version}


def encode(value: object) -> bytes:
    """The bytes of an output record, whatever its type."""
    return orjson.dumps(value.wire() if isinstance(value, Snapshot) else value)


def version_of(value: object) -> int:
    """The version of a snapshot-like output (metric snapshots, canonical reports)."""
    if isinstance(value, Snapshot):
        return value.version
    assert isinstance(value, Mapping)
    return int(value["version"])
