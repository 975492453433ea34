"""The task force's weekly report (GET /v1/weekly-report/{week}) as a model.

Published as JSON and as a JSON Schema (``schemas/json/weekly-report.schema.json``) so that
consumers of the JSON format can validate what they receive; the Markdown, HTML and CSV
formats are renderings of this same object, so the numbers never differ between formats.
Counting follows CONTRACT section 3: only the current, non-retracted revision of a report
counts, in the ISO week of its ``occurred_at`` (UTC)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.outputs import VerificationStatus


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Period(_Out):
    start: date = Field(description="The Monday of the ISO week (UTC).")
    end: date = Field(description="The Sunday of the ISO week (UTC), inclusive.")


class PartyViolations(_Out):
    """Non-exempt violations of one perpetrator (CONTRACT section 3 `violations`)."""

    party: str = Field(description="Party code; 'total' in the totals row.")
    name: str
    violations: int = Field(ge=0, description="Current, non-exempt violation reports.")
    previous_week: int = Field(ge=0, description="The same count in the previous ISO week.")
    change: int = Field(description="violations - previous_week.")
    verified: int = Field(ge=0, description="Of `violations`, those whose status is verified.")
    verified_share: float | None = Field(
        ge=0, le=1, description="verified / violations; null when there are none."
    )
    killed: int = Field(ge=0)
    injured: int = Field(ge=0)


class Violations(_Out):
    parties: list[PartyViolations] = Field(
        description="Parties with a non-exempt violation this or the previous week, most first."
    )
    total: PartyViolations
    exempt: int = Field(ge=0, description="Exempt violations this week (listed in `exempt`).")


class PartyEvents(_Out):
    """The events of one perpetrator (CONTRACT section 9): each incident once, and each
    current violation in no incident; non-exempt only."""

    party: str = Field(description="Party code; 'total' in the totals row.")
    name: str
    reports: int = Field(ge=0, description="Its non-exempt violation reports (`violations`).")
    events: int = Field(ge=0, description="Non-exempt events (`incidents`).")
    corroborated: int = Field(
        ge=0, description="Of `events`, those backed by at least two organisations."
    )
    corroborated_share: float | None = Field(
        ge=0, le=1, description="corroborated / events; null when there are none."
    )
    killed: int = Field(ge=0, description="`incident_killed`: the events' own figures.")
    injured: int = Field(ge=0, description="`incident_injured`.")


class EventSources(_Out):
    """How many of the week's non-exempt events are backed by ``sources`` organisations
    (0: an incident none of whose members is a current violation of its own)."""

    sources: int = Field(ge=0)
    events: int = Field(ge=0)


class Incidents(_Out):
    """Events rather than reports (CONTRACT section 9): reports the task force linked into
    one incident count once, at the incident's own area, party, week and casualties."""

    parties: list[PartyEvents] = Field(description="Parties with an event this week, most first.")
    total: PartyEvents
    exempt: int = Field(ge=0, description="Exempt events this week (`incidents_exempt`).")
    sources: list[EventSources] = Field(
        description="Sources per event: the non-exempt events by how many organisations "
        "back them, fewest first."
    )


class ExemptIncident(_Out):
    """A violation outside the cessation of hostilities (designated party or area)."""

    report_id: str
    area: str
    party: str = Field(description="Perpetrator.")
    target: str
    reason: str = Field(
        description="designated_perpetrator | designated_target | designation:<report id>"
    )
    occurred_at: datetime
    killed: int = Field(ge=0)
    injured: int = Field(ge=0)
    verification: VerificationStatus


class BesiegedArea(_Out):
    """Aid to one besieged area (reference data `besieged: true`) in the week."""

    area: str
    name: str
    governorate: str
    deliveries_completed: int = Field(ge=0)
    deliveries_partial: int = Field(ge=0)
    deliveries_blocked: int = Field(ge=0)
    deliveries_cancelled: int = Field(ge=0)
    beneficiaries: int = Field(ge=0, description="Reached by completed and partial deliveries.")
    people_in_need: int = Field(ge=0, description="From the reference data.")
    coverage: float | None = Field(
        ge=0, description="beneficiaries / people_in_need; null when people_in_need is 0."
    )
    last_completed_delivery: date | None = Field(
        description="Day (UTC) of the latest completed delivery up to the week's end."
    )
    days_since_last_completed_delivery: int | None = Field(
        ge=0, description="Days from that delivery to the week's Sunday; null if never."
    )


class AreaCoverage(_Out):
    """Who reported from one area in the week (CONTRACT 9 coverage): an unmonitored area
    had no current field report of any kind from anyone, which is "no reports", not "no
    violations"."""

    area: str
    name: str
    governorate: str
    besieged: bool
    monitored: bool = Field(description="Any current field report from the area this week.")
    reporting_orgs: int = Field(ge=0, description="Organisations that reported from it.")
    reports: int = Field(ge=0, description="Current violations, deliveries, access requests.")
    last_report_at: datetime | None = Field(
        description="The latest such report's event time up to the week's end: for an "
        "unmonitored area, since when it is silent; null: never reported."
    )


