"""Random logs of the reports topic for the raw-log recomputation, and the way to store
them as the store's sink does (raw envelopes, the stream's canonical reports and metric
snapshots) without Kafka.

Unlike the stream property test's logs these are valid envelopes throughout (the store
decodes every record), and revisions change anything: kind, subject, area, perpetrator,
occurred_at. Arrival order is the log order; ``received_at`` grows along it, so a prefix
of the log is what was known at a time."""

from __future__ import annotations

import hashlib
import zlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import strategies as st

from schemas import parties
from services.store.database import Database
from services.store.rows import TABLES, Row, canonical_row, metric_row, raw_row

AREAS = ["madaya", "daraya", "raqqa"]
PARTIES = ["gos", "fsa", "isil", "nusra"]
DESIGNATED = {code: party.designated for code, party in parties().items()}
DESIGNATED_CODES = {code for code, designated in DESIGNATED.items() if designated}
DAYS = [f"2016-02-{d:02d}T{h:02d}:00:00Z" for d in (22, 26, 29) for h in (1, 23)] + [
    "2016-03-08T12:00:00+05:00",
    "2016-01-04T00:30:00+01:00",  # 2016-01-03 in UTC: ISO week 2015-W53
]
ENDS = ["2016-03-01T00:00:00Z", "2016-03-09T00:00:00Z"]
FIELD_KINDS = ["violation", "delivery", "access_request"]
FIRST_RECEIVED = datetime(2016, 3, 10, tzinfo=UTC)
PARTITIONS = 3


def received(position: int) -> datetime:
    """When the record at this log position arrived: one minute after the one before."""
    return FIRST_RECEIVED + timedelta(minutes=position)


def envelope(report: dict[str, Any], org: str, position: int = 0) -> dict[str, Any]:
    content = orjson.dumps(report, option=orjson.OPT_SORT_KEYS)
    return {
        "report": report,
        "org": org,
        "key_name": f"{org}-key",
        "received_at": received(position).isoformat().replace("+00:00", "Z"),
        "schema_version": 1,
        "content_hash": hashlib.sha256(content).hexdigest(),
    }


@st.composite
def body(
    draw: st.DrawFn, rid: str, kind: str, revision: int, subjects: list[str]
) -> dict[str, Any]:
    """One whole revision of a report of ``kind``; every field drawn afresh."""
    occurred = draw(st.sampled_from(DAYS))
    report: dict[str, Any] = {
        "report_id": rid,
        "revision": revision,
        "kind": kind,
        "occurred_at": occurred,
        "retracted": draw(st.booleans().map(lambda b: b and revision > 1)),
    }
    if kind != "verification":
        report["area"] = draw(st.sampled_from(AREAS))
    if kind == "violation":
        report.update(
            perpetrator=draw(st.sampled_from(PARTIES)),
            target=draw(st.sampled_from(["civilians", "infrastructure", *PARTIES])),
            category="shelling",
            killed=draw(st.integers(0, 5)),
            injured=draw(st.integers(0, 5)),
            source="witness",
            confidence="medium",
        )
    elif kind == "delivery":
        report.update(
            agency="WFP",
            modality="convoy",
            status=draw(st.sampled_from(["completed", "partial", "blocked", "cancelled"])),
            beneficiaries=draw(st.integers(0, 1000)),
        )
    elif kind == "access_request":
        report["status"] = draw(st.sampled_from(["submitted", "approved", "denied", "withdrawn"]))
    elif kind == "incident":  # members among the subjects (and one that never arrives)
        report.update(
            members=draw(
                st.lists(st.sampled_from([*subjects, "ghost"]), min_size=2, max_size=4, unique=True)
            ),
            perpetrator=draw(st.sampled_from(PARTIES)),
            target=draw(st.sampled_from(["civilians", "infrastructure", *PARTIES])),
            category="shelling",
            killed=draw(st.integers(0, 5)),
            injured=draw(st.integers(0, 5)),
        )
    elif kind == "designation":
        report["party"] = draw(st.sampled_from(sorted(DESIGNATED_CODES)))
        start = datetime.fromisoformat(occurred)
        ends = [e for e in ENDS if datetime.fromisoformat(e) > start]
        if ends and draw(st.booleans()):
            report["effective_to"] = draw(st.sampled_from(ends))
    else:
        report.update(
            subject=draw(st.sampled_from(subjects)),
            status=draw(st.sampled_from(["verified", "disputed", "rejected", "unverified"])),
        )
    return report


