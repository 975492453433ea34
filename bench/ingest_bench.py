"""Ingest benchmark (issue 3): reports/s through the batch endpoint, and p50/p99 latency of
single-report POSTs at a fixed offered rate, against the real broker on this machine.

    .venv/bin/python -m bench.ingest_bench [--rate 1000] [--seconds 10] [--client aiohttp]

Open-loop load: single POSTs are scheduled at fixed times whatever the answers, so a slow
server shows up as latency rather than as a politely reduced rate.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson

from bench.common import bench_settings, kafka, median, percentile, save, service
from core.keys import KeyStore, Role
from services.runtime.topics import ensure_all_topics


def report(rid: str) -> dict[str, Any]:
    return {
        "report_id": rid,
        "kind": "violation",
        "occurred_at": "2016-02-29T10:00:00+02:00",
        "area": "madaya",
        "perpetrator": "gos",
        "target": "civilians",
        "category": "shelling",
        "killed": 1,
        "injured": 2,
        "source": "witness",
        "confidence": "medium",
    }


async def batch_run(url: str, key: str, batches: int, concurrency: int) -> float:
    """Reports per second over ``batches`` batches of 1,000 from ``concurrency`` clients."""
    headers = {"Authorization": f"Bearer {key}"}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(batches):
        queue.put_nowait(i)
    run = uuid.uuid4().hex[:6]

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            body = {"reports": [report(f"b{run}-{i}-{j}") for j in range(1000)]}
            response = await client.post(f"{url}/v1/reports/batch", json=body)
            assert response.status_code == 202, response.text

    async with httpx.AsyncClient(headers=headers, timeout=60) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        return batches * 1000 / (time.perf_counter() - started)


Post = Callable[[dict[str, Any]], Awaitable[bool]]


@asynccontextmanager
async def _httpx_poster(url: str, key: str) -> AsyncIterator[Post]:
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(headers=headers, timeout=30, limits=limits) as client:

        async def post(body: dict[str, Any]) -> bool:
            try:
                response = await client.post(f"{url}/v1/reports", json=body)
            except httpx.HTTPError:
                return False
            return response.status_code == 202

        yield post


@asynccontextmanager
async def _aiohttp_poster(url: str, key: str) -> AsyncIterator[Post]:
    """The lighter client: httpx's pool spends its CPU on queued requests once the server
    lags, and on 2 cores that CPU is taken from the server under test."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=64)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(
        headers=headers, connector=connector, timeout=timeout
    ) as session:

        async def post(body: dict[str, Any]) -> bool:
            try:
                async with session.post(f"{url}/v1/reports", data=orjson.dumps(body)) as response:
                    await response.read()
                    return response.status == 202
            except (aiohttp.ClientError, TimeoutError):
                return False

        yield post


POSTERS = {"httpx": _httpx_poster, "aiohttp": _aiohttp_poster}


async def _offer(
    url: str, key: str, rate: float, seconds: float, tag: str, client: str
) -> tuple[list[float], float]:
    """One load process: POSTs scheduled at fixed times (open loop); returns the latencies
    and the seconds from the first POST to the last answer."""
    latencies: list[float] = []
    async with POSTERS[client](url, key) as post:

        async def one(i: int) -> None:
            started = time.perf_counter()
            ok = await post(report(f"s{tag}-{i}"))
            latencies.append(time.perf_counter() - started if ok else float("inf"))

        tasks = []
        begin = time.perf_counter()
        for i in range(int(rate * seconds)):
            delay = begin + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - begin
    return latencies, elapsed


def _offer_process(args: tuple[str, str, float, float, str, str]) -> tuple[list[float], float]:
    return asyncio.run(_offer(*args))


def single_run(
    url: str, key: str, rate: float, seconds: float, procs: int, client: str
) -> dict[str, float]:
    """``rate`` requests/s offered by ``procs`` processes (one Python client cannot offer it)."""
    run = uuid.uuid4().hex[:6]
    jobs = [(url, key, rate / procs, seconds, f"{run}{p}", client) for p in range(procs)]
    with multiprocessing.get_context("spawn").Pool(procs) as pool:
        parts = pool.map(_offer_process, jobs)
    latencies = [x for part, _ in parts for x in part]
    elapsed = max(seconds for _, seconds in parts)  # not counting the processes' start-up
    ok = [x for x in latencies if x != float("inf")]
    return {
        "offered_per_s": rate,
        "achieved_per_s": len(ok) / elapsed,
        "p50_ms": percentile(ok, 50) * 1000,
        "p99_ms": percentile(ok, 99) * 1000,
        "errors": len(latencies) - len(ok),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--name", default="ingest", help="results file name")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--procs", type=int, default=4, help="load-generating processes")
    parser.add_argument(
        "--client",
        choices=sorted(POSTERS),
        default="httpx",
        help="HTTP client of the single-POST load processes",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = bench_settings(Path(tmp), topic_prefix="bench.")
        with kafka(settings):
            ensure_all_topics(settings)
            key = KeyStore(settings).create("bench", Role.PARTNER, "bench")
            with service("services.ingest", settings, f"{settings.ingest_url}/readyz"):
                url = settings.ingest_url
                asyncio.run(batch_run(url, key, 3, 1))  # warm-up
                batch = [
                    asyncio.run(batch_run(url, key, args.batches, args.concurrency))
                    for _ in range(args.repeats)
                ]
                singles = [
                    single_run(url, key, args.rate, args.seconds, args.procs, args.client)
                    for _ in range(args.repeats)
                ]
    result = {
        "batch_reports_per_s": {"runs": batch, "median": median(batch)},
        "single_post": {
            "client": args.client,
            "procs": args.procs,
            "runs": singles,
            "median_p50_ms": median(s["p50_ms"] for s in singles),
            "median_p99_ms": median(s["p99_ms"] for s in singles),
            "median_achieved_per_s": median(s["achieved_per_s"] for s in singles),
        },
    }
    path = save(args.name, result)
    print(f"batch endpoint: {result['batch_reports_per_s']['median']:.0f} reports/s (median)")
    single = result["single_post"]
    print(
        f"single POST at {args.rate:.0f}/s offered: p50 {single['median_p50_ms']:.1f} ms, "
        f"p99 {single['median_p99_ms']:.1f} ms, achieved {single['median_achieved_per_s']:.0f}/s"
    )
    print(f"written to {path}")


if __name__ == "__main__":
    main()
