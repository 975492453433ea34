"""A local three-broker KRaft cluster (TRUCE_KAFKA_BROKERS=3): every Truce topic gets
replication 3 and min.insync.replicas 2, a mismatch is reported, and SIGKILLing the
leader of the reports topic's partitions while partners post loses and doubles nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.kafka import Replication, admin_client, ensure_topics, replication_mismatches
from core.keys import KeyStore, Role
from core.settings import Settings
from schemas import decode_envelope, group_names, topic_names
from services.runtime import broker
from services.runtime.topics import ensure_all_topics, topic_mismatches, truce_topics
from tests.conftest import free_port, isolated_settings
from tests.support.ingest import violation
from tests.support.services import read_topic, running_module, service_env

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[broker.LocalCluster]:
    """Three brokers and one controller, started once for the module."""
    settings = isolated_settings(
        tmp_path_factory.mktemp("cluster"),
        kafka_brokers=3,
        kafka_port=free_port(span=3),
        kafka_heap="256m",
    )
    running = broker.start_cluster(settings)
    try:
        yield running
    finally:
        running.stop()


def _client_settings(home: Path, cluster: broker.LocalCluster, **extra: object) -> Settings:
    """A service's settings against the cluster: its size gives the replication defaults."""
    return isolated_settings(
        home,
        kafka_bootstrap=cluster.settings.bootstrap_servers,
        kafka_brokers=3,
        topic_prefix=f"t{uuid.uuid4().hex[:8]}.",
        **extra,
    )


