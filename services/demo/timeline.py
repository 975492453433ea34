"""The scenario's public facts (``timeline.yaml``), validated before anything is generated."""

from __future__ import annotations

from datetime import date, datetime
from importlib import resources
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.reference import areas


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Organisations(_Strict):
    deliveries: str
    taskforce: str
    monitors: dict[str, list[str]]
    spreadsheets: list[str] = []
    """Organisations that keep their reports in a spreadsheet: they import CSV files
    (POST /v1/reports/import) where the others post JSON batches."""


class KnownDelivery(_Strict):
    day: date
    areas: list[str]
    agency: str
    modality: Literal["convoy", "airdrop", "other"]
    status: Literal["completed", "partial", "blocked", "cancelled"]
    coverage: float = Field(ge=0, le=1)
    trucks: int | None = None


class AccessBacklog(_Strict):
    requests: int = Field(gt=0)
    approved: int = Field(ge=0)
    filed_from: date
    filed_to: date
    approved_after_munich: float = Field(ge=0, le=1)
    denied_after_munich: float = Field(ge=0, le=1)


class KnownDesignation(_Strict):
    id: str
    area: str
    party: Literal["isil", "nusra"]
    from_: date = Field(alias="from")
    to: date | None = None
    filed: date
    retracted: date | None = None


class Burst(_Strict):
    day: date
    area: str
    reports: int = Field(gt=0)
    perpetrator: str
    category: str


class ViolationTraffic(_Strict):
    rates: dict[str, float]
    after_cessation: float = Field(gt=0, le=1)
    end_of_march: float = Field(gt=0, le=1)
    bursts: list[Burst]


class CoReporters(_Strict):
    """Cross-partner duplicates (synthetic): other partners in some areas also report a
    share of the events the area's monitor reports, a few minutes apart by their own
    account, with slightly different casualty counts."""

    share: float = Field(gt=0, le=1, description="Of an area's events, those a co-reporter files.")
    minutes: int = Field(gt=0, le=120, description="A co-reporter's time: up to this much later.")
    linked: float = Field(ge=0, le=1, description="Of such events, those the task force links.")
    partners: dict[str, list[str]]


class Blackout(_Strict):
    """Days (UTC) from which no report of any kind about an area reaches anyone."""

    area: str
    from_: date = Field(alias="from")
    to: date


class Timeline(_Strict):
    seed: int
    start: date
    end: date
    munich_statement: date
    cessation_starts: datetime
    report_week: str = Field(pattern=r"^\d{4}-W\d{2}$")
    organisations: Organisations
    deliveries: list[KnownDelivery]
    access_backlog: AccessBacklog
    designations: list[KnownDesignation]
    violations: ViolationTraffic
    duplicates: CoReporters
    blackouts: list[Blackout]

    @model_validator(mode="after")
    def _known_areas(self) -> Timeline:
        """Every area the timeline names must be in the reference data the API accepts."""
        known = areas()
        named = [a for d in self.deliveries for a in d.areas]
        named += [d.area for d in self.designations] + list(self.violations.rates)
        named += [a for codes in self.organisations.monitors.values() for a in codes]
        named += [b.area for b in self.violations.bursts]
        named += [a for codes in self.duplicates.partners.values() for a in codes]
        named += [b.area for b in self.blackouts]
        unknown = sorted(set(named) - set(known))
        if unknown:
            raise ValueError(f"areas not in the reference data: {unknown}")
        return self


def load_timeline() -> Timeline:
    text = resources.files("services.demo").joinpath("timeline.yaml").read_text("utf-8")
    return Timeline.model_validate(yaml.safe_load(text))