@st.composite
def raw_logs(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A log in arrival order: duplicates, conflicts, foreign revisions, revisions out of
    order, retractions, kind and subject changes, verifications, late designations, and
    incidents whose revisions list other members."""
    violations = [f"v{i}" for i in range(draw(st.integers(1, 8)))]
    plan = [(rid, "violation") for rid in violations]
    plan += [(f"d{i}", "delivery") for i in range(draw(st.integers(0, 4)))]
    plan += [(f"a{i}", "access_request") for i in range(draw(st.integers(0, 4)))]
    plan += [(f"g{i}", "designation") for i in range(draw(st.integers(0, 2)))]
    plan += [(f"ver{i}", "verification") for i in range(draw(st.integers(0, 5)))]
    plan += [(f"inc{i}", "incident") for i in range(draw(st.integers(0, 3)))]
    records: list[tuple[dict[str, Any], str]] = []
    for rid, kind in plan:
        field_report = kind in FIELD_KINDS
        org = draw(st.sampled_from(["sarc", "wfp"])) if field_report else "taskforce"
        for revision in range(1, draw(st.integers(1, 3)) + 1):
            now = kind
            if field_report and draw(st.integers(0, 5)) == 0:  # the kind changes
                now = draw(st.sampled_from(FIELD_KINDS))
            report = draw(body(rid, now, revision, violations))
            records.append((report, org))
            if draw(st.integers(0, 4)) == 0:  # a retry: exact duplicate
                records.append((report, org))
            if draw(st.integers(0, 6)) == 0:  # same revision, other content: conflict
                records.append(({**report, "occurred_at": DAYS[0]}, org))
            if draw(st.integers(0, 6)) == 0:  # another organisation's revision: refused
                records.append(({**report, "revision": revision + 5}, "intruder"))
    order = draw(st.permutations(range(len(records))))
    return [envelope(*records[i], position) for position, i in enumerate(order)]


def partition_of(report_id: str) -> int:
    """Every record of one report in one partition, as ingest keys them."""
    return zlib.crc32(report_id.encode()) % PARTITIONS


def raw_rows(log: Iterable[Mapping[str, Any]]) -> list[Row]:
    """The raw_reports rows of a log, with offsets per partition in log order."""
    offsets: dict[int, int] = defaultdict(int)
    rows: list[Row] = []
    for record in log:
        partition = partition_of(str(record["report"]["report_id"]))
        rows += raw_row(orjson.dumps(record), partition, offsets[partition])
        offsets[partition] += 1
    return rows


def stream_rows(
    canonical: Iterable[Mapping[str, Any]], metrics: Iterable[Mapping[str, Any]]
) -> list[Row]:
    """The stream's outputs (canonical reports and metric snapshots) as the sink stores them."""
    rows: list[Row] = []
    for record in canonical:
        rows += canonical_row(orjson.dumps(record), 0, 0)
    for record in metrics:
        rows += metric_row(orjson.dumps(record), 0, 0)
    return rows


def store(db: Database, rows: Iterable[Row]) -> None:
    """Insert rows table by table, with the sink's column lists."""
    by_table: dict[str, list[list[Any]]] = defaultdict(list)
    for row in rows:
        by_table[row.table].append(row.values)
    for table, values in by_table.items():
        db.insert(table, values, TABLES[table])


def reference_rows(
    compliance: Mapping[tuple[str, str, str], Mapping[str, int]],
    access: Mapping[tuple[str, str], Mapping[str, int]],
) -> dict[str, list[dict[str, Any]]]:
    """The reference fold's rows in :func:`services.store.recompute.recompute`'s shape."""
    return {
        "compliance": [
            {"week": w, "area": a, "party": p, **counts}
            for (w, a, p), counts in sorted(compliance.items())
        ],
        "access": [{"week": w, "area": a, **counts} for (w, a), counts in sorted(access.items())],
    }
