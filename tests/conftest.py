"""Session fixtures: one real Kafka broker and one ClickHouse engine for the whole test run."""

from __future__ import annotations

import os
import random
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from core.settings import Settings, load_settings

TEST_PORTS = range(20_000, 32_000)
"""Below Linux's ephemeral range (32768-60999): a port the kernel hands out for binding 0
is also where outgoing connections take their local port, so a service started on such a
port a moment later (or on the next one, as the second stream worker does) can find it
taken by a client socket."""


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port(span: int = 1) -> int:
    """The first of ``span`` consecutive ports that are free now, outside the ephemeral
    range (services that take ``port + n`` for their n-th instance get a whole block)."""
    rng = random.SystemRandom()
    for _ in range(1000):
        start = rng.randrange(TEST_PORTS.start, TEST_PORTS.stop - span)
        if all(_bindable(start + i) for i in range(span)):
            return start
    raise RuntimeError("no free block of test ports")


def isolated_settings(home: Path, **overrides: object) -> Settings:
    """Settings for a fresh TRUCE_HOME on free ports (two test runs never collide)."""
    values: dict[str, object] = {
        "home": home,
        "kafka_port": free_port(),
        "kafka_controller_port": free_port(),
        "ingest_port": free_port(),
        "query_port": free_port(),
        "alerter_port": free_port(),
        "streams_port": free_port(span=4),  # worker n listens on this + n
        "ingest_probe_port": free_port(span=4),
        "kafka_partitions": 2,
    }
    values.update(overrides)
    return load_settings(**values)


def settings_env(settings: Settings) -> dict[str, str]:
    """The TRUCE_ environment that reproduces ``settings`` in a child process."""
    return settings.as_env()


@pytest.fixture(scope="session")
def broker_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """The session's real Kafka broker (started once, stopped at the end even on failure)."""
    from services.runtime import broker

    external = os.environ.get("TRUCE_TEST_KAFKA_BOOTSTRAP")
    home = tmp_path_factory.mktemp("truce-home")
    if external:
        yield isolated_settings(home, kafka_bootstrap=external)
        return
    settings = isolated_settings(home)
    process = broker.start(settings)
    try:
        yield settings
    finally:
        broker.stop(process.pid)


@pytest.fixture(scope="session")
def bootstrap(broker_settings: Settings) -> str:
    return broker_settings.bootstrap_servers


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    """Unique topic / group / database names so tests never see each other's data."""

    def make(stem: str) -> str:
        return f"{stem}-{uuid.uuid4().hex[:10]}"

    return make


@pytest.fixture(scope="session")
def clickhouse_root(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The session's ClickHouse DSN without database: embedded chDB unless a server is given."""
    server = os.environ.get("TRUCE_TEST_CLICKHOUSE_DSN")
    if server:
        return server
    return f"chdb://{tmp_path_factory.mktemp('clickhouse')}"
