"""Spike alerts on the real broker: a burst of violations in one area, sent through the
ingest API, raises exactly one firing alert; retracting the burst resolves it."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from core.keys import KeyStore, Role
from core.settings import Settings
from schemas import Alert, topic_names
from services.runtime.topics import ensure_all_topics
from tests.conftest import isolated_settings
from tests.support.ingest import violation
from tests.support.services import read_topic, running_module, service_env

pytestmark = pytest.mark.integration


def alerts(settings: Settings, rule: str, area: str) -> list[Alert]:
    values = read_topic(settings.bootstrap_servers, topic_names(settings.topic_prefix).alerts)
    found = [Alert.model_validate(orjson.loads(v)) for v in values]
    return [a for a in found if a.rule == rule and a.area == area]


def wait_for(what: str, check: Any, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def test_burst_fires_once_and_retraction_resolves(
    broker_settings: Settings, tmp_path: Path
) -> None:
    settings = isolated_settings(
        tmp_path / "home", kafka_bootstrap=broker_settings.bootstrap_servers,
        topic_prefix=f"t{uuid.uuid4().hex[:8]}.",
    )  # fmt: skip
    ensure_all_topics(settings)
    key = KeyStore(settings).create("sarc-1", Role.PARTNER, "sarc")
    headers = {"Authorization": f"Bearer {key}"}
    quiet = [  # one violation every few days in Daraya during February
        violation(f"q{d}", area="daraya", occurred_at=f"2016-02-{d:02d}T09:00:00Z")
        for d in range(1, 27, 5)
    ]
    burst = [
        violation(f"b{i}", area="daraya", occurred_at=f"2016-03-01T{8 + i:02d}:00:00Z")
        for i in range(9)
    ]
    env = service_env(settings)
    with (
        running_module("services.ingest", env, f"{settings.ingest_url}/readyz", tmp_path / "i.log"),
        running_module("streams", env, f"{settings.streams_url}/readyz", tmp_path / "s.log"),
    ):
        url = f"{settings.ingest_url}/v1/reports/batch"
        assert httpx.post(url, json={"reports": quiet}, headers=headers).status_code == 202
        assert httpx.post(url, json={"reports": burst}, headers=headers).status_code == 202
        firing = wait_for(
            "a firing spike alert",
            lambda: [
                a for a in alerts(settings, "violation_spike", "daraya") if a.state == "firing"
            ],
        )
        time.sleep(3)  # nothing else should come while it stays firing with the same value
        spikes = alerts(settings, "violation_spike", "daraya")
        assert len({a.fingerprint for a in spikes}) == 1
        assert [a.state for a in spikes].count("firing") >= 1
        alert = firing[-1]
        assert alert.value >= 5
        assert set(alert.report_ids) <= {b["report_id"] for b in burst}
        assert len(alert.report_ids) == alert.value
        retractions = [{**b, "revision": 2, "retracted": True} for b in burst]
        assert httpx.post(url, json={"reports": retractions}, headers=headers).status_code == 202
        resolved = wait_for(
            "the alert to resolve",
            lambda: [
                a for a in alerts(settings, "violation_spike", "daraya") if a.state == "resolved"
            ],
        )
    assert resolved[-1].fingerprint == alert.fingerprint
    assert resolved[-1].version > alert.version
