"""Store benchmark (issue 5), three parts, each against the real processes on a private broker:

1. queries: p50/p95 latency of GET /v1/metrics/weekly and of the weekly report (JSON) with
   ``--raw`` raw report revisions stored (default 10 million; the canonical table holds the
   ~91 % of them that are distinct reports, the snapshot tables their weekly counts), bulk-
   loaded with ClickHouse's own INSERT ... SELECT in a separate process (chDB allows one
   process per data path), then served by the real store process.
2. sink: rows/s the store's sink writes from Kafka into ClickHouse (raw envelopes and
   canonical reports pre-produced, then the store started).
3. freshness: the whole pipeline (ingest, stream worker, store) under ``--rate`` reports/s
   offered to the batch endpoint; one probe report per second in a week of its own, timed
   from its 202 to the moment /v1/metrics/weekly shows it.

    .venv/bin/python -m bench.store_bench [--raw 10000000] [--sink-rows 200000]
        [--rate 1000] [--seconds 60] [--parts queries,sink,freshness]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.common import bench_settings, kafka, median, percentile, save, service
from core.kafka import consumer_lag, durable_producer
from core.keys import KeyStore, Role
from core.settings import Settings
from schemas import (
    CanonicalReport,
    area_list,
    encode_envelope,
    group_names,
    make_envelope,
    parse_report,
    party_list,
    topic_names,
)
from schemas.figures import FIGURE_SETS, FigureSet
from schemas.weeks import iso_week_sql, week_of_day
from services.runtime.topics import ensure_all_topics
from services.store.database import Database
from services.store.derived import snapshot_table

FIRST_MONDAY = "2015-01-05 00:00:00"
WEEKS = 156  # 2015-W02 .. 2018-W01
ROWS_PER_BLOCK = 11  # ten reports, then a second revision of the first of them

# Every attribute is a function of the report number r (h = its hash), so the raw revisions,
# the canonical states and the snapshots agree.
_ATTRS = """
    cityHash64(r) AS h,
    ['violation','violation','violation','violation','violation','violation','violation',
     'delivery','delivery','access_request'][1 + h % 10] AS kind,
    toDateTime64({first:String}, 3, 'UTC') + toIntervalSecond(intDiv(h, 16) % {span:UInt64})
        AS occurred_at,
    {week} AS week,
    {areas:Array(String)}[1 + intDiv(h, 7) % length({areas:Array(String)})] AS area,
    if(kind = 'violation',
       {parties:Array(String)}[1 + intDiv(h, 11) % length({parties:Array(String)})], '')
        AS party,
    multiIf(kind = 'delivery',
            ['completed','partial','blocked','cancelled'][1 + intDiv(h, 23) % 4],
            kind = 'access_request',
            ['submitted','approved','denied','withdrawn'][1 + intDiv(h, 23) % 4], '') AS status,
    occurred_at + toIntervalSecond(intDiv(h, 37) % 259200) AS received_at
""".replace("{week}", iso_week_sql("occurred_at"))

LOAD_RAW = f"""
INSERT INTO raw_reports
SELECT concat('b', toString(r)) AS report_id, revision, kind, 'bench', 'bench-1',
       received_at + toIntervalDay(revision - 1), occurred_at, area, false, 1,
       lower(hex(SHA256(concat(report_id, toString(revision))))),
       toJSONString(map('report_id', report_id, 'kind', kind, 'area', area,
                        'occurred_at', toString(occurred_at), 'revision', toString(revision))),
       0, number
FROM (
    SELECT number, intDiv(number, {ROWS_PER_BLOCK}) * 10
               + if(number % {ROWS_PER_BLOCK} = 10, 0, number % {ROWS_PER_BLOCK}) AS r,
           if(number % {ROWS_PER_BLOCK} = 10, 2, 1) AS revision,
           {_ATTRS}
    FROM numbers({{rows:UInt64}})
)
"""

LOAD_CANONICAL = f"""
INSERT INTO canonical_reports
SELECT concat('b', toString(r)) AS report_id, 1, kind, if(r % 10 = 0, 2, 1), 'bench',
       received_at, occurred_at, week, area, party, if(kind = 'violation', 'civilians', ''),
       if(kind = 'violation', 'shelling', ''), status, '',
       if(kind = 'violation', intDiv(h, 17) % 4, 0),
       if(kind = 'violation', intDiv(h, 19) % 6, 0),
       if(kind = 'delivery', intDiv(h, 29) % 5000, 0),
       intDiv(h, 31) % 50 = 0 AS retracted, NOT retracted,
       party IN ('isil', 'nusra') AS exempt, if(exempt, 'designated_perpetrator', ''),
       if(kind = 'violation' AND intDiv(h, 13) % 4 = 0, 'verified', 'unverified'),
       toJSONString(map('report_id', report_id, 'kind', kind))
