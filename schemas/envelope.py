"""The record on the reports topic: a validated report plus the server's fields.

Written once by ingest and never rewritten; readers decode it through the upcasters so
old records stay readable after schema changes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field

from schemas.codec import loads
from schemas.content import content_hash
from schemas.reports import Report
from schemas.timestamps import UtcDatetime
from schemas.upcasters import SCHEMA_VERSION, upcast

DECODE_CONTEXT: Final[dict[str, Any]] = {"skip_future_check": True}
"""Stored reports were checked against the clock when received; "now" has moved on."""


class ReportEnvelope(BaseModel):
    """One accepted revision as stored: who sent it, when, and its content hash."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    report: Report
    org: str = Field(min_length=1, max_length=64, description="the owning organisation")
    key_name: str = Field(min_length=1, max_length=200, description="the key that sent it")
    received_at: UtcDatetime
    schema_version: int = Field(default=SCHEMA_VERSION, ge=1)
    content_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    instance_id: str | None = Field(
        default=None,
        max_length=200,
        exclude_if=lambda value: value is None,
        description="the OpenRosa instance (meta/instanceID) it came from (CONTRACT 10); "
        "absent for JSON reports",
    )


def make_envelope(
    report: Report,
    *,
    org: str,
    key_name: str,
    received_at: datetime,
    instance_id: str | None = None,
) -> ReportEnvelope:
    """Wrap a validated report for publishing, hashing its canonical content."""
    return ReportEnvelope(
        report=report,
        org=org,
        key_name=key_name,
        received_at=received_at,
        schema_version=SCHEMA_VERSION,
        content_hash=content_hash(report),
        instance_id=instance_id,
    )


def encode_envelope(envelope: ReportEnvelope) -> bytes:
    """Compact JSON bytes for the topic (timestamps in UTC with 'Z').

    pydantic's own serializer writes the bytes directly, about twice as fast as dumping to
    a dict and encoding that; ingest does this for every accepted report."""
    return ReportEnvelope.__pydantic_serializer__.to_json(envelope)


def decode_envelope(data: bytes | str) -> ReportEnvelope:
    """Parse, upcast and validate a stored envelope; raises ``ValueError`` on bad input.

    Validation is the full ingest validation except the future-timestamp check."""
    return ReportEnvelope.model_validate(upcast(loads(data)), context=DECODE_CONTEXT)