class RequestCounts(_Out):
    """Access requests by current status. `submitted` counts every request (any status);
    `pending` those still awaiting an answer (status `submitted` in CONTRACT section 3)."""

    submitted: int = Field(ge=0)
    approved: int = Field(ge=0)
    denied: int = Field(ge=0)
    withdrawn: int = Field(ge=0)
    pending: int = Field(ge=0)


class Access(_Out):
    week: RequestCounts = Field(description="Requests whose current revision is in the week.")
    cumulative: RequestCounts = Field(description="Every request up to the week's end.")
    cumulative_approval_rate: float | None = Field(
        ge=0, le=1, description="cumulative approved / cumulative submitted; null when none."
    )


class WeekAlert(_Out):
    """A spike-rule alert active during the week (started before its end, not resolved
    before its start)."""

    fingerprint: str
    rule: str
    area: str
    party: str
    state: str
    severity: str
    summary: str
    starts_at: datetime
    updated_at: datetime
    reports: int = Field(ge=0, description="How many reports the alert lists.")


class DataQuality(_Out):
    """What arrived after a cut-off. Before a week has an edition: arrivals during the week
    (``since`` its start, ``until`` its end). Once it has one: the reports of this week
    that arrived after the latest edition's log position (``edition``, ``since`` its
    publication), up to now or ``as_of``."""

    since: datetime = Field(
        description="This week's start; the latest edition's publication once it has one."
    )
    until: datetime = Field(description="The week's end; now (or as_of) against an edition.")
    edition: int | None = Field(
        default=None, description="The edition counted against; null: the week's own window."
    )
    late_reports: int = Field(
        ge=0,
        description="Without an edition: reports about an earlier week first received in "
        "the window. Against an edition: reports of this week it had not received.",
    )
    revised_reports: int = Field(
        ge=0,
        description="Without an edition: reports with a revision > 1 received in the window. "
        "Against an edition: reports of this week it knew that have a newer revision since.",
    )


RestatementReason = Literal[
    "late", "corrected", "retracted", "reclassified", "verification", "incident"
]
"""Why a report changed a figure (CONTRACT section 7). ``incident``: the report was linked
to or unlinked from an incident, or an incident's sources changed (CONTRACT section 9)."""


class Cause(_Out):
    report_id: str
    reason: RestatementReason = Field(
        description="late: first received after the edition; corrected: a newer revision "
        "(content, week, area, party or kind changed); retracted: withdrawn since; "
        "reclassified: its exemption changed; verification: its verification status changed."
    )


class Restatement(_Out):
    """A weekly figure (schemas/figures.py) of one (area, party) cell of the week that
    differs from the latest edition, and the reports behind the difference."""

    figure: str = Field(description="A figure name, as in /v1/metrics/weekly and /access.")
    area: str
    party: str | None = Field(description="Perpetrator; null for the access figures.")
    was: int = Field(ge=0, description="In the latest edition.")
    now: int = Field(ge=0)
    because: list[Cause] = Field(
        description="Every report whose contribution to this figure changed (a report may "
        "be listed with several reasons)."
    )


class EditionStamp(_Out):
    """What a published edition was computed from."""

    edition: int = Field(ge=1)
    published_at: datetime
    log_head: dict[str, Any] | None = Field(
        description="The signed tree head (CONTRACT section 8) the edition pins: "
        "tree_size, root_hash, timestamp, signature, key_id."
    )
    log_position: dict[str, int] = Field(
        description="Reports topic partition -> end offset (exclusive): exactly the records "
        "the edition's figures were counted from."
    )


class WeeklyReport(_Out):
    """The task force's weekly report."""

    week: str = Field(pattern=r"^\d{4}-W\d{2}$", description="ISO 8601 week, YYYY-Www.")
    previous_week: str = Field(pattern=r"^\d{4}-W\d{2}$")
    period: Period
    generated_at: datetime
    violations: Violations
    incidents: Incidents | None = Field(
        default=None,
        description="Events and their sources (CONTRACT section 9); null in editions "
        "published before incidents were counted.",
    )
    exempt: list[ExemptIncident]
    besieged: list[BesiegedArea]
    coverage: list[AreaCoverage] = Field(
        default_factory=list,
        description="Every area of the reference data, in code order (empty in editions "
        "published before coverage was reported).",
    )
    access: Access
    alerts: list[WeekAlert]
    data_quality: DataQuality
    edition: EditionStamp | None = Field(
        default=None, description="Set in a published edition (GET ...?edition=N)."
    )
    log_head: dict[str, Any] | None = Field(
        default=None,
        description="In an edition: the signed tree head it pins (CONTRACT 8), the same as "
        "edition.log_head, at the top level where `truce audit` reads it.",
    )
    as_of: datetime | None = Field(
        default=None,
        description="Set when recomputed from the revisions received up to then (?as_of=).",
    )
    restated_against: int | None = Field(
        default=None, description="The latest edition the restatements compare with."
    )
    restatements: list[Restatement] = Field(
        default_factory=list,
        description="The current report of a week with editions: every figure that differs "
        "from the latest edition, with the reports that changed it.",
    )
