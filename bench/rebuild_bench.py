"""`truce rebuild` benchmark (issue 7): report revisions replayed per second when every
projection (stream state, derived topics, ClickHouse tables) is rebuilt from the log,
on the whole local stack (broker, ingest, stream worker, store) in a temporary home.

    .venv/bin/python -m bench.rebuild_bench [--reports 100000]

The rate is counted from the moment the rebuilt stack is ready until every consumer
group has caught up (the stream worker and the ClickHouse sink); the wall time of the
whole verb (reading the metrics before, stopping, resetting, restarting, verifying) is
reported next to it.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from bench.common import bench_settings, save
from bench.streams_bench import produce
from schemas import topic_names
from services.rebuild import rebuild
from services.runtime import control


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reports", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = bench_settings(Path(tmp), kafka_partitions=4)
        os.environ.update(settings.as_env())  # the supervisor's children read the env
        control.start_detached(settings)
        try:
            produce(settings.bootstrap_servers, topic_names().reports, args.reports)
            started = time.perf_counter()
            control.wait_until_idle(settings, timeout_s=7200)
            first_pass = time.perf_counter() - started
            started = time.perf_counter()
            result = rebuild(settings, timeout_s=7200)
            wall = time.perf_counter() - started
        finally:
            control.stop_stack(settings)
    summary = {
        "reports": result.reports,
        "first_pass_seconds": first_pass,
        "first_pass_per_s": args.reports / first_pass,
        "replay_seconds": result.seconds,
        "replay_per_s": result.rate,
        "rebuild_wall_seconds": wall,
        "metrics_unchanged": not result.differences,
        "verified": result.verified,
    }
    path = save(f"rebuild-{args.reports}", summary)
    print(
        f"{result.reports} revisions: replayed at {result.rate:.0f}/s "
        f"({result.seconds:.0f} s; whole rebuild {wall:.0f} s; first pass "
        f"{summary['first_pass_per_s']:.0f}/s); unchanged={not result.differences} "
        f"verified={result.verified}; written to {path}"
    )


if __name__ == "__main__":
    main()
