"""`truce rebuild` benchmark (issue 7): report revisions replayed per second when every
projection (stream state, derived topics, ClickHouse tables) is rebuilt from the log,
on the whole local stack (broker, ingest, stream worker, store) in a temporary home.

    .venv/bin/python -m bench.rebuild_bench [--reports 100000] [--workers 1,2] [--rounds 2]

The reports are produced and processed once; then the rebuild runs ``rounds`` times for
each number of stream workers, alternating, so that the worker counts are compared on
the same log under the same conditions. The rate is counted from the moment the rebuilt
stack is ready until every consumer group has caught up (the stream workers and the
ClickHouse sink); the wall time of the whole verb (reading the metrics before, stopping,
resetting, restarting, verifying) is reported next to it.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import bench_settings, median, save
from bench.streams_bench import produce
from core.settings import Settings
from schemas import topic_names
from services.rebuild import rebuild, replay_workers
from services.runtime import control


def one_rebuild(settings: Settings, workers: int) -> dict[str, Any]:
    started = time.perf_counter()
    result = rebuild(settings, timeout_s=7200, workers=workers)
    wall = time.perf_counter() - started
    run = {
        "workers": result.workers,
        "replay_seconds": result.seconds,
        "replay_per_s": result.rate,
        "rebuild_wall_seconds": wall,
        "metrics_unchanged": not result.differences,
        "verified": result.verified,
    }
    print(
        f"  {workers} worker(s): replayed at {result.rate:.0f}/s ({result.seconds:.0f} s; "
        f"whole rebuild {wall:.0f} s); unchanged={not result.differences} "
        f"verified={result.verified}",
        flush=True,
    )
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reports", type=int, default=100_000)
    parser.add_argument("--workers", default="", help="e.g. 1,2; default: truce's choice")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = bench_settings(Path(tmp), kafka_partitions=4)
        counts = [int(w) for w in args.workers.split(",") if w] or [replay_workers(settings)]
        os.environ.update(settings.as_env())  # the supervisor's children read the env
        control.start_detached(settings)
        try:
            produce(settings.bootstrap_servers, topic_names().reports, args.reports)
            started = time.perf_counter()
            control.wait_until_idle(settings, timeout_s=7200)
            first_pass = time.perf_counter() - started
            print(f"first pass (1 worker): {args.reports / first_pass:.0f}/s", flush=True)
            runs = [one_rebuild(settings, w) for _ in range(args.rounds) for w in counts]
        finally:
            control.stop_stack(settings)
    by_workers = {
        str(w): {
            "replay_per_s_median": median([r["replay_per_s"] for r in runs if r["workers"] == w]),
            "rebuild_wall_seconds_median": median(
                [r["rebuild_wall_seconds"] for r in runs if r["workers"] == w]
            ),
        }
        for w in counts
    }
    summary = {
        "reports": args.reports,
        "first_pass_seconds": first_pass,
        "first_pass_per_s": args.reports / first_pass,
        "runs": runs,
        "by_workers": by_workers,
        "all_metrics_unchanged": all(r["metrics_unchanged"] for r in runs),
        "all_verified": all(r["verified"] for r in runs),
    }
    if len(counts) > 1:
        base = by_workers[str(counts[0])]["replay_per_s_median"]
        summary["replay_ratio_to_first"] = {
            str(w): by_workers[str(w)]["replay_per_s_median"] / base for w in counts
        }
    path = save(f"rebuild-{args.reports}", summary)
    print(f"{by_workers}; written to {path}")


if __name__ == "__main__":
    main()
