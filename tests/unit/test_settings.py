"""Settings: read at call time, frozen, and every one documented in the README."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from core.settings import Settings, load_settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_settings_come_from_env_when_built(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRUCE_HOME", str(tmp_path / "h"))
    monkeypatch.setenv("TRUCE_KAFKA_PORT", "19999")
    settings = load_settings()
    assert settings.home == (tmp_path / "h").resolve()
    assert settings.bootstrap_servers == "127.0.0.1:19999"
    assert settings.clickhouse_url == f"chdb://{tmp_path / 'h' / 'clickhouse'}"
    assert settings.keys_path == tmp_path / "h" / "keys.json"


def test_external_bootstrap_and_dsn_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUCE_KAFKA_BOOTSTRAP", "k1:9092,k2:9092")
    monkeypatch.setenv("TRUCE_CLICKHOUSE_DSN", "https://u:p@ch:8443/truce")
    settings = load_settings()
    assert settings.bootstrap_servers == "k1:9092,k2:9092"
    assert settings.clickhouse_url == "https://u:p@ch:8443/truce"


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(ValidationError):
        settings.kafka_port = 1  # type: ignore[misc]


def test_every_setting_is_documented_in_readme() -> None:
    text = README.read_text()
    missing = [n for n in Settings.model_fields if f"`TRUCE_{n.upper()}`" not in text]
    assert missing == []
