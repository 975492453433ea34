"""The shapes of the query API's answers (CONTRACT 3 and 4), for its OpenAPI document and
for FastAPI to check every answer against. The weekly rows are made from the figure sets
(schemas/figures.py), so a figure added there is documented here too."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, create_model

from schemas.figures import ACCESS, COMPLIANCE, FigureSet


class _Open(BaseModel):
    """Additive changes (new fields) stay valid answers (CONTRACT: additive is fine)."""

    model_config = ConfigDict(extra="allow")


def _row_model(name: str, figures: FigureSet) -> type[BaseModel]:
    fields: dict[str, Any] = {key: (str, ...) for key in figures.keys}
    fields.update({figure: (int, ...) for figure in figures.names})
    return create_model(name, __base__=_Open, **fields)


ComplianceRow = _row_model("ComplianceRow", COMPLIANCE)
AccessRow = _row_model("AccessRow", ACCESS)


class WeeklyMetrics(_Open):
    week: str
    rows: list[ComplianceRow]  # type: ignore[valid-type]


class AccessMetrics(_Open):
    week: str
    rows: list[AccessRow]  # type: ignore[valid-type]


class AlertView(_Open):
    fingerprint: str
    rule: str
    area: str
    party: str
    window: str
    state: str
    severity: str
    summary: str
    value: float
    threshold: float
    starts_at: str
    updated_at: str
    version: int
    report_ids: list[str]


class ReportRow(_Open):
    report_id: str
    kind: str
    revision: int
    org: str
    occurred_at: str
    received_at: str
    week: str
    area: str
    party: str
    killed: int
    injured: int
    beneficiaries: int
    exempt: bool
    verification: str
    retracted: bool


class ReportPage(_Open):
    total: int
    limit: int
    offset: int
    reports: list[ReportRow]


class Revision(_Open):
    revision: int
    org: str
    key_name: str
    received_at: str
    content_hash: str
    report: dict[str, Any]


class Classification(_Open):
    week: str
    counts: bool
    exempt: bool
    exempt_reason: str
    verification: str


class ReportHistory(_Open):
    report_id: str
    owner: str
    revisions: list[Revision]
    current: dict[str, Any] | None
    classification: Classification | None


class Verification(_Open):
    weeks: list[str]
    ok: bool
    differences: list[dict[str, Any]]
    misclassified: list[dict[str, Any]]
    misclassified_total: int
