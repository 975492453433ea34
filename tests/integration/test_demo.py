"""`truce demo` and `truce rebuild` end to end (issue 7), on the session's real broker and
embedded ClickHouse, through the real CLI: the demo's printed figures equal the
scenario's own expectation, a second demo changes nothing, a rebuild from the log leaves
every metric unchanged and `truce verify` passes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from core.settings import Settings
from schemas import decode_envelope, topic_names
from services.demo.expectation import Headline, expected_metrics, headline
from services.demo.openrosa import OpenRosaClient
from services.demo.run import OPENROSA_SHARE
from services.demo.scenario import build_scenario
from services.runtime import control
from services.verify import operator_key
from tests.conftest import isolated_settings
from tests.support.services import read_topic

pytestmark = pytest.mark.integration

SCALE = "0.1"


def truce(settings: Settings, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        env={**os.environ, **settings.as_env(), "COLUMNS": "160"},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def printed_figure(stdout: str, label: str) -> tuple[int, int]:
    """(published, expected) from the demo's headline table row ``label``."""
    match = re.search(rf"{re.escape(label)}\s*│\s*([\d,]+)\s*│\s*([\d,]+)", stdout)
    assert match, f"no {label!r} row in:\n{stdout}"
    return int(match[1].replace(",", "")), int(match[2].replace(",", ""))


def assert_headline(stdout: str, want: Headline) -> None:
    rows = {
        "violations (not exempt)": want.violations,
        "of which verified": want.violations_verified,
        "exempt (designated groups)": want.violations_exempt,
        "killed": want.killed,
        "deliveries completed": want.deliveries_completed,
        "beneficiaries reached": want.beneficiaries,
        "access requests approved to date": want.requests_approved_to_date,
        "access requests to date": want.requests_to_date,
    }
    for label, value in rows.items():
        assert printed_figure(stdout, label) == (value, value), label


def assert_alert_histories_consistent(values: list[bytes]) -> None:
    """Per fingerprint, in topic order: versions grow, and a firing alert is updated or
    resolved before another episode of it starts (one state per alert, not one per
    partition of the worker)."""
    last: dict[str, dict[str, object]] = {}
    for value in values:
        alert = json.loads(value)
        before = last.get(alert["fingerprint"])
        if before is not None:
            assert alert["version"] > before["version"], (before, alert)
            if before["state"] == "firing":
                assert alert["starts_at"] == before["starts_at"], (before, alert)
        last[alert["fingerprint"]] = alert
    assert last, "the demo raised alerts"


def _api(settings: Settings) -> httpx.Client:
    key = operator_key(settings)  # an admin key under TRUCE_HOME, as the CLI's verbs use
    return httpx.Client(
        base_url=settings.query_url, headers={"Authorization": f"Bearer {key}"}, timeout=60
    )


def published_editions(settings: Settings) -> dict[str, list[dict[str, object]]]:
    with _api(settings) as api:
        return {
            week: api.get("/v1/editions", params={"week": week}).json()
            for week in ("2016-W08", "2016-W09")
        }


def edition_bytes(settings: Settings, week: str = "2016-W09") -> dict[str, bytes]:
    """Edition 1 of the week in every format, as served."""
    with _api(settings) as api:
        found = {}
        for fmt in ("json", "md", "html", "csv", "hxl"):
            response = api.get(f"/v1/weekly-report/{week}", params={"edition": 1, "format": fmt})
            assert response.status_code == 200, response.text
            found[fmt] = response.content
        return found


@pytest.fixture
def demo_settings(tmp_path: Path, broker_settings: Settings) -> Settings:
    return isolated_settings(
        tmp_path / "home",
        kafka_bootstrap=broker_settings.bootstrap_servers,
        topic_prefix=f"demo{uuid.uuid4().hex[:8]}.",
    )


