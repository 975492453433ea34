"""Ingest next to Kafka's own producer (issue 17): reports/s through the batch endpoint
with 1, 2 and 3 ingest processes (TRUCE_INGEST_WORKERS, one port, as `truce up` runs
them), against ``kafka-producer-perf-test``'s ProducerPerformance and a bare kafka-python
producer on the same broker, with records the size of a stored envelope, acks=all and
idempotence on all three.

    .venv/bin/python -m bench.kafka_bench [--batches 40] [--records 300000] [--repeats 3]

Every ingest process follows the whole log; the broker and the load generator share the
machine's cores with them, so the per-process figure is what one more process adds here.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.common import bench_settings, kafka, median, save, service
from bench.ingest_bench import batch_run
from core.kafka import durable_producer, ensure_topics, plain_consumer
from core.keys import KeyStore, Role
from core.settings import PROMETHEUS_MULTIPROC_ENV, Settings
from schemas import topic_names
from services.ingest.publisher import LINGER_MS
from services.runtime.topics import ensure_all_topics

TOOLS_POM = Path(__file__).resolve().parent / "kafka-tools" / "pom.xml"
BATCH_BYTES = 256 * 1024  # the ingest publisher's batch.size


def tools_classpath(settings: Settings) -> str:
    """Kafka's tools jars (fetched once next to the broker's) and the broker's own."""
    tools = settings.kafka_libs_dir.parent / "tools"
    if not (tools / ".complete").exists():
        mvn = shutil.which("mvn") or "mvn"
        subprocess.run(
            [mvn, "-q", "-B", "-f", str(TOOLS_POM), "dependency:copy-dependencies",
             f"-DoutputDirectory={tools}", "-DincludeScope=runtime",
             f"-Dkafka.version={settings.kafka_version}"],
            check=True,
        )  # fmt: skip
        (tools / ".complete").write_text(settings.kafka_version + "\n")
    return f"{tools}/*:{settings.kafka_libs_dir}/*"


def envelope_size(settings: Settings, topic: str, sample: int = 2000) -> tuple[int, int]:
    """Mean key and value bytes of the envelopes ingest wrote."""
    consumer = plain_consumer(settings.bootstrap_servers, topic, auto_offset_reset="earliest",
                              consumer_timeout_ms=5_000)  # fmt: skip
    keys: list[int] = []
    values: list[int] = []
    try:
        for record in consumer:
            keys.append(len(record.key or b""))
            values.append(len(record.value))
            if len(values) >= sample:
                break
    finally:
        consumer.close()
    return round(sum(keys) / len(keys)), round(sum(values) / len(values))


