"""Stream worker benchmark (issue 4): reports/s through one worker process (both stages,
tables on RocksDB, outputs produced) next to a bare aiokafka consumer reading the same
topic in the same run, and the worker's memory after all reports.

    .venv/bin/python -m bench.streams_bench [--reports 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil
from aiokafka import AIOKafkaConsumer

from bench.common import bench_settings, env_of, kafka, save
from core.kafka import consumer_lag, durable_producer
from schemas import encode_envelope, group_names, make_envelope, parse_report, topic_names
from services.runtime.topics import ensure_all_topics

AREAS = ["madaya", "fouah", "kafrayah", "daraya", "douma", "raqqa", "deir_ez_zor", "yarmouk"]
PARTIES = ["gos", "ru", "fsa", "jai", "isil", "nusra"]


def produce(bootstrap: str, topic: str, count: int) -> None:
    rng = random.Random(7)
    producer = durable_producer(bootstrap, linger_ms=20, batch_size=512 * 1024)
    now = datetime.now(UTC)
    templates: dict[tuple[int, int, str, str, int], bytes] = {}
    for i in range(count):
        month, day = rng.choice([2, 3]), rng.randint(10, 28)
        area, party, killed = rng.choice(AREAS), rng.choice(PARTIES), rng.randrange(3)
        shape = (month, day, area, party, killed)
        if shape not in templates:
            templates[shape] = _template(shape, now)
        payload = templates[shape].replace(b"PLACEHOLDER-ID", f"r{i}".encode())
        producer.send(topic, key=f"r{i}".encode(), value=payload)
    producer.flush()
    producer.close()


def _template(shape: tuple[int, int, str, str, int], now: datetime) -> bytes:
    """An encoded envelope with a placeholder id (validated once, reused for speed)."""
    month, day, area, party, killed = shape
    report = parse_report(
        {
            "report_id": "PLACEHOLDER-ID", "kind": "violation",
            "occurred_at": f"2016-0{month}-{day:02d}T10:00:00Z",
            "area": area, "perpetrator": party, "target": "civilians", "category": "shelling",
            "killed": killed, "source": "witness", "confidence": "medium",
        }
    )  # fmt: skip
    envelope = make_envelope(report, org="bench", key_name="bench", received_at=now)
    return encode_envelope(envelope)


async def bare_rate(bootstrap: str, topic: str, count: int) -> float:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
        enable_auto_commit=False, max_partition_fetch_bytes=8 * 1024 * 1024,
    )  # fmt: skip
    await consumer.start()
    try:
        seen = 0
        started = time.perf_counter()
        while seen < count:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            seen += sum(len(records) for records in batches.values())
        return count / (time.perf_counter() - started)
    finally:
        await consumer.stop()


def worker_rate(
    settings_env: dict[str, str], bootstrap: str, count: int, prefix: str
) -> dict[str, float]:
    import subprocess
    import sys

    names = topic_names(prefix)
    group = group_names(prefix).streams
    log = open(Path(settings_env["TRUCE_HOME"]) / "streams.log", "ab")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "streams"], env=settings_env, stdout=log, stderr=log
    )
    ready_url = f"http://127.0.0.1:{settings_env['TRUCE_STREAMS_PORT']}/readyz"
    while True:  # the clock starts once the worker has joined and recovered its tables
        try:
            if httpx.get(ready_url, timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    started = time.perf_counter()
    peak = 0
    try:
        while True:
            time.sleep(1.0)
            rss = psutil.Process(process.pid).memory_info().rss
            peak = max(peak, rss)
            if process.poll() is not None:
                raise RuntimeError("stream worker exited; see streams.log")
            try:
                lag = consumer_lag(bootstrap, group, [names.reports, names.folded])
            except Exception:
                continue
            committed_all = lag[names.reports] == 0 and lag[names.folded] == 0
            if committed_all and time.perf_counter() - started > 5:
                elapsed = time.perf_counter() - started
                return {"reports_per_s": count / elapsed, "seconds": elapsed,
                        "rss_mb": rss / 2**20, "peak_rss_mb": peak / 2**20}  # fmt: skip
    finally:
        process.terminate()
        process.wait(timeout=60)
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reports", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        prefix = "bench."
        settings = bench_settings(Path(tmp), topic_prefix=prefix, kafka_partitions=4)
        with kafka(settings):
            ensure_all_topics(settings)
            topic = topic_names(prefix).reports
            started = time.perf_counter()
            produce(settings.bootstrap_servers, topic, args.reports)
            produce_s = time.perf_counter() - started
            bare = asyncio.run(bare_rate(settings.bootstrap_servers, topic, args.reports))
            worker = worker_rate(env_of(settings), settings.bootstrap_servers, args.reports, prefix)
    result = {
        "reports": args.reports,
        "produce_seconds": produce_s,
        "bare_aiokafka_per_s": bare,
        "worker": worker,
        "ratio_worker_to_bare": worker["reports_per_s"] / bare,
    }
    path = save(f"streams-{args.reports}", result)
    print(
        f"{args.reports} reports: worker {worker['reports_per_s']:.0f}/s, bare aiokafka "
        f"{bare:.0f}/s (ratio {result['ratio_worker_to_bare']:.3f}); worker RSS "
        f"{worker['rss_mb']:.0f} MB (peak {worker['peak_rss_mb']:.0f} MB); written to {path}"
    )


if __name__ == "__main__":
    main()
