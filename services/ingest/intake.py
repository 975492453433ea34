"""The decision for a set of submitted reports, before anything is published (CONTRACT 2):
validate all (422), then roles and ownership (403), then revision conflicts (409).
A batch is judged whole; one bad report rejects it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from core.http import Problem, validation_errors
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


def _validate(items: Sequence[object], now: datetime) -> list[Report]:
    reports: list[Report] = []
    errors: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        try:
            reports.append(parse_report(item, now=now))
        except ValidationError as exc:
            errors.extend(validation_errors(map(_field_loc, exc.errors(include_url=False)), index))
    if errors:
        bad = len({e["index"] for e in errors})
        raise Problem(
            422,
            f"{bad} of {len(items)} report(s) are invalid; nothing was published",
            errors=errors,
        )
    return reports


def judge(items: Sequence[object], key: ApiKey, ledger: Ledger, now: datetime) -> list[Judged]:
    """Every report accepted or duplicate, or a Problem naming each offending index."""
    reports = _validate(items, now)
    envelopes = [make_envelope(r, org=key.org, key_name=key.name, received_at=now) for r in reports]
    forbidden: list[dict[str, Any]] = []
    conflicts: list[dict[str, Any]] = []
    verdicts: list[Verdict] = []
    seen: dict[tuple[str, int], str] = {}
    for index, envelope in enumerate(envelopes):
        report = envelope.report
        if report.kind not in FILED_BY.get(key.role, frozenset()):
            forbidden.append(
                {
                    "index": index,
                    "report_id": report.report_id,
                    "msg": f"a {key.role.value} key may not submit {report.kind} reports; "
                    f"{_who_files(report.kind)} do",
                }
            )
            verdicts.append(Verdict.FOREIGN)
            continue
        ident = (report.report_id, report.revision)
        verdict = ledger.judge(report.report_id, report.revision, envelope.content_hash, key.org)
        if verdict is Verdict.NEW and ident in seen:
            same = seen[ident] == envelope.content_hash
            verdict = Verdict.DUPLICATE if same else Verdict.CONFLICT
        if verdict is Verdict.FOREIGN:
            forbidden.append(
                {
                    "index": index,
                    "report_id": report.report_id,
                    "msg": "this report belongs to another organisation",
                }
            )
        elif verdict is Verdict.CONFLICT:
            conflicts.append(
                {
                    "index": index,
                    "report_id": report.report_id,
                    "revision": report.revision,
                    "msg": "this revision was already received with different content; "
                    "send a higher revision to correct it",
                }
            )
        seen.setdefault(ident, envelope.content_hash)
        verdicts.append(verdict)
    if forbidden:
        raise Problem(
            403, f"{len(forbidden)} report(s) may not be filed with this key", errors=forbidden
        )
    if conflicts:
        raise Problem(
            409, f"{len(conflicts)} report(s) conflict with earlier revisions", errors=conflicts
        )
    return [Judged(e, v) for e, v in zip(envelopes, verdicts, strict=True)]
