"""The sync feed (CONTRACT 10): every accepted revision in log order, after a cursor, so a
client or an outside mirror keeps a copy of the reports it may see, retractions included.

The cursor is the next offset to read in each partition of the reports topic
(``0.124-1.457``: partition 0 from offset 124, partition 1 from 457; a partition not named
starts at 0). Offsets only grow, so a page is a prefix of each partition's records and a
record the store's sink writes later is never skipped; across partitions a page is
interleaved by receipt time. A partner's feed holds its own organisation's revisions."""

from __future__ import annotations

import heapq
import re
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query
from pydantic import BaseModel

from core.errors import InvalidInput
from core.keys import Role
from core.openapi import AUTHENTICATED, problems
from services.store.database import Database
from services.store.routes import Anyone, State, as_utc

MAX_LIMIT = 1000
_CURSOR = re.compile(r"^(\d{1,5}\.\d{1,19})(-\d{1,5}\.\d{1,19})*$")

CHANGES = """
SELECT kafka_partition, kafka_offset, report_id, revision, kind, org, received_at,
       retracted, report_json
FROM raw_reports FINAL
WHERE kafka_offset >= {offsets:Array(UInt64)}[indexOf({partitions:Array(UInt32)}, kafka_partition)]
  AND ({org:String} = '' OR org = {org:String})
ORDER BY kafka_partition, kafka_offset
LIMIT {limit:UInt32} BY kafka_partition
"""


def parse_cursor(text: str | None) -> dict[int, int]:
    """``0.124-1.457`` → {0: 124, 1: 457}; empty: from the beginning."""
    if not text:
        return {}
    if not _CURSOR.match(text):
        raise InvalidInput(
            f"cursor {text[:80]!r} is not one this feed gave out",
            errors=[{"loc": ["query", "after"], "msg": "expected the 'next' of a page"}],
        )
    pairs = (part.split(".") for part in text.split("-"))
    return {int(partition): int(offset) for partition, offset in pairs}


def format_cursor(starts: dict[int, int]) -> str:
    return "-".join(f"{p}.{o}" for p, o in sorted(starts.items()))


class Change(BaseModel):
    report_id: str
    revision: int
    kind: str
    org: str
    received_at: datetime
    retracted: bool
    partition: int
    offset: int
    report: dict[str, Any]


class Changes(BaseModel):
    changes: list[Change]
    next: str
    """The cursor of the next page; the same as ``after`` when nothing new has come."""


def changes(db: Database, starts: dict[int, int], org: str, limit: int) -> Changes:
    # a partition not named is not found (index 0), and element 0 of an array is 0: it
    # starts at its beginning
    partitions = sorted(starts)
    rows = db.rows(CHANGES, partitions=partitions, offsets=[starts[p] for p in partitions],
                   org=org, limit=limit)  # fmt: skip
    by_partition: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        by_partition.setdefault(int(row["kafka_partition"]), []).append(row)
    merged = heapq.merge(
        *by_partition.values(),
        key=lambda r: (r["received_at"], r["kafka_partition"], r["kafka_offset"]),
    )  # each partition's rows stay in offset order: every page is a prefix of each
    page = [row for row, _ in zip(merged, range(limit), strict=False)]
    following = dict(starts)
    for row in page:
        following[int(row["kafka_partition"])] = int(row["kafka_offset"]) + 1
    return Changes(
        changes=[
            Change(
                report_id=row["report_id"],
                revision=row["revision"],
                kind=row["kind"],
                org=row["org"],
                received_at=as_utc(row["received_at"]),
                retracted=row["retracted"],
                partition=row["kafka_partition"],
                offset=row["kafka_offset"],
                report=orjson.loads(row["report_json"]),
            )
            for row in page
        ],
        next=format_cursor(following),
    )


router = APIRouter()


@router.get(
    "/v1/changes",
    summary="Every accepted revision after a cursor, in log order (a sync feed)",
    response_model=Changes,
    responses=problems(*AUTHENTICATED, 422),
)
def changes_route(
    st: State,
    key: Anyone,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 500,
) -> Changes:
    org = (key.org or "") if key.role is Role.PARTNER else ""  # a partner key has an org
    return changes(st.db, parse_cursor(after), org, limit)
