"""Thin HTTP handlers of the ingest API."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
import structlog
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel

from core.body import read_json
from core.errors import TruceError
from core.http import Problem, as_problem
from core.keys import ApiKey, Role
from core.merkle import leaf_hash
from core.openapi import AUTHENTICATED, problems
from schemas.jsonschema import batch_schema, report_schema
from services.ingest.coordination import Claim, ClaimTimeout
from services.ingest.intake import Judged, judge
from services.ingest.ledger import Entry, Receipt, Verdict
from services.ingest.publisher import PublishUnavailable
from services.ingest.state import IngestState, ingest_state, state
from services.reference_api import reference_router

MAX_BATCH = 1000
LEDGER_RETRY_AFTER = "2"
"""Seconds a client waits while a restarted ingest reads its log (a few seconds at most
for a million reports)."""

IN_DOUBT_RETRY_AFTER = "5"
REFUSAL_IDS_LOGGED = 50

log = structlog.get_logger("ingest.submissions")
router = APIRouter()


def _submission(request: Request) -> tuple[IngestState, ApiKey]:
    """The state and the submitting key, resolved in the handler rather than through
    ``Depends``: FastAPI's dependency solving was a fifth of the loop's time per report."""
    st = ingest_state(request)
    try:
        return st, st.auth_submit(request)  # spends the key's token before the body is read
    except Problem as problem:
        if problem.status == 429:
            st.metrics.rejected.labels("rate_limited").inc()
        raise


async def _reader(request: Request) -> ApiKey:
    return (await state(request)).auth_any(request)


async def _accept(
    st: IngestState, key: ApiKey, items: list[Any], instances: list[str | None] | None = None
) -> Response:
    """Judge and publish the reports (``instances``: their OpenRosa instance ids)."""
    try:
        return await _judge_and_publish(st, key, items, instances)
    except TruceError as exc:
        _refused(key, items, as_problem(exc))
        raise


async def _judge_and_publish(
    st: IngestState, key: ApiKey, items: list[Any], instances: list[str | None] | None
) -> Response:
    if not st.follower.caught_up.is_set():
        # CONTRACT 6: a duplicate, 409 or 403 is never decided from a partial view of the
        # log; until the ledger has read it all, nothing is judged
        st.metrics.rejected.labels("ledger_loading").inc()
        raise Problem(
            503,
            "ingest is still reading the log of accepted reports after a restart and cannot "
            "yet tell new reports from resent ones; nothing was accepted",
            headers={"Retry-After": LEDGER_RETRY_AFTER},
        )
    now = datetime.now(UTC)
    ids = {_report_id(item) for item in items}
    async with st.locks.hold(ids), _claimed(st, ids) as claim:
        if not await st.settle_doubts(claim):
            st.metrics.rejected.labels("in_doubt").inc()
            raise Problem(
                503,
                "an earlier attempt of some of these reports got no answer from Kafka, and "
                "it cannot yet be told whether it was written; nothing was accepted",
                headers={"Retry-After": IN_DOUBT_RETRY_AFTER},
            )
        try:
            judged = judge(items, key, st.ledger, now, instances)
        except TruceError as exc:
            st.metrics.rejected.labels(str(as_problem(exc).status)).inc()
            raise
        fresh = [j for j in judged if j.verdict is Verdict.NEW]
        receipts = await _publish(st, fresh, claim)
    if fresh:
        st.metrics.reports.labels(Verdict.NEW.value).inc(len(fresh))
    if len(judged) > len(fresh):
        st.metrics.reports.labels(Verdict.DUPLICATE.value).inc(len(judged) - len(fresh))
    results = []
    for j in judged:
        report = j.envelope.report
        ident = (report.report_id, report.revision)
        receipt = receipts.get(ident) or st.ledger.receipt(*ident)
        results.append({**j.result, "receipt": receipt.as_json() if receipt else None})
    body = {"accepted": len(fresh), "duplicates": len(judged) - len(fresh), "results": results}
    return Response(orjson.dumps(body), status_code=202, media_type="application/json")


@asynccontextmanager
async def _claimed(st: IngestState, ids: set[str]) -> AsyncIterator[Claim]:
    """The ids held against the other ingest processes for the block (CONTRACT 2: one
    (id, revision) is accepted once, whichever process a resend reaches)."""
    try:
        async with st.coordination.claim(ids, st.settings.publish_timeout_s) as claim:
            yield claim
    except ClaimTimeout:
        st.metrics.rejected.labels("claimed").inc()
        raise Problem(
            503,
            "another request with some of these report ids is still being published; "
            "nothing was accepted",
            headers={"Retry-After": IN_DOUBT_RETRY_AFTER},
        ) from None


async def _publish(
    st: IngestState, fresh: list[Judged], claim: Claim
) -> dict[tuple[str, int], Receipt]:
    """Each fresh revision's receipt, once Kafka acknowledged them all."""
    if not fresh:
        return {}
    started = time.perf_counter()
    records = [j.record() for j in fresh]
    try:
        positions = await st.publisher.publish(records)
    except PublishUnavailable as exc:
        st.metrics.rejected.labels("kafka_unavailable").inc()
        claim.failed(j.envelope.report.report_id for j in fresh)
        await st.publisher.settled()  # released in doubt only once this producer sends no more
        raise Problem(
            503,
            f"{exc}; none of these reports was accepted",
            headers={"Retry-After": "5"},
        ) from exc
    st.metrics.publish_seconds.observe(time.perf_counter() - started)
    entries = [
        Entry(*j.ledger_entry, Receipt(leaf_hash(value), partition, offset), j.instance_id)
        for j, (_, value), (partition, offset) in zip(fresh, records, positions, strict=True)
    ]
    st.ledger.record_many(entries)
    claim.accepted.extend(entries)
    return {(e.report_id, e.revision): e.receipt for e in entries}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI request body for handlers that parse JSON themselves (for 400/413 control)."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


