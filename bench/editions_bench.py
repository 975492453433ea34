"""Editions benchmark (issue 18): on the raw log of bench/recompute_bench.py (generated
by ClickHouse, with the stream's outputs written from one recount), how long it takes to
freeze an edition of one week (the raw-log recount at a log position, rendered in five
formats), to serve the current report of that week with its restatements against the
edition, and to serve an as-of report. The edition is pinned at 90 % of each partition, so
the last tenth of the log is what the restatements name. Embedded chDB, fresh data path;
each timing is the median of ``--rounds`` runs.

    .venv/bin/python -m bench.editions_bench [--revisions 200000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import tempfile
from datetime import UTC, datetime

from bench.common import median, save
from bench.recompute_bench import load, timed
from services.store.database import Database
from services.store.editions import Pin, Restated, current_report, freeze
from services.store.rows import TABLES, edition_row
from services.store.weekly.assemble import weekly_report

WEEK = "2016-W09"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--revisions", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--name", help="results file bench/results/NAME.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="truce-editions-") as path:
        db = Database(f"chdb://{path}")
        db.migrate()
        try:
            loading = load(db, args.revisions)
            ends = db.rows("SELECT kafka_partition AS p, count() AS n FROM raw_reports "
                           "GROUP BY kafka_partition")  # fmt: skip
            pin = Pin({int(r["p"]): int(r["n"]) * 9 // 10 for r in ends}, None)
            now = datetime.now(UTC)
            freeze_s, record = timed(args.rounds, lambda: freeze(db, WEEK, 1, pin, now))
            (row,) = edition_row(record.model_dump_json().encode(), 0, 0)
            db.insert(row.table, [row.values], TABLES[row.table])
            current_s, report = timed(args.rounds, lambda: current_report(db, WEEK))
            cache = Restated()
            current_report(db, WEEK, restated=cache)
            cached_s, _ = timed(args.rounds, lambda: current_report(db, WEEK, restated=cache))
            stream_s, _ = timed(args.rounds, lambda: weekly_report(db, WEEK))
            as_of = datetime(2016, 3, 7, 12, tzinfo=UTC)
            as_of_s, _ = timed(args.rounds, lambda: weekly_report(db, WEEK, as_of=as_of))
            raw = db.rows("SELECT count() AS n FROM raw_reports")[0]["n"]
        finally:
            db.close()
    causes = sum(len(x.because) for x in report.restatements)
    result = {
        "arguments": vars(args),
        "rows": {"raw_reports": raw, "edition_position": sum(pin.offsets.values())},
        "loading": loading,
        "edition_bytes": {k: len(v.encode()) for k, v in record.renderings.items()},
        "freeze_edition_s": {"median": median(freeze_s), "rounds": freeze_s},
        "current_report_with_restatements_s": {"median": median(current_s), "rounds": current_s},
        "current_report_restatements_cached_s": {"median": median(cached_s), "rounds": cached_s},
        "current_report_without_editions_s": {"median": median(stream_s), "rounds": stream_s},
        "as_of_report_s": {"median": median(as_of_s), "rounds": as_of_s},
        "restatements": len(report.restatements),
        "restatement_causes": causes,
    }
    out = save(args.name or f"editions-{args.revisions}", result)
    print(
        f"{raw:,} raw records: freeze {median(freeze_s):.2f} s, current report with "
        f"{len(report.restatements):,} restatements ({causes:,} causes) {median(current_s):.2f} s "
        f"(cached {median(cached_s):.2f} s, stream only {median(stream_s):.2f} s), "
        f"as-of {median(as_of_s):.2f} s -> {out}"
    )


if __name__ == "__main__":
    main()
