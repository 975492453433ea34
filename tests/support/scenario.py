"""Random but valid report traffic for end-to-end tests: partners' violations, deliveries
and access requests with corrections, retractions and retries; the task force's
verifications and designations."""

from __future__ import annotations

import random
from typing import Any

AREAS = ["madaya", "zabadani", "fouah", "kafrayah", "deir_ez_zor", "daraya", "raqqa", "douma"]
PARTIES = ["gos", "ru", "hzb", "fsa", "ahrar", "jai", "isil", "nusra"]
DAYS = [f"2016-02-{d:02d}" for d in range(15, 30)] + [f"2016-03-{d:02d}" for d in range(1, 20)]


def _moment(rng: random.Random) -> str:
    return f"{rng.choice(DAYS)}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:00+02:00"


def _violation(rng: random.Random, rid: str, revision: int) -> dict[str, Any]:
    return {
        "report_id": rid, "revision": revision, "kind": "violation",
        "occurred_at": _moment(rng), "area": rng.choice(AREAS),
        "perpetrator": rng.choice(PARTIES),
        "target": rng.choice(["civilians", "infrastructure", *PARTIES]),
        "category": rng.choice(["airstrike", "shelling", "ground_attack", "sniper"]),
        "killed": rng.randrange(6), "injured": rng.randrange(10),
        "source": rng.choice(["witness", "staff", "media", "remote"]),
        "confidence": rng.choice(["low", "medium", "high"]),
    }  # fmt: skip


def _delivery(rng: random.Random, rid: str, revision: int) -> dict[str, Any]:
    return {
        "report_id": rid, "revision": revision, "kind": "delivery",
        "occurred_at": _moment(rng), "area": rng.choice(AREAS), "agency": "WFP",
        "modality": rng.choice(["convoy", "airdrop"]),
        "status": rng.choice(["completed", "partial", "blocked", "cancelled"]),
        "beneficiaries": rng.randrange(20_000),
    }  # fmt: skip


def _access(rng: random.Random, rid: str, revision: int) -> dict[str, Any]:
    return {
        "report_id": rid, "revision": revision, "kind": "access_request",
        "occurred_at": _moment(rng), "area": rng.choice(AREAS),
        "status": rng.choice(["submitted", "approved", "denied", "withdrawn"]),
    }  # fmt: skip


MAKERS = {"violation": _violation, "delivery": _delivery, "access_request": _access}


def partner_report(rng: random.Random, kind: str, rid: str, revision: int) -> dict[str, Any]:
    """One random revision of a partner's report of ``kind``."""
    return MAKERS[kind](rng, rid, revision)


def partner_reports(rng: random.Random, count: int, prefix: str) -> list[dict[str, Any]]:
    """``count`` report revisions: ~10 % corrections, ~3 % retractions, in shuffled order."""
    makers = [(_violation, 0.7), (_delivery, 0.2), (_access, 0.1)]
    out: list[dict[str, Any]] = []
    index = 0
    while len(out) < count:
        make = rng.choices([m for m, _ in makers], [w for _, w in makers])[0]
        rid = f"{prefix}-{index}"
        index += 1
        revisions = 1 + (rng.random() < 0.1) + (rng.random() < 0.03)
        for revision in range(1, revisions + 1):
            body = make(rng, rid, revision)
            if revision == revisions and revisions > 1 and rng.random() < 0.3:
                body["retracted"] = True
            out.append(body)
    rng.shuffle(out)  # revisions arrive in any order
    return out[:count]


def taskforce_reports(
    rng: random.Random, violation_ids: list[str], prefix: str
) -> list[dict[str, Any]]:
    """Verifications of some violations and designations of ISIL/Nusra-held areas."""
    reports: list[dict[str, Any]] = []
    for i, subject in enumerate(rng.sample(violation_ids, min(len(violation_ids), 60))):
        reports.append({
            "report_id": f"{prefix}-ver-{i}", "kind": "verification",
            "occurred_at": _moment(rng), "subject": subject,
            "status": rng.choice(["verified", "verified", "disputed", "rejected"]),
        })  # fmt: skip
    reports.append({
        "report_id": f"{prefix}-des-raqqa", "kind": "designation",
        "occurred_at": "2016-02-27T00:00:00Z", "area": "raqqa", "party": "isil",
    })  # fmt: skip
    reports.append({
        "report_id": f"{prefix}-des-deir", "kind": "designation",
        "occurred_at": "2016-03-05T00:00:00Z", "area": "deir_ez_zor", "party": "isil",
        "effective_to": "2016-03-12T00:00:00Z",
    })  # fmt: skip
    return reports