@pytest.mark.timeout(1200)  # two demos (each publishing two editions) and a rebuild
def test_demo_then_rebuild(demo_settings: Settings, tmp_path: Path) -> None:
    scenario = build_scenario(float(SCALE))
    want = headline(expected_metrics(scenario.latest_revisions(), scenario.owners()), "2016-W09")
    assert want.violations > 0
    assert want.violations_exempt > 0
    reports = tmp_path / "reports"
    try:
        first = truce(
            demo_settings, "demo", "--scale", SCALE, "--keep-running", "--out", str(reports)
        )
        assert first.returncode == 0, first.stdout + first.stderr
        assert_headline(first.stdout, want)
        assert "every published weekly figure equals the scenario's own count" in first.stdout
        assert f"{demo_settings.query_url}/dashboard#key=" in first.stdout
        accepted = re.search(r"([\d,]+) revisions accepted, ([\d,]+) duplicates", first.stdout)
        assert accepted, first.stdout
        assert int(accepted[1].replace(",", "")) == scenario.distinct_revisions
        # a share of the first field reports came as from phones, through OpenRosa
        phone = OpenRosaClient(httpx.Client(), OPENROSA_SHARE)
        by_phone = {r["report_id"] for s in scenario.submissions for r in s.reports
                    if phone.takes(r)}  # fmt: skip
        records = read_topic(demo_settings.bootstrap_servers,
                             topic_names(demo_settings.topic_prefix).reports)  # fmt: skip
        envelopes = [decode_envelope(value) for value in records]
        via = {e.report.report_id for e in envelopes if e.instance_id is not None}
        assert len(by_phone) > 10
        assert via == by_phone
        for name in ("md", "html", "csv", "hxl.csv", "json"):
            assert (reports / f"truce-weekly-2016-W09.{name}").stat().st_size > 0
        report = json.loads((reports / "truce-weekly-2016-W09.json").read_text())
        assert report["violations"]["total"]["violations"] == want.violations
        assert report["violations"]["total"]["verified"] == want.violations_verified
        assert report["violations"]["total"]["killed"] == want.killed
        assert report["violations"]["exempt"] == want.violations_exempt
        assert len(report["exempt"]) == want.violations_exempt
        assert report["access"]["cumulative"]["approved"] == want.requests_approved_to_date
        assert report["access"]["cumulative"]["submitted"] == want.requests_to_date
        hxl = (reports / "truce-weekly-2016-W09.hxl.csv").read_text().splitlines()
        assert hxl[1].startswith("#meta+week,#date+start,#date+end")  # the hashtag row

        # W08 and W09 editions were published before the late reports were replayed,
        # and the printed W09 report restates what those changed
        assert "published 2016-W08 edition 1" in first.stdout
        assert "published 2016-W09 edition 1" in first.stdout
        assert "Restatements since edition 1" in first.stdout
        assert report["restated_against"] == 1
        assert report["restatements"], "the demo's late reports change W09's figures"
        reasons = {c["reason"] for x in report["restatements"] for c in x["because"]}
        assert "late" in reasons, reasons
        assert report["data_quality"]["edition"] == 1
        assert report["data_quality"]["late_reports"] > 0
        editions = published_editions(demo_settings)
        assert [e["edition"] for e in editions["2016-W08"]] == [1]
        assert [e["edition"] for e in editions["2016-W09"]] == [1]
        frozen = edition_bytes(demo_settings)
        audited = truce(demo_settings, "audit", "--week", "2016-W09", "--edition", "1")
        assert audited.returncode == 0, audited.stdout + audited.stderr
        assert (
            json.loads(frozen["json"])["edition"]["log_head"] == editions["2016-W09"][0]["log_head"]
        )

        again = truce(
            demo_settings, "demo", "--scale", SCALE, "--keep-running", "--out", str(reports)
        )
        assert again.returncode == 0, again.stdout + again.stderr
        assert f"0 revisions accepted, {scenario.revisions:,} duplicates" in again.stdout
        assert_headline(again.stdout, want)
        assert "2016-W09 has an edition already" in again.stdout
        assert published_editions(demo_settings) == editions

        control.wait_until_idle(demo_settings, timeout_s=120)  # the alerter told everything
        alerts = topic_names(demo_settings.topic_prefix).alerts
        assert_alert_histories_consistent(read_topic(demo_settings.bootstrap_servers, alerts))
        deliveries = topic_names(demo_settings.topic_prefix).deliveries
        told = read_topic(demo_settings.bootstrap_servers, deliveries)
        assert told, "the alerter logged the demo's alerts"

        rebuilt = truce(demo_settings, "rebuild")
        assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
        status = json.loads(truce(demo_settings, "status", "--json").stdout)
        assert status["ready"] is True, "the stack that ran before the rebuild runs after it"
        control.wait_until_idle(demo_settings, timeout_s=120)
        time.sleep(3)  # past the alerter's group_wait
        assert read_topic(demo_settings.bootstrap_servers, deliveries) == told, (
            "re-derived alerts were notified again"
        )
        assert f"replayed {scenario.distinct_revisions:,} report revisions" in rebuilt.stdout
        assert "every metric equals what it was before, and truce verify agrees" in rebuilt.stdout

        verified = truce(demo_settings, "verify")
        assert verified.returncode == 0, verified.stdout + verified.stderr
        # the editions came back from their topic byte for byte
        assert published_editions(demo_settings) == editions
        assert edition_bytes(demo_settings) == frozen
    finally:
        truce(demo_settings, "down")