class ReceiptModel(BaseModel):
    """Where the revision is in the log (CONTRACT 6 and 8): its Merkle leaf hash (hex) and
    its record's partition and offset on the reports topic."""

    leaf_hash: str
    partition: int
    offset: int


class Result(BaseModel):
    report_id: str
    revision: int
    status: Literal["accepted", "duplicate"]
    receipt: ReceiptModel


class Accepted(BaseModel):
    """The 202 answer (CONTRACT 2); further members may be added."""

    accepted: int
    duplicates: int
    results: list[Result]


SUBMIT: dict[int | str, dict[str, Any]] = {
    202: {"model": Accepted, "description": "Every report is accepted or a duplicate."},
    **problems(*AUTHENTICATED, 400, 403, 409, 413, 415, 422, 503),
}
"""Everything a submission can answer (CONTRACT 2 and 6)."""


def _refused(key: ApiKey, items: list[Any], problem: Problem) -> Problem:
    """Log a refusal with the report ids it concerns (on-call staff and partners' help
    desks search the logs by report id), and hand the problem back to be raised."""
    offenders = problem.extra.get("errors") or []
    log.info(
        "submission refused",
        status=problem.status,
        key=key.name,
        org=key.org,
        report_ids=sorted({_report_id(item) for item in items} - {""})[:REFUSAL_IDS_LOGGED],
        reports=len(items),
        offending=[e.get("report_id") or e.get("index") for e in offenders][:REFUSAL_IDS_LOGGED],
        detail=problem.detail[:300],
    )
    return problem


def _report_id(item: Any) -> str:
    rid = item.get("report_id") if isinstance(item, dict) else None
    return rid if isinstance(rid, str) else ""


@router.post(
    "/v1/reports",
    status_code=202,
    summary="Submit one report",
    responses=SUBMIT,
    openapi_extra=_body(report_schema(inline=True)),
)
async def submit_one(request: Request) -> Response:
    st, key = _submission(request)
    body = await read_json(request, st.settings.max_body_bytes)
    if not isinstance(body, dict):
        raise _refused(key, [], Problem(
            422,
            "the body must be one report (a JSON object)",
            errors=[{"index": 0, "loc": [], "msg": "expected a JSON object"}],
        ))  # fmt: skip
    return await _accept(st, key, [body])


@router.post(
    "/v1/reports/batch",
    status_code=202,
    summary="Submit 1 to 1,000 reports atomically",
    responses=SUBMIT,
    openapi_extra=_body(batch_schema(inline=True)),
)
async def submit_batch(request: Request) -> Response:
    st, key = _submission(request)
    body = await read_json(request, st.settings.max_body_bytes)
    reports = body.get("reports") if isinstance(body, dict) else None
    if not isinstance(body, dict) or set(body) != {"reports"} or not isinstance(reports, list):
        raise _refused(key, [], Problem(
            422,
            'the body must be {"reports": [ ... ]}',
            errors=[{"index": None, "loc": ["reports"],
                     "msg": "expected an object with only a 'reports' list"}],
        ))  # fmt: skip
    if not 1 <= len(reports) <= MAX_BATCH:
        raise _refused(key, reports, Problem(
            422,
            f"a batch holds 1 to {MAX_BATCH} reports, this one has {len(reports)}",
            errors=[{"index": None, "loc": ["reports"], "msg": f"expected 1 to {MAX_BATCH} items"}],
        ))  # fmt: skip
    return await _accept(st, key, reports)


router.include_router(reference_router(_reader))


__all__ = ["Role", "router"]