FROM (SELECT number AS r, {_ATTRS} FROM numbers({{reports:UInt64}}))
"""


def load_snapshots(figures: FigureSet) -> str:
    """What the stream would write into a snapshot table: every figure recounted from the
    canonical reports with the figure definitions."""
    keys = ", ".join(("week", *figures.keys))
    columns = ", ".join((keys, *figures.names, "version"))
    kinds = ", ".join(f"'{kind}'" for kind in sorted(figures.kinds))
    return f"""
INSERT INTO {snapshot_table(figures)} ({columns})
SELECT {keys}, {figures.sql()}, 1 AS version
FROM canonical_reports WHERE kind IN ({kinds}) AND counts
GROUP BY {keys}
SETTINGS prefer_column_name_to_alias = 1
"""


def load(dsn: str, rows: int) -> None:
    """Bulk-load ``rows`` raw revisions and what the stream would derive from them."""
    db = Database(dsn)
    db.migrate()
    params: dict[str, Any] = {
        "first": FIRST_MONDAY,
        "span": WEEKS * 7 * 86400,
        "areas": [a.code for a in area_list()],
        "parties": [p.code for p in party_list()],
    }
    reports = rows // ROWS_PER_BLOCK * 10 + min(rows % ROWS_PER_BLOCK, 10)
    db.client.command(LOAD_RAW, parameters={**params, "rows": rows})
    db.client.command(LOAD_CANONICAL, parameters={**params, "reports": reports})
    for figures in FIGURE_SETS:
        db.client.command(load_snapshots(figures))
    db.client.command("OPTIMIZE TABLE canonical_reports FINAL")
    counts = {
        t: db.client.command(f"SELECT count() FROM {t}")
        for t in ("raw_reports", "canonical_reports", "weekly_compliance_snapshots")
    }
    print(f"loaded {counts}")
    db.close()


def timed_gets(url: str, key: str, requests: list[tuple[str, dict[str, str]]]) -> list[float]:
    """Sequential GETs (one client, keep-alive); latency of each in ms."""
    latencies = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:
        for path, params in requests:
            started = time.perf_counter()
            response = c.get(path, params=params)
            latencies.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
    return latencies


def summary(latencies: list[float]) -> dict[str, float]:
    return {
        "requests": len(latencies),
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "max_ms": max(latencies),
    }


def monitor_key(settings: Settings) -> str:
    return KeyStore(settings).create("bench-monitor", Role.MONITOR)


def query_part(root: Path, bootstrap: str, rows: int, queries: int) -> dict[str, Any]:
    settings = bench_settings(root / "queries", kafka_bootstrap=bootstrap, topic_prefix="bq.")
    ensure_all_topics(settings)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "bench.store_bench", "--load", settings.clickhouse_url,
         "--raw", str(rows)], check=True,
    )  # fmt: skip
    load_s = time.perf_counter() - started
    key = monitor_key(settings)
    rng = random.Random(5)
    first = date(2015, 1, 5)
    weeks = [week_of_day(first + timedelta(weeks=rng.randrange(WEEKS))) for _ in range(queries)]
    areas = [a.code for a in area_list()]
    metrics = [
        ("/v1/metrics/weekly", {"week": w, **({"area": rng.choice(areas)} if i % 2 else {})})
        for i, w in enumerate(weeks)
    ]
    reports = [
        (f"/v1/weekly-report/{w}", {"format": "json"}) for w in weeks[: max(10, queries // 10)]
    ]
    with service("services.store", settings, f"{settings.query_url}/readyz"):
        url = settings.query_url
        timed_gets(url, key, metrics[:10] + reports[:2])  # warm-up
        metric_ms = timed_gets(url, key, metrics)
        report_ms = timed_gets(url, key, reports)
        drill = [("/v1/reports", {"week": w, "area": "madaya", "kind": "violation"})
                 for w in weeks[:20]]  # fmt: skip
        drill_ms = timed_gets(url, key, drill)
    return {
        "raw_reports": rows,
        "load_seconds": load_s,
        "metrics_weekly": summary(metric_ms),
        "weekly_report_json": summary(report_ms),
        "drilldown_reports": summary(drill_ms),
    }


_WRITTEN = re.compile(r'^truce_store_rows_written_total\{table="([a-z_]+)"\} (\S+)$', re.M)


def rows_written(url: str) -> float:
    try:
        text = httpx.get(f"{url}/metrics", timeout=5).text
    except httpx.HTTPError:
        return 0.0
    return sum(float(v) for _, v in _WRITTEN.findall(text))


def sink_part(root: Path, bootstrap: str, count: int) -> dict[str, Any]:
    """Raw envelopes and canonical reports, ``count`` of each, already on their topics."""
    settings = bench_settings(root / "sink", kafka_bootstrap=bootstrap, topic_prefix="bs.")
    ensure_all_topics(settings)
    names = topic_names("bs.")
    producer = durable_producer(bootstrap, linger_ms=20, batch_size=512 * 1024)
    now = datetime.now(UTC)
    body = {
        "report_id": "ID-PLACEHOLDER", "kind": "violation", "occurred_at": "2016-03-01T10:00:00Z",
        "area": "madaya", "perpetrator": "gos", "target": "civilians", "category": "shelling",
        "killed": 1, "source": "witness", "confidence": "medium",
    }  # fmt: skip
    raw = encode_envelope(make_envelope(parse_report(body), org="b", key_name="b", received_at=now))
    canonical = CanonicalReport(
        report_id="ID-PLACEHOLDER", version=1, kind="violation", revision=1, org="b",
        received_at=now, occurred_at=now, week="2016-W09", area="madaya", party="gos",
        target="civilians", category="shelling", status="", subject="", killed=1, injured=0,
        beneficiaries=0, retracted=False, counts=True, exempt=False, exempt_reason="",
        verification="unverified", report_json="{}",
    ).model_dump_json().encode()  # fmt: skip
    for i in range(count):
        rid = f"s{i}".encode()
        producer.send(names.reports, key=rid, value=raw.replace(b"ID-PLACEHOLDER", rid))
        producer.send(names.events, key=rid, value=canonical.replace(b"ID-PLACEHOLDER", rid))
    producer.flush()
    producer.close()
    total = 2 * count
    with service("services.store", settings, f"{settings.query_url}/readyz"):
        url = settings.query_url
        while (written := rows_written(url)) == 0:
            time.sleep(0.05)
        started, first = time.perf_counter(), written
        while (written := rows_written(url)) < total:
            time.sleep(0.2)
        elapsed = time.perf_counter() - started
    return {"rows": total, "seconds": elapsed, "rows_per_s": (total - first) / elapsed}


async def _freshness(settings: Settings, rate: float, seconds: float) -> dict[str, Any]:
    keys = KeyStore(settings)
    partner = keys.create("bench-partner", Role.PARTNER, "bench")
    monitor = keys.create("bench-monitor", Role.MONITOR)
    areas = [a.code for a in area_list() if a.code != "tadmur"]
    rng = random.Random(3)
    batch_size = 50
    interval = batch_size / rate
    accepted = 0
    results: list[float] = []
    failures = 0

    def report(rid: str, occurred: str, area: str) -> dict[str, Any]:
        return {
            "report_id": rid, "kind": "violation", "occurred_at": occurred, "area": area,
            "perpetrator": "gos", "target": "civilians", "category": "shelling", "killed": 1,
            "source": "witness", "confidence": "medium",
        }  # fmt: skip

    ingest = httpx.AsyncClient(base_url=settings.ingest_url, timeout=60,
                               headers={"Authorization": f"Bearer {partner}"})  # fmt: skip
    query = httpx.AsyncClient(base_url=settings.query_url, timeout=60,
                              headers={"Authorization": f"Bearer {monitor}"})  # fmt: skip

    async def send_batch(i: int) -> None:
        nonlocal accepted, failures
        reports = [
            report(
                f"load-{i}-{j}", f"2016-03-{rng.randint(1, 28):02d}T10:00:00Z", rng.choice(areas)
            )
            for j in range(batch_size)
        ]
        response = await ingest.post("/v1/reports/batch", json={"reports": reports})
        if response.status_code == 202:
            accepted += batch_size
        else:
            failures += 1

    async def probe(i: int) -> None:
        nonlocal failures
        monday = date(2010, 1, 4) + timedelta(weeks=i)  # a week of its own
        body = report(f"probe-{i}", f"{monday.isoformat()}T12:00:00Z", "tadmur")
        response = await ingest.post("/v1/reports", json=body)
        accepted_at = time.perf_counter()
        if response.status_code != 202:
            failures += 1
            return
        week = week_of_day(monday)
        while time.perf_counter() - accepted_at < 120:
            rows = (await query.get("/v1/metrics/weekly", params={"week": week})).json()["rows"]
            if rows:
                results.append(time.perf_counter() - accepted_at)
                return
            await asyncio.sleep(0.1)

    tasks: list[asyncio.Task[None]] = []
    started = time.perf_counter()
    batch = probe_no = 0
    while (elapsed := time.perf_counter() - started) < seconds:  # open loop: a fixed schedule
        if batch * interval <= elapsed:
            tasks.append(asyncio.create_task(send_batch(batch)))
            batch += 1
        elif probe_no <= elapsed:
            tasks.append(asyncio.create_task(probe(probe_no)))
            probe_no += 1
        else:
            await asyncio.sleep(min(batch * interval, probe_no) - elapsed)
    backlog = await asyncio.to_thread(_backlog, settings)  # where reports wait, at the end
    await asyncio.gather(*tasks)
    await ingest.aclose()
    await query.aclose()
    return {
        "offered_per_s": rate,
        "accepted_per_s": accepted / seconds,
        "seconds": seconds,
        "probes": probe_no,
        "probes_seen": len(results),
        "failed_requests": failures,
        "freshness_p50_s": percentile(results, 50),
        "freshness_p99_s": percentile(results, 99),
        "freshness_max_s": max(results) if results else float("nan"),
        "freshness_median_s": median(results) if results else float("nan"),
        "backlog_at_end": backlog,
    }


def _backlog(settings: Settings) -> dict[str, int]:
    """Records not yet processed per consumer group when the offered load stops."""
    names, groups = topic_names("be."), group_names("be.")
    return {
        "streams": sum(consumer_lag(settings.bootstrap_servers, groups.streams,
                                    [names.reports, names.folded]).values()),
        "store_sink": sum(consumer_lag(settings.bootstrap_servers, groups.store_sink,
                                       [names.events, names.metrics]).values()),
    }  # fmt: skip


def freshness_part(root: Path, bootstrap: str, rate: float, seconds: float) -> dict[str, Any]:
    settings = bench_settings(root / "e2e", kafka_bootstrap=bootstrap, topic_prefix="be.")
    ensure_all_topics(settings)
    with (
        service("streams", settings, f"{settings.streams_url}/readyz"),
        service("services.store", settings, f"{settings.query_url}/readyz"),
        service("services.ingest", settings, f"{settings.ingest_url}/readyz"),
    ):
        return asyncio.run(_freshness(settings, rate, seconds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--raw", type=int, default=10_000_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--sink-rows", type=int, default=200_000)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--parts", default="queries,sink,freshness")
    parser.add_argument("--name", default="store", help="results file bench/results/NAME.json")
    parser.add_argument("--load", metavar="DSN", help=argparse.SUPPRESS)  # the loader process
    args = parser.parse_args()
    if args.load:
        load(args.load, args.raw)
        return
    parts = set(args.parts.split(","))
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = bench_settings(root / "broker", kafka_partitions=4)
        with kafka(settings):
            bootstrap = settings.bootstrap_servers
            if "queries" in parts:
                result["queries"] = query_part(root, bootstrap, args.raw, args.queries)
                result["queries"]["load_average_after"] = os.getloadavg()  # the noise
                print(result["queries"], flush=True)
            if "sink" in parts:
                result["sink"] = sink_part(root, bootstrap, args.sink_rows)
                result["sink"]["load_average_after"] = os.getloadavg()  # the noise
                print(result["sink"], flush=True)
            if "freshness" in parts:
                result["freshness"] = freshness_part(root, bootstrap, args.rate, args.seconds)
                result["freshness"]["load_average_after"] = os.getloadavg()  # the noise
                print(result["freshness"], flush=True)
    path = save(args.name, {"arguments": vars(args), **result})
    print(f"written to {path}")


if __name__ == "__main__":
    main()
