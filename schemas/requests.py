"""Request bodies other than a single report, for the JSON Schema and OpenAPI documents.

Ingest validates batch items one at a time (errors are reported per index), so this model
documents the shape rather than being the validator of record."""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from schemas.reports import Report

MAX_BATCH: Final = 1000


class BatchRequest(BaseModel):
    """``POST /v1/reports/batch``: 1 to 1,000 reports, judged as a whole."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reports: list[Report] = Field(min_length=1, max_length=MAX_BATCH)
