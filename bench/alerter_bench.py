"""Alerter latency benchmark (issue 6): from the 202 of the report that crosses the spike
threshold to the webhook receiving the alert, through the real ingest API, stream worker
and alerter on a private broker.

Each trial posts four violations in one area and day (below the rule's minimum of five),
then the fifth alone, and times that POST's 202 to the receiver's arrival. Trials cycle
through areas and move 60 days on when the areas are used up, so every spike is judged
against a quiet baseline.

    .venv/bin/python -m bench.alerter_bench [--trials 30] [--group-wait 1s]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.common import bench_settings, kafka, percentile, save, service
from core.keys import KeyStore, Role
from schemas import area_list
from services.runtime.topics import ensure_all_topics
from tests.support.ingest import violation
from tests.support.receiver import Receiver, http_receiver

SECRET = "bench-webhook-secret-0123456789abcdef"


def trial(url: str, headers: dict[str, str], hook: Receiver, area: str, day: datetime) -> float:
    stamp = day.strftime("%Y-%m-%d")
    reports = [
        violation(f"bench-{area}-{stamp}-{i}", area=area, occurred_at=f"{stamp}T{8 + i:02d}:00:00Z")
        for i in range(5)
    ]
    first = httpx.post(url, json={"reports": reports[:4]}, headers=headers, timeout=30)
    assert first.status_code == 202, first.text
    before = len(hook.on("/bench"))
    last = httpx.post(url, json={"reports": reports[4:]}, headers=headers, timeout=30)
    accepted = time.monotonic()
    assert last.status_code == 202, last.text
    deadline = accepted + 120
    while time.monotonic() < deadline:
        calls = hook.on("/bench")[before:]
        for call in calls:
            if any(a["area"] == area for a in call.json()["alerts"]):
                return call.at - accepted
        time.sleep(0.01)
    raise TimeoutError(f"no webhook for {area} on {stamp}")


def run(trials: int, group_wait: str) -> dict[str, Any]:
    areas = [a.code for a in area_list()]
    with tempfile.TemporaryDirectory(prefix="truce-alerter-bench-") as tmp, http_receiver() as hook:
        config = Path(tmp) / "alerter.yaml"
        config.write_text(yaml.safe_dump({
            "version": 1,
            "defaults": {"group_wait": group_wait, "group_interval": "1s"},
            "receivers": [{"name": "bench", "kind": "webhook", "url": hook.url("/bench"),
                           "secret": SECRET}],
            "routes": [{"match": {"rule": "violation_spike"}, "receivers": ["bench"],
                        "group_by": ["rule", "area"]}],
        }))  # fmt: skip
        settings = bench_settings(Path(tmp) / "home", alerter_config=config, kafka_partitions=4)
        with kafka(settings):
            ensure_all_topics(settings)
            key = KeyStore(settings).create("bench", Role.PARTNER, "bench")
            headers = {"Authorization": f"Bearer {key}"}
            with (
                service("services.ingest", settings, f"{settings.ingest_url}/readyz"),
                service("streams", settings, f"{settings.streams_url}/readyz"),
                service("services.alerter", settings, f"{settings.alerter_url}/readyz"),
            ):
                url = f"{settings.ingest_url}/v1/reports/batch"
                start = datetime(2016, 3, 1, tzinfo=UTC)
                latencies = []
                for i in range(trials):
                    day = start + timedelta(days=60 * (i // len(areas)))
                    latencies.append(trial(url, headers, hook, areas[i % len(areas)], day))
                    print(f"trial {i + 1}/{trials}: {latencies[-1]:.2f} s", flush=True)
    return {
        "trials": trials,
        "group_wait": group_wait,
        "latency_s": {
            "p50": round(percentile(latencies, 50), 3),
            "p99": round(percentile(latencies, 99), 3),
            "max": round(max(latencies), 3),
            "min": round(min(latencies), 3),
        },
        "all_s": [round(x, 3) for x in latencies],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--group-wait", default="1s")
    args = parser.parse_args()
    result = run(args.trials, args.group_wait)
    path = save(f"alerter-gw{args.group_wait}", result)
    print(result["latency_s"], "->", path)


if __name__ == "__main__":
    main()
