"""Derived outputs of the stream processor; their field names are the ClickHouse columns.

The weekly metric records are generated from the figure sets of schemas/figures.py, so a
figure added there is a field here (and a snapshot column, see services/store/derived.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from schemas.figures import ACCESS, COMPLIANCE, FigureSet

VerificationStatus = Literal["verified", "disputed", "rejected", "unverified"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CanonicalReport(_Frozen):
    """The current state of one report and its classification (topic: events)."""

    report_id: str
    version: int = Field(ge=0, description="Monotonic per report; readers keep the highest.")
    kind: str
    revision: int
    org: str
    received_at: datetime
    occurred_at: datetime
    week: str = Field(description="ISO week of occurred_at in UTC, YYYY-Www.")
    area: str = Field(description="Empty for verification reports.")
    party: str = Field(description="Perpetrator (violation) or designated party (designation).")
    target: str = Field(description="Violation target: civilians, infrastructure or a party.")
    category: str = Field(description="Violation category.")
    status: str = Field(description="Delivery, access-request or verification status.")
    subject: str = Field(description="The violation a verification is about.")
    killed: int = Field(ge=0)
    injured: int = Field(ge=0)
    beneficiaries: int = Field(ge=0)
    retracted: bool
    counts: bool = Field(description="False when the current revision is retracted.")
    exempt: bool
    exempt_reason: str = Field(
        description="'' | designated_perpetrator | designated_target | designation:<id>"
    )
    verification: VerificationStatus
    incident: str = Field(
        default="", description="The incident a violation belongs to; '' for none (section 9)."
    )
    event: bool = Field(description="Counts as an event: an incident, or a violation in none.")
    sources: int = Field(ge=0, description="Organisations behind the event (1 for a lone one).")
    report_json: str = Field(description="The current revision as JSON (normalised).")

    @model_validator(mode="before")
    @classmethod
    def _before_incidents(cls, data: Any) -> Any:
        """A record written before incidents existed (no ``event``): a violation was an
        event of its own organisation, nothing else was an event (as migration 0008)."""
        if isinstance(data, dict) and "event" not in data:
            lone = data.get("kind") == "violation"
            data = {**data, "event": lone, "sources": int(lone)}
        return data


def weekly_record(figures: FigureSet, doc: str) -> type[_Frozen]:
    """The metric record of one figure set: ``week``, its keys, one non-negative ``int``
    per figure (described as schemas/figures.py defines it) and ``version``, in the order of
    the snapshot table's columns."""
    keys: dict[str, Any] = {key: (str, ...) for key in ("week", *figures.keys)}
    counts: dict[str, Any] = {
        f.name: (int, Field(ge=0, description=f.description)) for f in figures.figures
    }
    version: Any = (int, Field(ge=0, description="Monotonic per key; readers keep the highest."))
    model = create_model(
        f"Weekly{figures.name.capitalize()}",
        __base__=_Frozen,
        __doc__=doc,
        __module__=__name__,
        **keys,
        **counts,
        version=version,
    )
    return model


WeeklyCompliance = weekly_record(
    COMPLIANCE, "One (week, area, perpetrator) row of CONTRACT section 3 (topic: metrics)."
)
WeeklyAccess = weekly_record(
    ACCESS, "One (week, area) row of deliveries and access requests (topic: metrics)."
)
WEEKLY_RECORDS: dict[str, type[_Frozen]] = {
    COMPLIANCE.name: WeeklyCompliance,
    ACCESS.name: WeeklyAccess,
}
"""The metric record of each figure set by its name (a record's ``type`` on the topic)."""


class Alert(_Frozen):
    """A spike-rule alert; the fingerprint is stable across updates of the same alert."""

    fingerprint: str
    rule: str
    area: str
    party: str
    window: str
    state: Literal["firing", "resolved"]
    severity: Literal["minor", "moderate", "severe", "extreme"]
    summary: str
    value: float
    threshold: float
    starts_at: datetime
    updated_at: datetime
    version: int
    report_ids: list[str] = Field(default_factory=list)


class DeadLetter(_Frozen):
    """A report revision the stream refused, with the reason (topic: deadletter)."""

    report_id: str
    revision: int
    org: str
    reason: Literal["foreign_owner", "revision_conflict", "undecodable"]
    detail: str
    received_at: datetime | None = None


AlertLabel = Literal["rule", "area", "governorate", "party", "severity"]
"""Labels the alerter routes, groups and silences on."""


class AlertDelivery(_Frozen):
    """One attempt outcome of the alerter for one alert in one notification (topic:
    deliveries). ``delivery_id`` is the notification's idempotency key, the same on every
    attempt and after a restart, so receivers and readers can spot redeliveries."""

    delivery_id: str
    receiver: str
    channel: str
    fingerprint: str
    alert_version: int = Field(ge=0)
    alert_state: Literal["firing", "resolved"]
    msg_type: Literal["Alert", "Update", "Cancel"]
    outcome: Literal["delivered", "failed", "dead_lettered", "silenced"]
    attempt: int = Field(ge=0, description="1-based attempt number; 0 when silenced.")
    status_code: int = Field(ge=0, description="HTTP status or SMTP reply code; 0 if none.")
    error: str = Field(description="Why the attempt failed; empty when delivered.")
    at: datetime


class Silence(_Frozen):
    """Mutes notifications of alerts whose labels equal every matcher, until ``ends_at``
    (topic: silences, compacted by ``silence_id``; expiring one republishes it ended)."""

    silence_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    matchers: dict[AlertLabel, str] = Field(min_length=1)
    starts_at: datetime
    ends_at: datetime
    created_by: str = Field(min_length=1, max_length=200)
    comment: str = Field(default="", max_length=2000)
    created_at: datetime

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, labels: dict[str, str]) -> bool:
        return all(labels.get(name) == value for name, value in self.matchers.items())
