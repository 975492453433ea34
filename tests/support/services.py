"""Run our real service processes for tests, on free ports, against the session broker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from kafka import KafkaConsumer, TopicPartition

from core.settings import Settings


@contextmanager
def running_module(
    module: str, env: dict[str, str], ready_url: str, log: Path, timeout_s: float = 60
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``python -m module``, wait for ``ready_url`` to answer 200, stop it after."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", module],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"{module} exited {process.returncode}:\n{log.read_text()[-3000:]}"
                )
            try:
                if httpx.get(ready_url, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{module} not ready:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def read_topic(bootstrap: str, topic: str, timeout_s: float = 10) -> list[bytes]:
    """Every record value of a topic, from the beginning to its current end."""
    return [value for _, _, value in read_records(bootstrap, topic, timeout_s)]


def read_records(bootstrap: str, topic: str, timeout_s: float = 10) -> list[tuple[int, int, bytes]]:
    """Every record of a topic as (partition, offset, value), to its current end."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in partitions]
        if not tps:
            return []
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        values: list[tuple[int, int, bytes]] = []
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < end[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {topic} to its end")
            for records in consumer.poll(timeout_ms=500).values():
                values.extend((r.partition, r.offset, r.value) for r in records)
        return values
    finally:
        consumer.close()


def service_env(settings: Settings) -> dict[str, str]:
    from tests.conftest import settings_env

    return settings_env(settings)
