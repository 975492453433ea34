"""Shared set-up of the benchmarks: a private broker and our real services on free ports."""

from __future__ import annotations

import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from core.settings import Settings, load_settings
from services.runtime import broker

RESULTS = Path(__file__).resolve().parent / "results"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def bench_settings(home: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "home": home,
        "kafka_port": free_port(),
        "kafka_controller_port": free_port(),
        "ingest_port": free_port(),
        "query_port": free_port(),
        "streams_port": free_port(),
        "alerter_port": free_port(),
        "ingest_probe_port": free_port(),  # process n probes on this + n: mostly free above
        "rate_limit_per_s": 1e9,
        "rate_limit_burst": 1_000_000_000,
    }
    values.update(overrides)
    return load_settings(**values)


def env_of(settings: Settings) -> dict[str, str]:
    return {**os.environ, **settings.as_env()}


@contextmanager
def kafka(settings: Settings) -> Iterator[None]:
    process = broker.start(settings)
    try:
        yield
    finally:
        broker.stop(process.pid)


@contextmanager
def service(
    module: str, settings: Settings, ready_url: str, extra_env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    log = settings.logs_dir / f"{module}-{settings.ingest_worker}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", module], env=env_of(settings) | (extra_env or {}), stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(ready_url, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{module} did not start; see {log}")
            time.sleep(0.2)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def machine() -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def save(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **result}, indent=2) + "\n")
    return path


median = statistics.median
