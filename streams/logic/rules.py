"""Parameters of the spike rules (``streams/rules.yaml``), validated by frozen models.

The YAML file is the single source of the values: every key is required and unknown
keys are refused, so a typo is an error at start-up rather than a silently ignored
setting. ``load_rules`` raises ``pydantic.ValidationError`` on a bad value and
``ValueError`` when the file is not a YAML mapping.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_PATH = Path(__file__).parents[1] / "rules.yaml"
"""``streams/rules.yaml``, shipped as package data beside the ``streams`` package."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SeverityLadder(_Frozen):
    """Severity from ``value / threshold`` (1 at the firing point): minor below
    ``moderate``, then moderate, severe and extreme from each ratio upwards."""

    moderate: float = Field(gt=1, description="Ratio from which a firing alert is moderate.")
    severe: float = Field(gt=1, description="Ratio from which a firing alert is severe.")
    extreme: float = Field(gt=1, description="Ratio from which a firing alert is extreme.")

    @model_validator(mode="after")
    def _increasing(self) -> Self:
        if not self.moderate < self.severe < self.extreme:
            raise ValueError(
                "severity ratios must be strictly increasing: "
                f"moderate ({self.moderate}) < severe ({self.severe}) < extreme ({self.extreme})"
            )
        return self


class ViolationSpikeRule(_Frozen):
    """Too many non-exempt violations in an area for its own recent past (Poisson)."""

    enabled: bool
    baseline_days: int = Field(
        ge=7, le=366, description="Days before the window forming the area's baseline rate."
    )
    window_days: int = Field(
        ge=1, le=31, description="Evaluation window in days, ending on the evaluation day."
    )
    min_count: int = Field(ge=1, description="Never fire on fewer events in the window.")
    p_value: float = Field(
        gt=0, lt=0.5, description="Fire when P(X >= observed | lambda) is below this."
    )
    min_baseline_rate: float = Field(
        gt=0, description="Floor of the baseline rate (events per day); must be positive."
    )
    severity: SeverityLadder

    @model_validator(mode="after")
    def _baseline_longer_than_window(self) -> Self:
        if self.baseline_days < self.window_days:
            raise ValueError(
                f"baseline_days ({self.baseline_days}) must be at least "
                f"window_days ({self.window_days})"
            )
        return self


class DeliveryGapRule(_Frozen):
    """A besieged area without a completed delivery for ``days`` days."""

    enabled: bool
    days: int = Field(ge=1, le=366, description="Days without a completed delivery.")
    severity: SeverityLadder


class StaleRequestRule(_Frozen):
    """An access request still ``submitted`` ``days`` days after its submission."""

    enabled: bool
    days: int = Field(ge=1, le=366, description="Days an access request may stay submitted.")
    severity: SeverityLadder


class ReportingGapRule(_Frozen):
    """An area whose usual reporters fell silent: no field report from it for ``days``
    days after organisations reported from it regularly (communications cut, a siege
    tightening). See ``streams.logic.spikes.reporting_gap``."""

    enabled: bool
    days: int = Field(ge=1, le=366, description="Days without any field report from the area.")
    lookback_days: int = Field(
        ge=1, le=366, description="Days up to its last report that define its usual reporters."
    )
    min_reports: int = Field(
        ge=1, description="Reports in those days that make an organisation a usual reporter."
    )
    severity: SeverityLadder


class RuleConfig(_Frozen):
    """The whole ``rules.yaml``."""

    version: Literal[1]
    violation_spike: ViolationSpikeRule
    delivery_gap: DeliveryGapRule
    stale_access_request: StaleRequestRule
    reporting_gap: ReportingGapRule


def parse_rules(data: Any, source: str = "<rules>") -> RuleConfig:
    """Validate already-parsed YAML (a mapping) into a :class:`RuleConfig`."""
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a YAML mapping, got {type(data).__name__}")
    return RuleConfig.model_validate(data)


def load_rules(path: Path | None = None) -> RuleConfig:
    """Read and validate the rules file (default: ``streams/rules.yaml``)."""
    target = DEFAULT_PATH if path is None else path
    try:
        data = yaml.safe_load(target.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"{target}: not valid YAML: {exc}") from exc
    return parse_rules(data, str(target))
