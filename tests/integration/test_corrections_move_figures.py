"""CONTRACT section 6 on the real broker with four partitions and two stream workers: a
correction that moves a verification to another subject (in another partition) or changes
a report's kind moves every figure with it, and a task-force key files no field report."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka.partitioner import murmur2

from core.keys import KeyStore, Role
from core.settings import Settings
from schemas import parties
from services.runtime.topics import ensure_all_topics
from tests.conftest import isolated_settings
from tests.support.reference import weekly_metrics
from tests.support.services import running_module, service_env

pytestmark = pytest.mark.integration
PARTITIONS = 4
WEEK = "2016-W09"


def partition(key: str) -> int:
    return int(murmur2(key.encode()) & 0x7FFFFFFF) % PARTITIONS


def ids_in_distinct_partitions(prefix: str, count: int) -> list[str]:
    """Report ids that land in ``count`` different partitions of the reports topic."""
    found: dict[int, str] = {}
    n = 0
    while len(found) < count:
        rid = f"{prefix}-{n}"
        found.setdefault(partition(rid), rid)
        n += 1
    return list(found.values())


def violation(rid: str, revision: int = 1, **fields: Any) -> dict[str, Any]:
    return {
        "report_id": rid, "revision": revision, "kind": "violation",
        "occurred_at": "2016-03-01T10:00:00Z", "area": "madaya", "perpetrator": "gos",
        "target": "civilians", "category": "shelling", "source": "witness",
        "confidence": "high", "killed": 1, **fields,
    }  # fmt: skip


def verification(rid: str, subject: str, revision: int = 1) -> dict[str, Any]:
    return {
        "report_id": rid, "revision": revision, "kind": "verification",
        "occurred_at": "2016-03-02T10:00:00Z", "subject": subject, "status": "verified",
    }  # fmt: skip


def expected(accepted: list[tuple[dict[str, Any], str]]) -> dict[Any, Any]:
    log = [{"report": r, "org": org, "content_hash": str(i)} for i, (r, org) in enumerate(accepted)]
    designated = {code for code, party in parties().items() if party.designated}
    compliance, _ = weekly_metrics(log, designated)
    return {k: v for k, v in compliance.items() if v["violations"] + v["violations_exempt"]}


def weekly(client: httpx.Client, url: str) -> dict[Any, Any]:
    rows = client.get(f"{url}/v1/metrics/weekly", params={"week": WEEK}).json()["rows"]
    return {
        (WEEK, r["area"], r["party"]): {k: v for k, v in r.items() if k not in ("area", "party")}
        for r in rows
    }


def test_moved_subject_and_changed_kind_move_their_figures(
    broker_settings: Settings, tmp_path: Path
) -> None:
    settings = isolated_settings(
        tmp_path / "home", kafka_bootstrap=broker_settings.bootstrap_servers,
        topic_prefix=f"t{uuid.uuid4().hex[:8]}.", kafka_partitions=PARTITIONS,
    )  # fmt: skip
    ensure_all_topics(settings)
    store = KeyStore(settings)
    sarc = store.create("sarc-1", Role.PARTNER, "sarc")
    taskforce = store.create("tf-1", Role.TASKFORCE)
    monitor = store.create("monitor-1", Role.MONITOR)
    a, b, v = ids_in_distinct_partitions(uuid.uuid4().hex[:6], 3)
    x = next(r for r in ids_in_distinct_partitions(f"x{uuid.uuid4().hex[:6]}", PARTITIONS)
             if partition(r) not in (partition(a), partition(b)))  # fmt: skip
    steps: list[tuple[dict[str, Any], str, str]] = [
        (violation(a), sarc, "sarc"),
        (violation(b), sarc, "sarc"),
        (violation(v, area="daraya"), sarc, "sarc"),
        (verification(x, a), taskforce, "taskforce"),
        (verification(x, b, revision=2), taskforce, "taskforce"),  # the subject moves
        # the violation is corrected into a delivery: it stops counting as a violation
        ({"report_id": v, "revision": 2, "kind": "delivery", "occurred_at": "2016-03-01T10:00:00Z",
          "area": "daraya", "agency": "WFP", "modality": "convoy", "status": "completed",
          "beneficiaries": 40}, sarc, "sarc"),
    ]  # fmt: skip
    env = service_env(settings)
    logs = tmp_path / "logs"
    second = {
        **env,
        "TRUCE_STREAMS_PORT": str(settings.streams_port + 1),
        "TRUCE_STREAMS_WORKER": "1",
    }
    with (
        running_module("services.ingest", env, f"{settings.ingest_url}/readyz", logs / "i.log"),
        running_module("services.store", env, f"{settings.query_url}/readyz", logs / "s.log"),
        running_module("streams", env, f"{settings.streams_url}/readyz", logs / "w1.log"),
        running_module(
            "streams", second, settings.streams_worker_url(1) + "/readyz", logs / "w2.log",
            timeout_s=120,
        ),
        httpx.Client(timeout=30, headers={"Authorization": f"Bearer {monitor}"}) as reader,
    ):  # fmt: skip
        accepted: list[tuple[dict[str, Any], str]] = []
        for report, key, org in steps:
            auth = {"Authorization": f"Bearer {key}"}
            response = httpx.post(
                f"{settings.ingest_url}/v1/reports", json=report, headers=auth, timeout=30
            )
            assert response.status_code == 202, response.text
            accepted.append((report, org))
        refused = httpx.post(
            f"{settings.ingest_url}/v1/reports", json=violation(f"tf-{uuid.uuid4().hex[:6]}"),
            headers={"Authorization": f"Bearer {taskforce}"}, timeout=30,
        )  # fmt: skip
        assert refused.status_code == 403
        want = expected(accepted)
        assert sum(row["violations_verified"] for row in want.values()) == 1
        deadline = time.monotonic() + 120
        got = weekly(reader, settings.query_url)
        while got != want and time.monotonic() < deadline:
            time.sleep(1)
            got = weekly(reader, settings.query_url)
        assert got == want
        states = {
            rid: reader.get(f"{settings.query_url}/v1/reports/{rid}").json() for rid in (a, b, v)
        }
        assert states[a]["classification"]["verification"] == "unverified"
        assert states[b]["classification"]["verification"] == "verified"
        assert states[v]["current"]["kind"] == "delivery"
        verify = reader.get(f"{settings.query_url}/v1/verify", params={"week": WEEK}).json()
        assert verify["ok"], verify["differences"]
