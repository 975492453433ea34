"""End to end on the real broker and the real ClickHouse engine: a few thousand reports
through the ingest API, the stream worker killed with SIGKILL in the middle of processing
and restarted, late designations; the published metrics must equal the independent
reference fold — no double counting, nothing missing."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.kafka import consumer_lag
from core.keys import KeyStore, Role
from core.settings import Settings
from schemas import group_names, parties, topic_names
from services.runtime.topics import ensure_all_topics
from tests.conftest import isolated_settings
from tests.support.reference import weekly_metrics
from tests.support.scenario import partner_reports, taskforce_reports
from tests.support.services import running_module, service_env

pytestmark = pytest.mark.integration

COMPLIANCE = (
    "violations", "violations_verified", "violations_exempt", "killed", "injured",
    "incidents", "incidents_exempt", "incidents_corroborated", "incident_killed",
    "incident_injured",
)  # fmt: skip
ACCESS = (
    "deliveries_completed", "deliveries_partial", "deliveries_blocked", "deliveries_cancelled",
    "beneficiaries", "requests_submitted", "requests_approved", "requests_denied",
    "requests_withdrawn",
)  # fmt: skip


def post_all(url: str, key: str, reports: list[dict[str, Any]], size: int = 200) -> None:
    with httpx.Client(timeout=60, headers={"Authorization": f"Bearer {key}"}) as client:
        for start in range(0, len(reports), size):
            batch = reports[start : start + size]
            response = client.post(f"{url}/v1/reports/batch", json={"reports": batch})
            assert response.status_code == 202, response.text


def streamed(url: str, key: str, weeks: set[str]) -> tuple[dict[Any, Any], dict[Any, Any]]:
    compliance: dict[Any, Any] = {}
    access: dict[Any, Any] = {}
    with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {key}"}) as client:
        for week in sorted(weeks):
            for row in client.get(f"{url}/v1/metrics/weekly", params={"week": week}).json()["rows"]:
                compliance[(week, row["area"], row["party"])] = {k: row[k] for k in COMPLIANCE}
            for row in client.get(f"{url}/v1/metrics/access", params={"week": week}).json()["rows"]:
                access[(week, row["area"])] = {k: row[k] for k in ACCESS}
    return compliance, access


def expected(accepted: list[tuple[dict[str, Any], str]]) -> tuple[dict[Any, Any], dict[Any, Any]]:
    log = [{"report": r, "org": org, "content_hash": ""} for r, org in accepted]
    for entry in log:
        entry["report"].setdefault("revision", 1)
    designated = {code for code, party in parties().items() if party.designated}
    compliance, access = weekly_metrics(log, designated)
    return (
        {k: v for k, v in compliance.items() if v["violations"] + v["violations_exempt"]},
        {k: v for k, v in access.items() if any(v.values())},
    )


def test_sigkill_of_the_worker_changes_no_number(broker_settings: Settings, tmp_path: Path) -> None:
    began = time.monotonic()  # the wait below ends before pytest's 300 s timeout
    settings = isolated_settings(
        tmp_path / "home", kafka_bootstrap=broker_settings.bootstrap_servers,
        topic_prefix=f"t{uuid.uuid4().hex[:8]}.",
    )  # fmt: skip
    ensure_all_topics(settings)
    names = topic_names(settings.topic_prefix)
    store = KeyStore(settings)
    keys = {
        "sarc": store.create("sarc-1", Role.PARTNER, "sarc"),
        "wfp": store.create("wfp-1", Role.PARTNER, "wfp"),
        "taskforce": store.create("tf-1", Role.TASKFORCE),
        "monitor": store.create("monitor-1", Role.MONITOR),
    }
    env = service_env(settings)
    rng = random.Random(20160227)
    reports = partner_reports(rng, 3000, "r")
    by_org: dict[str, list[dict[str, Any]]] = {"sarc": [], "wfp": []}
    for report in reports:
        org = "sarc" if zlib.crc32(report["report_id"].encode()) % 2 else "wfp"
        by_org[org].append(report)
    violation_ids = sorted({r["report_id"] for r in reports if r["kind"] == "violation"})
    late = taskforce_reports(rng, violation_ids, "tf")
    logs = tmp_path / "logs"
    ingest_ready = f"{settings.ingest_url}/readyz"
    streams_ready = f"{settings.streams_url}/readyz"
    with (
        running_module("services.ingest", env, ingest_ready, logs / "ingest.log"),
        running_module("services.store", env, f"{settings.query_url}/readyz", logs / "store.log"),
    ):
        with running_module("streams", env, streams_ready, logs / "streams-1.log") as worker:
            half = len(by_org["sarc"]) // 2
            post_all(settings.ingest_url, keys["sarc"], by_org["sarc"][:half])
            post_all(settings.ingest_url, keys["wfp"], by_org["wfp"])
            time.sleep(0.2)  # the worker is busy with the backlog (it keeps up within ~1 s)
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
        group = group_names(settings.topic_prefix).streams
        unprocessed = consumer_lag(settings.bootstrap_servers, group, [names.reports])
        assert unprocessed[names.reports] > 0, "the worker finished before it was killed"
        post_all(settings.ingest_url, keys["sarc"], by_org["sarc"][half:])
        with running_module("streams", env, streams_ready, logs / "streams-2.log", timeout_s=120):
            post_all(settings.ingest_url, keys["taskforce"], late)  # designations arrive last
            accepted = [(r, "sarc") for r in by_org["sarc"]] + [(r, "wfp") for r in by_org["wfp"]]
            accepted += [(r, "taskforce") for r in late]
            want = expected(accepted)
            weeks = {k[0] for k in want[0]} | {k[0] for k in want[1]}
            deadline = began + 240  # then the asserts below show what differs
            got = streamed(settings.query_url, keys["monitor"], weeks)
            while got != want and time.monotonic() < deadline:
                time.sleep(2)
                got = streamed(settings.query_url, keys["monitor"], weeks)
            assert got[0] == want[0]
            assert got[1] == want[1]
            verify = httpx.get(
                f"{settings.query_url}/v1/verify",
                headers={"Authorization": f"Bearer {keys['monitor']}"}, timeout=60,
            ).json()  # fmt: skip
            assert verify["ok"], verify["differences"][:5]
            assert set(verify["weeks"]) == weeks
            cli = subprocess.run(
                [sys.executable, "-m", "services.cli", "verify"], env={**os.environ, **env},
                capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
            assert cli.returncode == 0, cli.stderr
            assert f"verified {len(weeks)} week(s)" in cli.stdout
    assert any(v["violations_exempt"] for v in want[0].values())
    assert any(v["violations_verified"] for v in want[0].values())
