"""The Truce contract in code: report models, reference data, topics, envelopes.

A leaf package: it imports nothing else of ours, and everything else may import it."""

from __future__ import annotations

from schemas.content import canonical_content, content_hash
from schemas.envelope import (
    ReportEnvelope,
    decode_envelope,
    encode_envelope,
    make_envelope,
)
from schemas.outputs import (
    Alert,
    AlertDelivery,
    AlertLabel,
    CanonicalReport,
    DeadLetter,
    Silence,
    VerificationStatus,
    WeeklyAccess,
    WeeklyCompliance,
)
from schemas.reference import Area, Party, area_list, areas, parties, party_list
from schemas.reports import (
    KINDS,
    PRIVILEGED_KINDS,
    REPORT_ADAPTER,
    AccessRequest,
    Delivery,
    Designation,
    Report,
    ReportBase,
    Verification,
    Violation,
    parse_report,
    report_subject_id,
)
from schemas.requests import MAX_BATCH, BatchRequest
from schemas.timestamps import format_utc, parse_rfc3339
from schemas.topics import (
    ALERTS,
    DEADLETTER,
    DELIVERIES,
    EVENTS,
    FOLDED,
    METRICS,
    REPORTS,
    SILENCES,
    GroupNames,
    TopicNames,
    group_names,
    silences_topic,
    topic_names,
)
from schemas.upcasters import SCHEMA_VERSION, UPCASTERS, SchemaVersionError, upcast

__all__ = [
    "ALERTS",
    "DEADLETTER",
    "DELIVERIES",
    "EVENTS",
    "FOLDED",
    "KINDS",
    "MAX_BATCH",
    "METRICS",
    "PRIVILEGED_KINDS",
    "REPORTS",
    "REPORT_ADAPTER",
    "SCHEMA_VERSION",
    "SILENCES",
    "UPCASTERS",
    "AccessRequest",
    "Alert",
    "AlertDelivery",
    "AlertLabel",
    "Area",
    "BatchRequest",
    "CanonicalReport",
    "DeadLetter",
    "Delivery",
    "Designation",
    "GroupNames",
    "Party",
    "Report",
    "ReportBase",
    "ReportEnvelope",
    "SchemaVersionError",
    "Silence",
    "TopicNames",
    "Verification",
    "VerificationStatus",
    "Violation",
    "WeeklyAccess",
    "WeeklyCompliance",
    "area_list",
    "areas",
    "canonical_content",
    "content_hash",
    "decode_envelope",
    "encode_envelope",
    "format_utc",
    "group_names",
    "make_envelope",
    "parse_report",
    "parse_rfc3339",
    "parties",
    "party_list",
    "report_subject_id",
    "silences_topic",
    "topic_names",
    "upcast",
]
