"""Derived outputs of the stream processor; their field names are the ClickHouse columns."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

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
    report_json: str = Field(description="The current revision as JSON (normalised).")


class WeeklyCompliance(_Frozen):
    """One (week, area, perpetrator) row of CONTRACT section 3 (topic: metrics)."""

    week: str
    area: str
    party: str
    violations: int
    violations_verified: int
    violations_exempt: int
    killed: int
    injured: int
    version: int


class WeeklyAccess(_Frozen):
    """One (week, area) row of deliveries and access requests (topic: metrics)."""

    week: str
    area: str
    deliveries_completed: int
    deliveries_partial: int
    deliveries_blocked: int
    deliveries_cancelled: int
    beneficiaries: int
    requests_submitted: int
    requests_approved: int
    requests_denied: int
    requests_withdrawn: int
    version: int


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
