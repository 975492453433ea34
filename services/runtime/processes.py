"""What `truce up` runs: one spec per supervised process, in start order."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import httpx

from core.kafka import cluster_answers
from core.settings import PROMETHEUS_MULTIPROC_ENV, Settings
from services.runtime import broker
from services.runtime.topics import ensure_all_topics


@dataclass(frozen=True)
class ProcessSpec:
    """How to prepare, start and probe one process."""

    name: str
    endpoint: str
    prepare: Callable[[], list[str]]
    ready: Callable[[], bool]
    stop_timeout_s: float = 30.0
    env: dict[str, str] = field(default_factory=dict)
    # the processes after it need it: they start once it is ready and stop before it; the
    # others start and stop together
    gate: bool = False


def http_ready(url: str) -> Callable[[], bool]:
    """A probe that passes when ``GET url`` answers 200."""

    def probe() -> bool:
        try:
            return httpx.get(url, timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    return probe


def python_module(module: str) -> Callable[[], list[str]]:
    return lambda: [sys.executable, "-m", module]


def _topics_then(settings: Settings, module: str) -> list[str]:
    """Create every topic (once the broker answers), then start ``module``."""
    ensure_all_topics(settings)
    return python_module(module)()


def process_specs(settings: Settings) -> list[ProcessSpec]:
    """Every process of the local stack, in dependency order (stopped in reverse)."""
    specs: list[ProcessSpec] = []
    if not settings.kafka_bootstrap and settings.kafka_brokers > 1:
        specs.extend(cluster_specs(settings))
    elif not settings.kafka_bootstrap:
        specs.append(
            ProcessSpec(
                name="kafka",
                endpoint=settings.bootstrap_servers,
                prepare=lambda: broker.prepare(settings),
                ready=lambda: cluster_answers(settings.bootstrap_servers, timeout_ms=2_000),
                stop_timeout_s=60.0,
                gate=True,
            )
        )
    specs.extend(ingest_specs(settings))
    specs.extend(streams_specs(settings))
    specs.append(
        ProcessSpec(
            name="store",
            endpoint=settings.query_url,
            prepare=python_module("services.store"),
            ready=http_ready(f"{settings.query_url}/readyz"),
        )
    )
    specs.append(
        ProcessSpec(
            name="alerter",
            endpoint=settings.alerter_url,
            prepare=python_module("services.alerter"),
            ready=http_ready(f"{settings.alerter_url}/readyz"),
        )
    )
    skipped = settings.skipped_processes  # "streams" leaves out every stream worker
    return [s for s in specs if s.name not in skipped and s.name.split("-")[0] not in skipped]


def cluster_specs(settings: Settings) -> list[ProcessSpec]:
    """The local multi-broker cluster: the controller, then each broker, all gates, so
    they stop in reverse: the brokers while the controller still answers their controlled
    shutdown (stopping a quorum member first left the last broker waiting ~80 s)."""
    argv: dict[str, list[str]] = {}

    def prepare(name: str) -> list[str]:
        if not argv:  # one format (one cluster id) for every node, on the first start
            argv.update(broker.prepare_cluster(settings))
        return argv[name]

    return [
        ProcessSpec(
            name=node.name,
            endpoint=node.address,
            prepare=partial(prepare, node.name),
            ready=partial(broker.node_ready, settings, node),
            stop_timeout_s=60.0,
            gate=True,
        )
        for node in broker.cluster_nodes(settings)
    ]


def ingest_specs(settings: Settings) -> list[ProcessSpec]:
    """The ingest processes, all serving TRUCE_INGEST_PORT; each is probed on its own port.
    Their shared metrics directory is emptied before the stack's first start (samples of
    an earlier run's processes would be summed in), never on a restart of one of them."""
    emptied: list[bool] = []

    def prepare() -> list[str]:
        if not emptied:
            shutil.rmtree(settings.ingest_metrics_dir, ignore_errors=True)
            settings.ingest_metrics_dir.mkdir(parents=True, exist_ok=True)
            emptied.append(True)
        return _topics_then(settings, "services.ingest")

    several = settings.ingest_workers > 1
    return [
        ProcessSpec(
            name="ingest" if worker == 0 else f"ingest-{worker + 1}",
            endpoint=settings.ingest_worker_url(worker) if several else settings.ingest_url,
            prepare=prepare,
            ready=http_ready(f"{settings.ingest_worker_url(worker)}/readyz"),
            env={"TRUCE_INGEST_WORKER": str(worker)}
            | ({PROMETHEUS_MULTIPROC_ENV: str(settings.ingest_metrics_dir)} if several else {}),
        )
        for worker in range(settings.ingest_workers)
    ]


def streams_specs(settings: Settings) -> list[ProcessSpec]:
    """The stream workers: one consumer group, each worker with its own state directory
    (faust keeps a RocksDB database per table partition of the partitions it holds)."""
    specs: list[ProcessSpec] = []
    for worker in range(settings.streams_workers):
        url = settings.streams_worker_url(worker)
        specs.append(
            ProcessSpec(
                name="streams" if worker == 0 else f"streams-{worker + 1}",
                endpoint=url,
                prepare=python_module("streams"),
                ready=http_ready(f"{url}/readyz"),
                stop_timeout_s=60.0,
                env={
                    "TRUCE_STREAMS_PORT": str(settings.streams_worker_port(worker)),
                    "TRUCE_STREAMS_WORKER": str(worker),
                },
            )
        )
    return specs
