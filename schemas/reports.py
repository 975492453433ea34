"""Report models, one frozen model per kind, as partners submit them (CONTRACT section 2).

A revision is a whole report, so every model carries the common fields; ``extra="forbid"``
refuses any field the contract does not name."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Final, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from schemas.fields import (
    AgencyName,
    AreaCode,
    Count,
    Description,
    DesignatedPartyCode,
    Kind,
    Latitude,
    Longitude,
    PartyCode,
    People,
    ReportId,
    RequestRef,
    Revision,
    TargetCode,
)
from schemas.timestamps import UtcDatetime, check_not_future

KINDS: Final[tuple[str, ...]] = get_args(Kind)
PRIVILEGED_KINDS: Final[frozenset[str]] = frozenset({"verification", "designation", "incident"})
"""The task force's kinds (CONTRACT section 1): judgements about field reports."""
FIELD_KINDS: Final[frozenset[str]] = frozenset(KINDS) - PRIVILEGED_KINDS
"""The field partners' kinds: what happened on the ground. A task-force key files none."""
"""Kinds only taskforce and admin keys may submit (CONTRACT section 1)."""

ViolationCategory = Literal[
    "airstrike",
    "shelling",
    "ground_attack",
    "sniper",
    "ied",
    "siege",
    "aid_obstruction",
    "other",
]

_CONFIG = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)


class ReportBase(BaseModel):
    """Fields every report carries; ``occurred_at`` may not lie in the future."""

    model_config = _CONFIG

    report_id: ReportId
    revision: Revision = 1
    occurred_at: UtcDatetime
    retracted: bool = Field(default=False, strict=True)

    @field_validator("occurred_at")
    @classmethod
    def _not_in_future(cls, value: datetime, info: ValidationInfo) -> datetime:
        return check_not_future(value, info)


class Violation(ReportBase):
    """A breach of the cessation of hostilities."""

    kind: Literal["violation"]
    area: AreaCode
    perpetrator: PartyCode
    target: TargetCode
    category: ViolationCategory
    killed: Count = 0
    injured: Count = 0
    source: Literal["witness", "staff", "media", "remote"]
    confidence: Literal["low", "medium", "high"]
    lat: Latitude | None = None
    lon: Longitude | None = None
    description: Description | None = None

    @model_validator(mode="after")
    def _position_is_whole(self) -> Violation:
        """A latitude without a longitude (or the reverse) locates nothing."""
        if (self.lat is None) != (self.lon is None):
            raise PydanticCustomError("incomplete_position", "give both lat and lon, or neither")
        return self


class Delivery(ReportBase):
    """A humanitarian delivery into an area, whatever its outcome."""

    kind: Literal["delivery"]
    area: AreaCode
    agency: AgencyName
    modality: Literal["convoy", "airdrop", "other"]
    status: Literal["completed", "partial", "blocked", "cancelled"]
    beneficiaries: People
    trucks: Count | None = None


class AccessRequest(ReportBase):
    """A request for humanitarian access; status changes are revisions of it."""

    kind: Literal["access_request"]
    area: AreaCode
    status: Literal["submitted", "approved", "denied", "withdrawn"]
    request_ref: RequestRef | None = None
    beneficiaries_planned: People | None = None


class Verification(ReportBase):
    """The task force's verdict on a violation; it has no area of its own."""

    kind: Literal["verification"]
    subject: ReportId
    status: Literal["verified", "disputed", "rejected", "unverified"]


class Designation(ReportBase):
    """An area held by a UN-designated party from ``occurred_at`` until ``effective_to``."""

    kind: Literal["designation"]
    area: AreaCode
    party: DesignatedPartyCode
    effective_to: UtcDatetime | None = None

    @field_validator("effective_to")
    @classmethod
    def _ends_after_start(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("occurred_at")
        if value is not None and isinstance(start, datetime) and value <= start:
            raise PydanticCustomError("empty_period", "effective_to must be later than occurred_at")
        return value

    @property
    def effective_from(self) -> datetime:
        """The designation holds from the moment it reports."""
        return self.occurred_at


MIN_MEMBERS: Final = 2
MAX_MEMBERS: Final = 50
"""An incident links 2 to 50 violation reports (CONTRACT section 9)."""


class Incident(ReportBase):
    """The task force's reconciliation of several violation reports into one event, with
    its own area, parties, category, casualties and time (CONTRACT section 9).

    Which members are violations, and which incident each belongs to, depends on other
    reports that may arrive later: that is decided by the stream (and the raw-log
    recount), not here. Only the list's own shape is checked."""

    kind: Literal["incident"]
    members: list[ReportId] = Field(min_length=MIN_MEMBERS, max_length=MAX_MEMBERS)
    area: AreaCode
    perpetrator: PartyCode
    target: TargetCode
    category: ViolationCategory
    killed: Count = 0
    injured: Count = 0

    @field_validator("members")
    @classmethod
    def _distinct_others(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if len(set(value)) != len(value):
            twice = sorted({m for m in value if value.count(m) > 1})
            raise PydanticCustomError(
                "duplicate_members",
                "members must be distinct report ids; listed more than once: {twice}",
                {"twice": ", ".join(twice)},
            )
        if info.data.get("report_id") in value:
            raise PydanticCustomError(
                "self_member", "an incident cannot list itself among its members"
            )
        return value


Report = Annotated[
    Violation | Delivery | AccessRequest | Verification | Designation | Incident,
    Field(discriminator="kind"),
]
REPORT_ADAPTER: Final[TypeAdapter[Report]] = TypeAdapter(Report)
MODELS: Final[tuple[type[ReportBase], ...]] = get_args(get_args(Report)[0])
"""The model of every kind, from the ``Report`` union."""
AREA_KINDS: Final[frozenset[str]] = frozenset(
    get_args(model.model_fields["kind"].annotation)[0]
    for model in MODELS
    if "area" in model.model_fields
)
"""The kinds whose reports are placed in an area (every kind but the verification)."""


class _KindProbe(BaseModel):
    """Validates ``kind`` alone, so a bad kind is reported at loc ("kind",)."""

    model_config = ConfigDict(extra="ignore")

    kind: Kind


def validation_context(now: datetime | None = None) -> dict[str, Any]:
    """The pydantic context the report models read (see :mod:`schemas.timestamps`)."""
    return {} if now is None else {"now": now}


def parse_report(data: object, *, now: datetime | None = None) -> Report:
    """Validate one submitted report (a decoded JSON object); raises ``ValidationError``.

    ``now`` is the server time the future check compares against (default: the clock)."""
    if isinstance(data, Mapping) and data.get("kind") not in KINDS:
        _KindProbe.model_validate(data)  # raises, naming "kind"
    return REPORT_ADAPTER.validate_python(data, context=validation_context(now))


def partition_key(report: Report) -> str:
    """The key a report is written under: its own id, whatever a revision says, so every
    revision of one report is ordered in one partition (a verification's verdicts reach
    its subject through the stream, not through the key)."""
    return report.report_id
