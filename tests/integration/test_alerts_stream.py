"""Spike alerts on the real broker: a burst of violations in one area, sent through the
ingest API, raises exactly one firing alert; retracting the burst resolves it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def ingest_and_stream(settings: Settings, logs: Path) -> Iterator[None]:
    """The real ingest API and stream worker on the settings' topics."""
    env = service_env(settings)
    with (
        running_module("services.ingest", env, f"{settings.ingest_url}/readyz", logs / "i.log"),
        running_module("streams", env, f"{settings.streams_url}/readyz", logs / "s.log"),
    ):
        yield


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
    with ingest_and_stream(settings, tmp_path):
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


def test_a_silent_area_raises_a_reporting_gap_and_a_late_report_resolves_it(
    broker_settings: Settings, tmp_path: Path
) -> None:
    """streams/rules.yaml's reporting_gap (5 days, usual reporters from 3 reports in 28
    days) in event time: Douma's partner reports daily until 5 February, reports from
    Madaya move the clock on to the 14th, and a late Douma report of the 13th closes it.
    One partition: an area is judged in a batch of its own partition of the folded topic
    (streams/app.py), so with two areas only, both must share it."""
    settings = isolated_settings(
        tmp_path / "home", kafka_bootstrap=broker_settings.bootstrap_servers,
        topic_prefix=f"t{uuid.uuid4().hex[:8]}.", kafka_partitions=1,
    )  # fmt: skip
    ensure_all_topics(settings)
    keys = KeyStore(settings)
    douma = {"Authorization": f"Bearer {keys.create('sarc-1', Role.PARTNER, 'sarc')}"}
    madaya = {"Authorization": f"Bearer {keys.create('wfp-1', Role.PARTNER, 'wfp')}"}
    before = [
        violation(f"d{d}", area="douma", occurred_at=f"2016-02-{d:02d}T09:00:00Z")
        for d in range(1, 6)
    ]
    elsewhere = [
        violation(f"m{d}", area="madaya", occurred_at=f"2016-02-{d:02d}T12:00:00Z")
        for d in range(1, 15)
    ]
    with ingest_and_stream(settings, tmp_path):
        url = f"{settings.ingest_url}/v1/reports/batch"
        assert httpx.post(url, json={"reports": before}, headers=douma).status_code == 202
        for report in elsewhere:  # day by day, as the clock would move
            assert httpx.post(url, json={"reports": [report]}, headers=madaya).status_code == 202
        firing = wait_for(
            "a reporting gap at 9 days",
            lambda: [a for a in alerts(settings, "reporting_gap", "douma") if a.value == 9],
        )
        assert alerts(settings, "reporting_gap", "madaya") == []
        gap = alerts(settings, "reporting_gap", "douma")
        assert len({a.fingerprint for a in gap}) == 1
        assert gap[0].state == "firing"
        # the worker judges once per batch, at the batch's clock: from 5 days (10 February)
        assert 5 <= gap[0].value <= 9
        assert gap[0].starts_at.date().isoformat() == f"2016-02-{5 + int(gap[0].value):02d}"
        assert "usual reporters: sarc" in firing[-1].summary
        late = violation("d13", area="douma", occurred_at="2016-02-13T09:00:00Z")
        assert httpx.post(url, json={"reports": [late]}, headers=douma).status_code == 202
        resolved = wait_for(
            "the gap to close",
            lambda: [
                a for a in alerts(settings, "reporting_gap", "douma") if a.state == "resolved"
            ],
        )
    assert resolved[-1].fingerprint == firing[-1].fingerprint
