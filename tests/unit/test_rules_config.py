"""The spike-rule configuration: the shipped file loads, bad values are refused clearly."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from streams.logic.rules import DEFAULT_PATH, RuleConfig, load_rules, parse_rules


def shipped() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(DEFAULT_PATH.read_text(encoding="utf-8"))
    return data


def write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_shipped_file_loads_with_documented_values() -> None:
    cfg = load_rules()
    assert isinstance(cfg, RuleConfig)
    assert Path(__file__).parents[2] / "streams" / "rules.yaml" == DEFAULT_PATH
    spike = cfg.violation_spike
    assert (spike.baseline_days, spike.window_days, spike.min_count) == (28, 1, 5)
    assert spike.p_value == 0.001
    assert spike.min_baseline_rate == 0.25
    assert (cfg.delivery_gap.days, cfg.stale_access_request.days) == (14, 10)
    for ladder in (spike.severity, cfg.delivery_gap.severity, cfg.stale_access_request.severity):
        assert 1 < ladder.moderate < ladder.severe < ladder.extreme


def test_explicit_path_is_read(tmp_path: Path) -> None:
    data = shipped()
    data["delivery_gap"]["days"] = 21
    assert load_rules(write(tmp_path, data)).delivery_gap.days == 21


def test_config_is_frozen() -> None:
    cfg = load_rules()
    with pytest.raises(ValidationError):
        cfg.violation_spike.min_count = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("violation_spike", "p_value", 0, "greater than 0"),
        ("violation_spike", "p_value", 1.5, "less than 0.5"),
        ("violation_spike", "min_baseline_rate", 0, "greater than 0"),
        ("violation_spike", "min_count", 0, "greater than or equal to 1"),
        ("violation_spike", "window_days", 0, "greater than or equal to 1"),
        ("violation_spike", "baseline_days", "many", "valid integer"),
        ("violation_spike", "window_days", 30, "must be at least window_days"),
        ("delivery_gap", "days", -3, "greater than or equal to 1"),
        ("stale_access_request", "days", 0, "greater than or equal to 1"),
        ("stale_access_request", "dayz", 10, "Extra inputs are not permitted"),
        ("delivery_gap", "enabled", "perhaps", "valid boolean"),
    ],
)
def test_bad_values_are_refused(
    tmp_path: Path, section: str, key: str, value: Any, message: str
) -> None:
    data = shipped()
    data[section][key] = value
    with pytest.raises(ValidationError) as caught:
        load_rules(write(tmp_path, data))
    assert message in str(caught.value)
    assert section in str(caught.value)  # the error names where the bad value is


def test_severity_ladder_must_increase() -> None:
    data = shipped()
    data["violation_spike"]["severity"] = {"moderate": 2.0, "severe": 1.5, "extreme": 3.0}
    with pytest.raises(ValidationError, match="strictly increasing"):
        parse_rules(data)
    data["violation_spike"]["severity"] = {"moderate": 1.0, "severe": 1.5, "extreme": 3.0}
    with pytest.raises(ValidationError, match="greater than 1"):
        parse_rules(data)


def test_missing_sections_and_keys_are_refused() -> None:
    data = shipped()
    del data["delivery_gap"]
    with pytest.raises(ValidationError, match="delivery_gap"):
        parse_rules(data)
    data = shipped()
    del data["violation_spike"]["min_count"]
    with pytest.raises(ValidationError, match="min_count"):
        parse_rules(data)


def test_unknown_version_is_refused() -> None:
    data = copy.deepcopy(shipped())
    data["version"] = 2
    with pytest.raises(ValidationError, match="version"):
        parse_rules(data)


def test_not_a_mapping_or_not_yaml(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("- just\n- a list\n", encoding="utf-8")
    with pytest.raises(ValueError, match="expected a YAML mapping"):
        load_rules(path)
    path.write_text("violation_spike: [unclosed\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_rules(path)
    path.write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match="expected a YAML mapping"):
        load_rules(path)
