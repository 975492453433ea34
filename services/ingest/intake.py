"""The decision for a set of submitted reports, before anything is published (CONTRACT 2):
validate all (422), then roles and ownership (403), then revision conflicts (409).
A batch is judged whole; one bad report rejects it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from core.errors import Conflict, Forbidden, InvalidInput
from core.http import validation_errors
from core.keys import ApiKey, Role
from schemas import (
    FIELD_KINDS,
    KINDS,
    PRIVILEGED_KINDS,
    Report,
    ReportEnvelope,
    encode_envelope,
    make_envelope,
    parse_report,
    partition_key,
)
from services.ingest.ledger import Ledger, Verdict


@dataclass(frozen=True)
class Judged:
    """One report of the request with its verdict (accepted or duplicate)."""

    envelope: ReportEnvelope
    verdict: Verdict

    @property
    def instance_id(self) -> str | None:
        return self.envelope.instance_id

    @property
    def result(self) -> dict[str, Any]:
        report = self.envelope.report
        return {"report_id": report.report_id, "revision": report.revision, "status": self.verdict}

    @property
    def ledger_entry(self) -> tuple[str, int, str, str]:
        """(report id, revision, content hash, org): what the ledger keeps once it is acked."""
        envelope = self.envelope
        return (
            envelope.report.report_id,
            envelope.report.revision,
            envelope.content_hash,
            envelope.org,
        )

    def record(self) -> tuple[bytes, bytes]:
        return partition_key(self.envelope.report).encode(), encode_envelope(self.envelope)


_KINDS = frozenset(KINDS)
FILED_BY: dict[Role, frozenset[str]] = {
    Role.PARTNER: FIELD_KINDS,
    Role.TASKFORCE: PRIVILEGED_KINDS,
    Role.ADMIN: frozenset(KINDS),
}
"""The kinds each role may submit (CONTRACT section 1): a partner reports what happened,
the task force judges it (verifications, designations), an admin may do both."""


def _who_files(kind: str) -> str:
    roles = [role.value for role, kinds in FILED_BY.items() if kind in kinds]
    return " or ".join(f"{name} keys" for name in roles)


def _field_loc(error: Any) -> Any:
    """Locations as partners read them: ``["occurred_at"]``, not ``["violation", ...]``."""
    loc = tuple(error.get("loc", ()))
    if error.get("type") in ("union_tag_invalid", "union_tag_not_found"):
        loc = ("kind",)
    elif loc and loc[0] in _KINDS:
        loc = loc[1:]
    return {**error, "loc": loc}


def _validate(items: Sequence[object], now: datetime) -> list[Report | list[dict[str, Any]]]:
    """Each item's report, or its 422 errors (``{"index", "status", "loc", "msg"}``)."""
    out: list[Report | list[dict[str, Any]]] = []
    for index, item in enumerate(items):
        try:
            out.append(parse_report(item, now=now))
        except ValidationError as exc:
            errors = validation_errors(map(_field_loc, exc.errors(include_url=False)), index)
            out.append([{**e, "status": 422} for e in errors])
    return out


_DETAIL = {
    422: "{n} of {total} report(s) are invalid",
    403: "{n} of {total} report(s) may not be filed with this key",
    409: "{n} of {total} report(s) conflict with earlier revisions",
}
PRECEDENCE = (422, 403, 409)
"""The status of a rejected batch is its first offence in this order (CONTRACT 2)."""


_ERROR = {422: InvalidInput, 403: Forbidden, 409: Conflict}


def _reject(offenders: list[dict[str, Any]], total: int) -> InvalidInput:
    """The batch's answer: every offending report by index with its own status, under
    the status that comes first in :data:`PRECEDENCE`."""
    statuses = {o["status"] for o in offenders}
    status = next(s for s in PRECEDENCE if s in statuses)
    counts = {s: len({o["index"] for o in offenders if o["status"] == s}) for s in statuses}
    parts = [_DETAIL[s].format(n=counts[s], total=total) for s in PRECEDENCE if s in counts]
    offenders.sort(key=lambda o: o["index"])
    return _ERROR[status]("; ".join(parts) + "; nothing was published", errors=offenders)


def judge(
    items: Sequence[object],
    key: ApiKey,
    ledger: Ledger,
    now: datetime,
    instances: Sequence[str | None] | None = None,
) -> list[Judged]:
    """Every report accepted or duplicate, or an error naming each offending index
    (invalid ones, and among the valid ones those refused or in conflict). ``instances``
    are the OpenRosa instance ids the reports came from (CONTRACT 10), kept with them."""
    offenders: list[dict[str, Any]] = []
    judged: list[Judged] = []
    seen: dict[tuple[str, int], str] = {}
    for index, parsed in enumerate(_validate(items, now)):
        if isinstance(parsed, list):
            offenders.extend(parsed)
            continue
        report = parsed
        envelope = make_envelope(
            report,
            org=key.org,
            key_name=key.name,
            received_at=now,
            instance_id=instances[index] if instances else None,
        )
        if report.kind not in FILED_BY.get(key.role, frozenset()):
            offenders.append(
                {
                    "index": index,
                    "status": 403,
                    "report_id": report.report_id,
                    "msg": f"a {key.role.value} key may not submit {report.kind} reports; "
                    f"{_who_files(report.kind)} do",
                }
            )
            continue
        ident = (report.report_id, report.revision)
        verdict = ledger.judge(report.report_id, report.revision, envelope.content_hash, key.org)
        if verdict is Verdict.NEW and ident in seen:
            same = seen[ident] == envelope.content_hash
            verdict = Verdict.DUPLICATE if same else Verdict.CONFLICT
        if verdict is Verdict.FOREIGN:
            offenders.append(
                {
                    "index": index,
                    "status": 403,
                    "report_id": report.report_id,
                    "msg": "this report belongs to another organisation",
                }
            )
        elif verdict is Verdict.CONFLICT:
            offenders.append(
                {
                    "index": index,
                    "status": 409,
                    "report_id": report.report_id,
                    "revision": report.revision,
                    "msg": "this revision was already received with different content; "
                    "send a higher revision to correct it",
                }
            )
        seen.setdefault(ident, envelope.content_hash)
        judged.append(Judged(envelope, verdict))
    if offenders:
        raise _reject(offenders, len(items))
    return judged