def _describe(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    admin = admin_client(bootstrap)
    try:
        [described] = admin.describe_topics([topic])
    finally:
        admin.close()
    return sorted(described["partitions"], key=lambda p: p["partition_index"])


def _visible(bootstrap: str, topics: list[str]) -> None:
    """Wait until every broker's metadata lists ``topics`` (creation propagates)."""
    deadline = time.monotonic() + 30
    for address in bootstrap.split(","):
        admin = admin_client(address)
        try:
            while not set(topics) <= set(admin.list_topics()):
                assert time.monotonic() < deadline, f"{topics} not visible on {address}"
                time.sleep(0.2)
        finally:
            admin.close()


def test_defaults_follow_the_broker_count(tmp_path: Path) -> None:
    for brokers, factor, min_isr in ((1, 1, 1), (2, 2, 2), (3, 3, 2), (5, 3, 2)):
        settings = isolated_settings(tmp_path, kafka_brokers=brokers)
        assert (settings.replication_factor, settings.min_insync_replicas) == (factor, min_isr)
    explicit = isolated_settings(tmp_path, kafka_replication_factor=2, kafka_brokers=3)
    assert (explicit.replication_factor, explicit.min_insync_replicas) == (2, 2)


def test_truce_topics_get_three_replicas_and_min_isr_two(
    cluster: broker.LocalCluster, tmp_path: Path
) -> None:
    settings = _client_settings(tmp_path, cluster)
    assert ensure_all_topics(settings) == []
    names = topic_names(settings.topic_prefix)
    for topic in (names.reports, names.events, names.folded):
        partitions = _describe(settings.bootstrap_servers, topic)
        assert len(partitions) == settings.kafka_partitions
        assert all(len(p["replica_nodes"]) == 3 for p in partitions)
        assert all(len(p["isr_nodes"]) == 3 for p in partitions)
    _visible(settings.bootstrap_servers, [names.reports])
    assert topic_mismatches(settings) == []


def test_an_existing_topic_with_other_replication_is_reported_not_accepted(
    cluster: broker.LocalCluster, tmp_path: Path
) -> None:
    settings = _client_settings(tmp_path, cluster)
    names = topic_names(settings.topic_prefix)
    # created by an older Truce (replication 1, broker default min ISR) before the upgrade
    ensure_topics(settings.bootstrap_servers, [names.reports], partitions=2)
    _visible(settings.bootstrap_servers, [names.reports])
    problems = ensure_all_topics(settings)  # what `truce up` logs as a warning
    assert problems == [
        f"{names.reports}: replication factor 1, wanted 3",
        f"{names.reports}: min.insync.replicas 1, wanted 2",
    ]
    assert all(
        len(p["replica_nodes"]) == 1 for p in _describe(settings.bootstrap_servers, names.reports)
    )  # untouched
    _visible(settings.bootstrap_servers, [names.folded])
    assert topic_mismatches(settings) == problems  # what `truce status` shows
    assert (
        replication_mismatches(settings.bootstrap_servers, [names.reports], Replication(1, 1)) == []
    )


def test_stream_worker_changelogs_are_replicated_like_the_truce_topics(
    cluster: broker.LocalCluster, tmp_path: Path
) -> None:
    settings = _client_settings(tmp_path, cluster, kafka_partitions=1)
    ensure_all_topics(settings)
    env = service_env(settings)
    with running_module(
        "streams", env, f"{settings.streams_url}/readyz", tmp_path / "streams.log", timeout_s=120
    ):
        app_id = group_names(settings.topic_prefix).streams
        deadline = time.monotonic() + 60
        while True:
            changelogs = [t for t in truce_topics(settings) if t.startswith(f"{app_id}-")]
            # histories, verifications, links, placed, designations, alerts
            if len(changelogs) >= 6:
                break
            assert time.monotonic() < deadline, changelogs
            time.sleep(0.5)
        assert topic_mismatches(settings) == []
        for topic in changelogs:
            assert all(
                len(p["replica_nodes"]) == 3 for p in _describe(settings.bootstrap_servers, topic)
            )


def test_killing_the_reports_leader_loses_and_doubles_nothing(
    cluster: broker.LocalCluster, tmp_path: Path
) -> None:
    settings = _client_settings(tmp_path, cluster, kafka_partitions=3)
    key = KeyStore(settings).create("s", Role.PARTNER, "sarc")
    topic = topic_names(settings.topic_prefix).reports
    headers = {"Authorization": f"Bearer {key}"}
    outcomes: dict[str, int] = {}  # report id -> final status after the client's retries
    timeline: list[tuple[float, int, float]] = []  # (sent at, status, seconds to answer)
    failures: list[str] = []
    stop = threading.Event()

    def partner(name: str) -> None:
        with httpx.Client(timeout=30) as client:
            i = 0
            while not stop.is_set():
                i += 1
                report = violation(f"{name}-{i}")
                for _attempt in range(20):  # a partner retries a 503 (none of it was accepted)
                    sent = time.monotonic()
                    try:
                        response = client.post(
                            f"{settings.ingest_url}/v1/reports", json=report, headers=headers
                        )
                    except httpx.HTTPError as exc:
                        failures.append(f"{report['report_id']}: {exc!r}")
                        break
                    timeline.append((sent, response.status_code, time.monotonic() - sent))
                    outcomes[report["report_id"]] = response.status_code
                    if response.status_code != 503:
                        break
                    time.sleep(float(response.headers.get("Retry-After", "1")))

    with running_module(
        "services.ingest", service_env(settings), f"{settings.ingest_url}/readyz",
        tmp_path / "ingest.log",
    ):  # fmt: skip
        partners = [threading.Thread(target=partner, args=(f"p{n}",)) for n in range(3)]
        for thread in partners:
            thread.start()
        try:
            time.sleep(3)
            leader = _describe(settings.bootstrap_servers, topic)[0]["leader_id"]
            victim = cluster.broker(leader).name
            killed_at = time.monotonic()
            cluster.kill(victim)
            time.sleep(10)
            cluster.start_node(victim)
            returned_at = time.monotonic()
            time.sleep(3)
        finally:
            stop.set()
            for thread in partners:
                thread.join(timeout=60)

    assert failures == []  # every request was answered
    during = [status for sent, status, _ in timeline if killed_at + 6 < sent < returned_at]
    assert during.count(202) > 0, Counter(during)  # two in-sync replicas keep taking writes
    # the replicas of the restarted broker catch up (back in every partition's ISR)
    deadline = time.monotonic() + 60
    while any(len(p["isr_nodes"]) < 3 for p in _describe(settings.bootstrap_servers, topic)):
        assert time.monotonic() < deadline, _describe(settings.bootstrap_servers, topic)
        time.sleep(0.5)
    logged = Counter(
        decode_envelope(v).report.report_id for v in read_topic(settings.bootstrap_servers, topic)
    )
    accepted = [rid for rid, status in outcomes.items() if status == 202]
    lost = [rid for rid in accepted if logged[rid] == 0]
    doubled = [rid for rid, n in logged.items() if n > 1]
    slowest = max(seconds for _, _, seconds in timeline)
    print(
        f"\nleader kill: {len(accepted)} accepted, {len(lost)} lost, {len(doubled)} doubled, "
        f"statuses {Counter(outcomes.values())}, slowest answer {slowest:.1f} s, "
        f"killed broker {victim}"
    )
    assert len(accepted) > 100
    assert lost == []
    assert doubled == []
    assert set(logged) <= set(outcomes)  # nothing on the log that no partner sent


def test_truce_up_runs_three_brokers_and_down_stops_them_in_order(tmp_path: Path) -> None:
    """`truce up` with TRUCE_KAFKA_BROKERS=3 (and ingest, which creates the reports topic);
    `truce down` stops the brokers before the controller (the time is printed: see README)."""
    settings = isolated_settings(
        tmp_path / "home", kafka_brokers=3, kafka_port=free_port(span=3), kafka_heap="256m",
        skip_processes="streams,store,alerter",
    )  # fmt: skip
    env = {**os.environ, **service_env(settings)}

    def truce(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "services.cli", *args], env=env, capture_output=True,
            text=True, timeout=300, check=False,
        )  # fmt: skip

    try:
        started = truce("up", "--detach")
        assert started.returncode == 0, started.stderr
        info = json.loads(truce("status", "--json").stdout)
        assert info["ready"] is True
        nodes = ["kafka-controller", "kafka-1", "kafka-2", "kafka-3"]
        assert [name for name in info["processes"] if name.startswith("kafka")] == nodes
        assert info["kafka_bootstrap"] == settings.bootstrap_servers
        assert info["replication"] == {"factor": 3, "min_insync": 2, "mismatches": []}
        reports = topic_names(settings.topic_prefix).reports
        assert all(
            len(p["replica_nodes"]) == 3 for p in _describe(settings.bootstrap_servers, reports)
        )
    finally:
        began = time.monotonic()
        stopped = truce("down")
        took = time.monotonic() - began
    assert stopped.returncode == 0, stopped.stderr
    print(f"\ntruce down with three brokers: {took:.1f} s")
    for node in nodes:
        log = (settings.logs_dir / node / "kafka-server.log").read_text()
        assert "shut down completely" in log or "shutting down" in log.lower(), node
