"""Editions of the weekly report (CONTRACT section 7): the request, the answer and the
record kept on the editions topic, which is the edition's system of record.

The record carries every format's frozen rendering, so an edition is served byte for byte
from the log whatever happens to the projections (``truce rebuild`` drops them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

WEEK_PATTERN = r"^\d{4}-W\d{2}$"


class EditionRequest(BaseModel):
    """The body of POST /v1/editions."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    week: str = Field(pattern=WEEK_PATTERN, description="ISO 8601 week, YYYY-Www.")


class EditionSummary(BaseModel):
    """The 201 answer of POST /v1/editions and an item of GET /v1/editions."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    week: str = Field(pattern=WEEK_PATTERN)
    edition: int = Field(ge=1)
    published_at: datetime
    log_head: dict[str, Any] | None = Field(
        description="The signed tree head pinned (CONTRACT section 8)."
    )
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the JSON format.")


class EditionRecord(EditionSummary):
    """One edition as written to the editions topic (keyed by week)."""

    log_position: dict[str, int] = Field(
        description="Reports topic partition -> end offset (exclusive) it was counted from."
    )
    renderings: dict[str, str] = Field(description="Format name -> the frozen document.")

    def summary(self) -> EditionSummary:
        return EditionSummary(**self.model_dump(include=set(EditionSummary.model_fields)))
