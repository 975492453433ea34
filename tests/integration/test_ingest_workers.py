"""Several ingest processes on one port (TRUCE_INGEST_WORKERS, issue 17 item 4), as real
processes on the real broker: whichever process a request reaches, an (id, revision) is
accepted once, a resend is a duplicate, a key gets its rate once, and a scrape of any of
them counts the reports all of them took."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from core.settings import PROMETHEUS_MULTIPROC_ENV, Settings
from tests.conftest import isolated_settings
from tests.support.ingest import make_keys, violation
from tests.support.services import read_records, running_module, service_env

pytestmark = pytest.mark.integration
WORKERS = 2


@dataclass
class Workers:
    settings: Settings
    keys: dict[str, str]

    def url(self, worker: int) -> str:
        """Process ``worker``'s own port: the same app, reached without the kernel's pick."""
        return self.settings.ingest_worker_url(worker)

    @property
    def shared(self) -> str:
        return self.settings.ingest_url

    def post(self, url: str, report: dict[str, Any], key: str = "sarc") -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys.get(key, key)}"}
        return httpx.post(f"{url}/v1/reports", json=report, headers=headers, timeout=30)

    def records_of(self, report_id: str) -> list[dict[str, Any]]:
        topic = f"{self.settings.topic_prefix}truce.reports"
        values = read_records(self.settings.bootstrap_servers, topic)
        envelopes = [orjson.loads(value) for _, _, value in values]
        return [e for e in envelopes if e["report"]["report_id"] == report_id]


@contextmanager
def running_workers(broker: Settings, home: Path, **overrides: object) -> Iterator[Workers]:
    """WORKERS ingest processes on one port, as `truce up` runs them."""
    settings = isolated_settings(
        home,
        kafka_bootstrap=broker.bootstrap_servers,
        topic_prefix=f"w{uuid.uuid4().hex[:8]}.",
        ingest_workers=WORKERS,
        **overrides,
    )
    keys = make_keys(settings)
    metrics_dir = settings.ingest_metrics_dir
    metrics_dir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        for worker in range(WORKERS):
            env = service_env(settings) | {
                "TRUCE_INGEST_WORKER": str(worker),
                PROMETHEUS_MULTIPROC_ENV: str(metrics_dir),
            }
            ready = f"{settings.ingest_worker_url(worker)}/readyz"
            stack.enter_context(
                running_module("services.ingest", env, ready, home / f"ingest-{worker}.log")
            )
        yield Workers(settings, keys)


@pytest.fixture(scope="module")
def workers(
    broker_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Workers]:
    with running_workers(broker_settings, tmp_path_factory.mktemp("ingest-workers")) as running:
        yield running


def test_the_kernel_spreads_connections_on_the_one_port_over_every_process(
    workers: Workers,
) -> None:
    answered = Counter(
        httpx.get(f"{workers.shared}/readyz", timeout=10).json()["worker"] for _ in range(60)
    )
    assert set(answered) == set(range(WORKERS)), answered


def test_one_revision_sent_to_two_processes_at_once_is_accepted_once(workers: Workers) -> None:
    """Different content under one (id, revision) at the same moment on two processes: one
    is accepted, the other is a 409 (before shared claims both were accepted and written)."""
    rounds = 30
    with ThreadPoolExecutor(max_workers=2 * rounds) as pool:
        pairs = []
        for _ in range(rounds):
            report = violation()
            pairs.append((
                report["report_id"],
                pool.submit(workers.post, workers.url(0), {**report, "killed": 1}),
                pool.submit(workers.post, workers.url(1), {**report, "killed": 2}),
            ))  # fmt: skip
        outcomes = [(rid, a.result().status_code, b.result().status_code) for rid, a, b in pairs]
    for report_id, first, second in outcomes:
        assert sorted((first, second)) == [202, 409], (report_id, first, second)
        assert len(workers.records_of(report_id)) == 1, report_id


def test_the_same_report_sent_to_two_processes_at_once_is_written_once(workers: Workers) -> None:
    rounds = 30
    with ThreadPoolExecutor(max_workers=2 * rounds) as pool:
        pairs = []
        for _ in range(rounds):
            report = violation()
            pairs.append((
                report["report_id"],
                pool.submit(workers.post, workers.url(0), report),
                pool.submit(workers.post, workers.url(1), report),
            ))  # fmt: skip
        answers = [(rid, a.result(), b.result()) for rid, a, b in pairs]
    for report_id, first, second in answers:
        statuses = sorted(r.json()["results"][0]["status"] for r in (first, second))
        assert statuses == ["accepted", "duplicate"], report_id
        receipts = {orjson.dumps(r.json()["results"][0]["receipt"]) for r in (first, second)}
        assert len(receipts) == 1  # the duplicate's receipt is the accepted record's
        assert len(workers.records_of(report_id)) == 1, report_id


def test_a_resend_to_another_process_right_after_the_accept_is_a_duplicate(
    workers: Workers,
) -> None:
    """Read-your-writes across processes: the second process has not read the first one's
    record back from the log yet (it fetches every 250 ms), and must still know it."""
    for _ in range(20):
        report = violation()
        assert workers.post(workers.url(0), report).json()["accepted"] == 1
        again = workers.post(workers.url(1), report)
        assert again.status_code == 202
        assert again.json()["results"][0]["status"] == "duplicate"
        conflict = workers.post(workers.url(1), {**report, "killed": 9})
        assert conflict.status_code == 409
        assert len(workers.records_of(report["report_id"])) == 1


def test_a_key_gets_its_rate_once_whichever_process_it_reaches(
    broker_settings: Settings, tmp_path: Path
) -> None:
    """Each process kept its own buckets before: a key spread over two got twice its burst."""
    burst = 6
    with running_workers(
        broker_settings, tmp_path, rate_limit_per_s=0.01, rate_limit_burst=burst
    ) as limited:
        statuses = [
            limited.post(limited.url(i % WORKERS), violation()).status_code
            for i in range(burst + 2)
        ]
    assert statuses == [202] * burst + [429, 429]


def _accepted_total(text: str) -> float:
    match = re.search(r'^truce_ingest_reports_total\{status="accepted"\} (\S+)$', text, re.M)
    assert match, text[:2000]
    return float(match.group(1))


def test_a_scrape_of_any_process_counts_what_every_process_accepted(workers: Workers) -> None:
    scrapes = [httpx.get(f"{workers.url(w)}/metrics", timeout=10).text for w in range(WORKERS)]
    before = [_accepted_total(text) for text in scrapes]
    assert before[0] == before[1]
    for worker in (0, 1, 1, 0, 1):
        assert workers.post(workers.url(worker), violation()).status_code == 202
    after = [
        _accepted_total(httpx.get(f"{workers.url(w)}/metrics", timeout=10).text)
        for w in range(WORKERS)
    ]
    assert after == [before[0] + 5] * WORKERS


def test_several_ingest_processes_need_the_multiprocess_metrics_directory(
    broker_settings: Settings, tmp_path: Path
) -> None:
    settings = isolated_settings(
        tmp_path, kafka_bootstrap=broker_settings.bootstrap_servers, ingest_workers=2
    )
    env = service_env(settings)
    env.pop(PROMETHEUS_MULTIPROC_ENV, None)
    with pytest.raises(RuntimeError, match=PROMETHEUS_MULTIPROC_ENV), running_module(
        "services.ingest", env, f"{settings.ingest_worker_url(0)}/readyz",
        tmp_path / "i.log", timeout_s=20,
    ):  # fmt: skip
        pass
