"""Tamper-evident log benchmark (issue 18): what the log costs beside ingest, how fast an
inclusion proof is at ``--leaves`` leaves, and how long an audit of all of them takes.

On embedded chDB at a fresh data path, ``--leaves`` synthetic report records (about 480
bytes each, like ingest's envelopes: violations, deliveries, access requests, corrections,
retractions, duplicates, verifications, a designation every 5,000) spread over four
partitions are written to ``log_entries`` as the sink writes them (with their leaf hash),
in batches of 5,000. Then the store's log keeper (its real code, without Kafka) applies
signed heads of ``--head-every`` leaves each, as the publisher would every minute; then
1,000 inclusion proofs of random leaves are made as the endpoint makes them (find the
leaf, the audit path, the root), and the partner's ownership lookup; finally the whole log
is audited through the real ``/v1/log/entries`` route (FastAPI in-process, pages of
10,000, stdlib JSON on the auditor's side): signature, root over every entry, and the
auditor's recount of every weekly row.

    .venv/bin/python -m bench.merkle_bench [--leaves 1000000] [--head-every 60000]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import tempfile
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.testclient import TestClient

from bench.common import percentile, save
from core.http import install_problem_handlers
from services.store.database import Database
from services.store.log.keeper import LogKeeper
from services.store.log.routes import router
from services.store.log.signer import load_or_create
from services.store.rows import TABLES, log_entry_row
from truce_audit import client, recount
from truce_audit.audit import verify_log

PARTITIONS = 4
AREAS = ["madaya", "daraya", "raqqa", "idleb", "douma", "zabadani", "fouah", "aleppo_east"]
PARTIES = ["gos", "fsa", "isil", "nusra", "ypg", "ru"]


def _envelope(i: int, report: dict[str, Any], org: str) -> bytes:
    content = orjson.dumps(report, option=orjson.OPT_SORT_KEYS)
    return orjson.dumps(
        {
            "report": report,
            "org": org,
            "key_name": f"{org}-key-1",
            "received_at": f"2016-03-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00.000Z",
            "schema_version": 1,
            "content_hash": hashlib.sha256(content).hexdigest(),
        }
    )


def records(n: int, seed: int = 18) -> Iterator[tuple[str, bytes]]:
    """(report id, record value) in log order."""
    rng = random.Random(seed)
    last_first = b""
    for i in range(n):
        slot = i % 20
        day = (
            f"2016-{2 + (i // 20) % 2:02d}-{1 + (i // 20) % 28:02d}T{rng.randrange(24):02d}:00:00Z"
        )
        base: dict[str, Any] = {"revision": 1, "occurred_at": day, "retracted": False,
                                "area": AREAS[rng.randrange(len(AREAS))]}  # fmt: skip
        if i % 5000 == 4999:
            rid = f"g{i}"
            yield (
                rid,
                _envelope(
                    i,
                    {
                        **base,
                        "report_id": rid,
                        "kind": "designation",
                        "party": "nusra",
                        "effective_to": None,
                    },
                    "taskforce",
                ),
            )
            continue
        rid = f"r{i // 20}-{slot if slot < 15 else slot - 15}"
        if slot < 12 or slot in (15, 16):
            report = {**base, "report_id": rid, "kind": "violation",
                      "perpetrator": PARTIES[rng.randrange(len(PARTIES))],
                      "target": "civilians", "category": "shelling",
                      "killed": rng.randrange(6), "injured": rng.randrange(9),
                      "source": "witness", "confidence": "medium", "lat": None, "lon": None,
                      "description": "Shelling of a residential block, two witnesses."}  # fmt: skip
            if slot >= 15:
                report["revision"] = 2
                report["retracted"] = slot == 16
        elif slot < 14:
            report = {**base, "report_id": rid, "kind": "delivery", "agency": "WFP",
                      "modality": "convoy", "status": "completed",
                      "beneficiaries": rng.randrange(5000), "trucks": 12}  # fmt: skip
        elif slot in (14, 19):
            report = {**base, "report_id": rid, "kind": "access_request",
                      "status": "submitted" if slot == 14 else "approved",
                      "request_ref": f"UN-{i}", "beneficiaries_planned": 2000,
                      "revision": 1 if slot == 14 else 2}  # fmt: skip
            rid = f"r{i // 20}-14"
            report["report_id"] = rid
        elif slot == 17:  # an exact duplicate of slot 0's record (a retry)
            yield f"r{i // 20}-0", last_first
            continue
        else:
            rid = f"ver{i // 20}"
            report = {**base, "report_id": rid, "kind": "verification",
                      "subject": f"r{i // 20}-1", "status": "verified"}  # fmt: skip
            del report["area"]
        value = _envelope(i, report, "taskforce" if report["kind"] == "verification" else "sarc")
        if slot == 0:
            last_first = value
        yield rid, value


def load(db: Database, n: int) -> tuple[dict[str, int], float]:
    """Write the records as the sink does; their end offsets and the rows/s of the inserts."""
    offsets = [0] * PARTITIONS
    batch: list[list[Any]] = []
    spent = 0.0
    for rid, value in records(n):
        p = zlib.crc32(rid.encode()) % PARTITIONS
        batch += [row.values for row in log_entry_row(value, p, offsets[p])]
        offsets[p] += 1
        if len(batch) == 5000:
            started = time.perf_counter()
            db.insert("log_entries", batch, TABLES["log_entries"])
            spent += time.perf_counter() - started
            batch = []
    if batch:
        started = time.perf_counter()
        db.insert("log_entries", batch, TABLES["log_entries"])
        spent += time.perf_counter() - started
    return {str(p): o for p, o in enumerate(offsets)}, n / spent


def heads_over(keeper: LogKeeper, ends: dict[str, int], every: int, home: Path) -> list[float]:
    """Apply signed heads of about ``every`` leaves each, as the publisher does; seconds each."""
    signer = load_or_create(home / "key.pem", create=True)
    total = sum(ends.values())
    steps = max(1, total // every)
    spent: list[float] = []
    keeper.signer = signer
    for k in range(1, steps + 1):
        offsets = {p: (e * k) // steps for p, e in ends.items()}
        started = time.perf_counter()
        with keeper._lock:  # what publishing and reading the head back do, without Kafka
            head = keeper.build_head(offsets)
            assert head is not None
            keeper._apply(head)
        spent.append(time.perf_counter() - started)
        assert keeper.current_head() == head, "the head did not apply"
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--head-every", type=int, default=60_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="merkle-bench-") as tmp:
        db = Database(f"chdb://{tmp}/clickhouse")
        db.migrate()
        started = time.perf_counter()
        ends, insert_rate = load(db, args.leaves)
        loaded_s = time.perf_counter() - started
        print(
            f"wrote {args.leaves:,} log entries in {loaded_s:.1f} s "
            f"({insert_rate:,.0f} rows/s inserting)"
        )
        keeper = LogKeeper(
            db=db,
            cluster="unused:0",
            heads_topic="h",
            reports_topic="r",
            sink_group="g",
            signer=None,
            interval_s=60.0,
        )
        spent = heads_over(keeper, ends, args.head_every, Path(tmp))
        head = keeper.current_head()
        assert head is not None
        append_rate = head.tree_size / sum(spent)
        print(
            f"{len(spent)} heads, {head.tree_size:,} leaves: {append_rate:,.0f} leaves/s "
            f"(largest head {max(spent):.2f} s)"
        )

        rng = random.Random(9)
        proof_ms, partner_ms = [], []
        for _ in range(1000):
            index = rng.randrange(head.tree_size)
            leaf = keeper.tree.leaf(index)
            started = time.perf_counter()
            found = keeper.tree.index_of(leaf, head.tree_size)
            assert found is not None
            keeper.tree.inclusion(found, head.tree_size)
            keeper.tree.root(head.tree_size)
            proof_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            keeper.entries(found, found + 1)
            partner_ms.append((time.perf_counter() - started) * 1000)
        print(
            f"inclusion proof at {head.tree_size:,} leaves: p50 {percentile(proof_ms, 50):.1f} ms, "
            f"p99 {percentile(proof_ms, 99):.1f} ms, max {max(proof_ms):.1f} ms; "
            f"partner's ownership lookup adds p50 {percentile(partner_ms, 50):.1f} ms"
        )

        app = FastAPI()
        install_problem_handlers(app)
        app.include_router(router)
        app.state.store = SimpleNamespace(  # the real routes over the keeper; no auth here
            log=keeper,
            settings=SimpleNamespace(log_head_interval_s=60.0),
            auth_any=lambda request: None,
            auth_reader=lambda request: None,
        )
        http = TestClient(app)

        def fetch(path: str, query: dict[str, Any]) -> Any:
            import json

            answer = http.get(path, params=query)
            assert answer.status_code == 200, answer.text
            return json.loads(answer.content)

        key = keeper.signer.public_raw if keeper.signer else b""
        started = time.perf_counter()
        fold = recount.Fold()
        outcome = verify_log(head.public(), key, client.entries(fetch, head.tree_size), None, fold)
        count = recount.count(fold, {"isil", "nusra"})
        weeks = {w for w, *_ in count.compliance}
        for week in weeks:
            recount.weekly_rows(count, week)
        audit_s = time.perf_counter() - started
        print(
            f"audit of {outcome.tree_size:,} entries through /v1/log/entries: {audit_s:.1f} s "
            f"({len(count.compliance):,} compliance rows, {len(count.access):,} access rows)"
        )
        db.close()
    path = save(
        f"merkle-{args.leaves}",
        {
            "leaves": args.leaves,
            "log_entries_insert_rows_per_s": round(insert_rate),
            "heads": len(spent),
            "append_leaves_per_s": round(append_rate),
            "largest_head_s": round(max(spent), 3),
            "inclusion_proof_ms": {
                "p50": round(percentile(proof_ms, 50), 2),
                "p99": round(percentile(proof_ms, 99), 2),
                "max": round(max(proof_ms), 2),
            },
            "partner_lookup_ms_p50": round(percentile(partner_ms, 50), 2),
            "audit_s": round(audit_s, 1),
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
    )
    print(f"saved {path}")


if __name__ == "__main__":
    main()
