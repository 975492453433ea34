"""CONTRACT section 9 on the real broker (four partitions, two stream workers), the real
ingest, worker and store: two partners' reports of one shelling, linked by the task
force's incident (filed before them, in another partition), count as two violations but
one corroborated event; retracting the incident makes them two events again. Only the
task force files incidents, and a malformed one is refused with problem+json."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
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
AT = "2016-03-01T10:00:00Z"


def partition(key: str) -> int:
    return int(murmur2(key.encode()) & 0x7FFFFFFF) % PARTITIONS


def ids_in_distinct_partitions(prefix: str, count: int) -> list[str]:
    found: dict[int, str] = {}
    n = 0
    while len(found) < count:
        found.setdefault(partition(f"{prefix}-{n}"), f"{prefix}-{n}")
        n += 1
    return list(found.values())


def violation(rid: str) -> dict[str, Any]:
    return {
        "report_id": rid, "kind": "violation", "occurred_at": AT, "area": "madaya",
        "perpetrator": "gos", "target": "civilians", "category": "shelling",
        "source": "witness", "confidence": "high", "killed": 2, "injured": 3,
    }  # fmt: skip


def incident(rid: str, members: list[str], revision: int = 1, **fields: Any) -> dict[str, Any]:
    return {
        "report_id": rid, "revision": revision, "kind": "incident", "occurred_at": AT,
        "members": members, "area": "madaya", "perpetrator": "gos", "target": "civilians",
        "category": "shelling", "killed": 2, "injured": 3, **fields,
    }  # fmt: skip


def reference(accepted: list[tuple[dict[str, Any], str]]) -> dict[Any, Any]:
    log = [{"report": r, "org": org, "content_hash": str(i)} for i, (r, org) in enumerate(accepted)]
    designated = {code for code, party in parties().items() if party.designated}
    compliance, _ = weekly_metrics(log, designated)
    return {k[1:]: v for k, v in compliance.items() if k[0] == WEEK}


def weekly(client: httpx.Client, url: str) -> dict[Any, Any]:
    rows = client.get(f"{url}/v1/metrics/weekly", params={"week": WEEK}).json()["rows"]
    return {(r["area"], r["party"]): {k: v for k, v in r.items() if k not in ("area", "party")}
            for r in rows}  # fmt: skip


def report_events(client: httpx.Client, url: str, **query: str) -> dict[str, Any]:
    answer = client.get(f"{url}/v1/weekly-report/{WEEK}", params={"format": "json", **query})
    assert answer.status_code == 200, answer.text
    events: dict[str, Any] = answer.json()["incidents"]
    return events


def settle(read: Callable[[], dict[Any, Any]], want: dict[Any, Any]) -> dict[Any, Any]:
    deadline = time.monotonic() + 120
    got = read()
    while got != want and time.monotonic() < deadline:
        time.sleep(1)
        got = read()
    return got


def test_an_incident_counts_two_partners_reports_as_one_corroborated_event(
    broker_settings: Settings, tmp_path: Path
) -> None:
    settings = isolated_settings(
        tmp_path / "home", kafka_bootstrap=broker_settings.bootstrap_servers,
        topic_prefix=f"t{uuid.uuid4().hex[:8]}.", kafka_partitions=PARTITIONS,
    )  # fmt: skip
    ensure_all_topics(settings)
    store = KeyStore(settings)
    keys = {
        "sarc": store.create("sarc-1", Role.PARTNER, "sarc"),
        "wfp": store.create("wfp-1", Role.PARTNER, "wfp"),
        "taskforce": store.create("tf-1", Role.TASKFORCE),
    }
    monitor = store.create("monitor-1", Role.MONITOR)
    # the incident and its two members in three different partitions
    link, a, b = ids_in_distinct_partitions(uuid.uuid4().hex[:6], 3)
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

        def post(report: dict[str, Any], org: str) -> httpx.Response:
            response = httpx.post(
                f"{settings.ingest_url}/v1/reports", json=report, timeout=30,
                headers={"Authorization": f"Bearer {keys[org]}"},
            )  # fmt: skip
            if response.status_code == 202:
                accepted.append((report, org))
            return response

        # only the task force links reports; a malformed incident is refused clearly
        assert post(incident(f"p-{link}", [a, b]), "sarc").status_code == 403
        lone = post(incident(link, [a]), "taskforce")
        assert lone.status_code == 422
        assert lone.headers["content-type"].startswith("application/problem+json")
        assert [e["loc"][-1] for e in lone.json()["errors"]] == ["members"]
        # the incident arrives before its members
        for report, org in ((incident(link, [a, b]), "taskforce"), (violation(a), "sarc"),
                            (violation(b), "wfp")):  # fmt: skip
            assert post(report, org).status_code == 202

        def read() -> dict[Any, Any]:
            return weekly(reader, settings.query_url)

        linked = settle(read, reference(accepted))
        assert linked == reference(accepted)
        row = linked[("madaya", "gos")]
        assert (row["violations"], row["killed"], row["injured"]) == (2, 4, 6)
        assert (row["incidents"], row["incidents_corroborated"]) == (1, 1)
        assert (row["incident_killed"], row["incident_injured"]) == (2, 3)
        state = reader.get(f"{settings.query_url}/v1/verify", params={"week": WEEK}).json()
        assert state["ok"], state["differences"]
        assert state["misclassified_total"] == 0, state["misclassified"]
        # the weekly report's events section, from the stream and recounted from the log
        linked_at = datetime.now(UTC).isoformat()
        for query in ({}, {"as_of": linked_at}):
            events = report_events(reader, settings.query_url, **query)
            assert (events["total"]["reports"], events["total"]["events"]) == (2, 1), query
            assert events["total"]["corroborated_share"] == 1.0
            assert events["sources"] == [{"sources": 2, "events": 1}], query
        markdown = reader.get(f"{settings.query_url}/v1/weekly-report/{WEEK}",
                              params={"format": "md"}).text  # fmt: skip
        assert "## Events: incidents and sources" in markdown
        assert "Sources per event: 1 with 2." in markdown

        # retracted, the incident links nothing: two lone violations, one source each
        retraction = incident(link, [a, b], revision=2, retracted=True)
        assert post(retraction, "taskforce").status_code == 202
        unlinked = settle(read, reference(accepted))
        assert unlinked == reference(accepted)
        row = unlinked[("madaya", "gos")]
        assert (row["violations"], row["killed"]) == (2, 4)
        assert (row["incidents"], row["incidents_corroborated"]) == (2, 0)
        assert row["incident_killed"] == 4
        state = reader.get(f"{settings.query_url}/v1/verify", params={"week": WEEK}).json()
        assert state["ok"], state["differences"]
        assert state["misclassified_total"] == 0, state["misclassified"]
        events = report_events(reader, settings.query_url)
        assert events["sources"] == [{"sources": 1, "events": 2}]
        assert events["total"]["corroborated_share"] == 0.0
        # what was known when the incident stood is still what the as-of report says
        then = report_events(reader, settings.query_url, as_of=linked_at)
        assert then["sources"] == [{"sources": 2, "events": 1}]