def producer_performance(settings: Settings, records: int, size: int) -> float:
    """Records/s of Kafka's ProducerPerformance with the ingest publisher's settings."""
    topic = f"bench.perf-{uuid.uuid4().hex[:6]}"
    ensure_topics(settings.bootstrap_servers, [topic], partitions=settings.kafka_partitions)
    java = shutil.which("java") or "java"
    result = subprocess.run(
        [java, "-Xmx512m", "-cp", tools_classpath(settings),
         "org.apache.kafka.tools.ProducerPerformance", "--topic", topic,
         "--num-records", str(records), "--record-size", str(size), "--throughput", "-1",
         "--producer-props", f"bootstrap.servers={settings.bootstrap_servers}", "acks=all",
         "enable.idempotence=true", f"linger.ms={LINGER_MS}", f"batch.size={BATCH_BYTES}",
         "max.in.flight.requests.per.connection=5"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    summary = [line for line in result.stdout.splitlines() if "records sent" in line][-1]
    match = re.search(r"records sent, ([\d.]+) records/sec", summary)
    assert match, summary
    return float(match.group(1))


def python_producer(settings: Settings, records: int, key: int, size: int) -> float:
    """Records/s of the durable kafka-python producer alone (what ingest publishes with)."""
    topic = f"bench.py-{uuid.uuid4().hex[:6]}"
    ensure_topics(settings.bootstrap_servers, [topic], partitions=settings.kafka_partitions)
    producer = durable_producer(settings.bootstrap_servers, linger_ms=LINGER_MS,
                                batch_size=BATCH_BYTES)  # fmt: skip
    value = b"x" * size
    try:
        started = time.perf_counter()
        for i in range(records):
            producer.send(topic, key=f"{i:0{key}d}".encode()[-key:], value=value)
        producer.flush(timeout=120)
        return records / (time.perf_counter() - started)
    finally:
        producer.close()


WORKER_COUNTS = (1, 2, 3)


def _ingests(stack: ExitStack, settings: Settings, count: int) -> str:
    """``count`` ingest processes on the one ingest port; returns its URL."""
    shared = settings.model_copy(update={"ingest_workers": count})
    shutil.rmtree(shared.ingest_metrics_dir, ignore_errors=True)
    shared.ingest_metrics_dir.mkdir(parents=True)
    env = {PROMETHEUS_MULTIPROC_ENV: str(shared.ingest_metrics_dir)} if count > 1 else {}
    for worker in range(count):
        own = shared.model_copy(update={"ingest_worker": worker})
        ready = f"{own.ingest_worker_url(worker)}/readyz"
        stack.enter_context(service("services.ingest", own, ready, env))
    return shared.ingest_url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--name", default="kafka-ratio", help="results file name")
    args = parser.parse_args()
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        settings = bench_settings(Path(tmp), topic_prefix="bench.")
        with kafka(settings):
            ensure_all_topics(settings)
            key = KeyStore(settings).create("bench", Role.PARTNER, "bench")
            for workers in WORKER_COUNTS:
                with ExitStack() as stack:
                    url = _ingests(stack, settings, workers)
                    concurrency = args.concurrency * workers  # connections spread by the kernel
                    asyncio.run(batch_run(url, key, 4, concurrency))  # warm-up
                    runs = [
                        asyncio.run(batch_run(url, key, args.batches, concurrency))
                        for _ in range(args.repeats)
                    ]
                result[f"ingest_{workers}_reports_per_s"] = {"runs": runs, "median": median(runs)}
            key_bytes, value_bytes = envelope_size(
                settings, topic_names(settings.topic_prefix).reports
            )
            result["envelope_bytes"] = {"key": key_bytes, "value": value_bytes}
            perf = [producer_performance(settings, args.records, value_bytes)
                    for _ in range(args.repeats)]  # fmt: skip
            result["producer_performance_per_s"] = {"runs": perf, "median": median(perf)}
            bare = [python_producer(settings, args.records // 2, key_bytes, value_bytes)
                    for _ in range(args.repeats)]  # fmt: skip
            result["kafka_python_per_s"] = {"runs": bare, "median": median(bare)}
    rates = {n: result[f"ingest_{n}_reports_per_s"]["median"] for n in WORKER_COUNTS}
    reference = result["producer_performance_per_s"]["median"]
    result["ratios"] = {
        **{f"ingest_{n}_vs_producer_performance": rate / reference for n, rate in rates.items()},
        **{f"ingest_{n}_vs_1": rate / rates[1] for n, rate in rates.items() if n > 1},
        "kafka_python_vs_producer_performance": result["kafka_python_per_s"]["median"] / reference,
    }
    path = save(args.name, result)
    scaling = ", ".join(f"x{n} {rate:.0f}/s ({rate / rates[1]:.2f} x one)"
                        for n, rate in rates.items())  # fmt: skip
    print(
        f"envelope {value_bytes} B; ProducerPerformance {reference:.0f}/s; kafka-python "
        f"{result['kafka_python_per_s']['median']:.0f}/s; ingest {scaling}; one process is "
        f"{rates[1] / reference:.3f} of Kafka's"
    )
    print(f"written to {path}")


if __name__ == "__main__":
    main()
