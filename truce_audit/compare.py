"""Differences between a published weekly report (its JSON format) and the recount."""

from __future__ import annotations

from typing import Any

PARTY_FIELDS = ("violations", "previous_week", "verified", "killed", "injured")
BESIEGED_FIELDS = (
    "deliveries_completed", "deliveries_partial", "deliveries_blocked", "deliveries_cancelled",
    "beneficiaries", "last_completed_delivery",
)  # fmt: skip
EVENT_FIELDS = ("reports", "events", "corroborated", "killed", "injured")
REQUEST_FIELDS = ("submitted", "approved", "denied", "withdrawn", "pending")
NOT_CHECKED = (
    "alerts (derived by the spike rules, not a count of the log)",
    "data_quality (arrival windows of the report's own cut-offs)",
)


def differences(report: dict[str, Any], figures: dict[str, Any]) -> list[str]:
    """One line per figure of ``report`` that the recount ``figures`` does not give."""
    out: list[str] = []

    def check(where: str, published: Any, recounted: Any) -> None:
        if published != recounted:
            out.append(f"{where}: published {published!r}, recounted {recounted!r}")

    violations = report["violations"]
    published = {p["party"]: p for p in violations["parties"]}
    for party in sorted(set(published) | set(figures["parties"])):
        mine = figures["parties"].get(party, dict.fromkeys(PARTY_FIELDS, 0))
        theirs = published.get(party, dict.fromkeys(PARTY_FIELDS, 0))
        for name in PARTY_FIELDS:
            check(f"violations.{party}.{name}", theirs.get(name), mine[name])
    for name in PARTY_FIELDS:
        check(f"violations.total.{name}", violations["total"].get(name), figures["total"][name])
    check("violations.exempt", violations["exempt"], len(figures["exempt"]))
    events = report.get("incidents")  # absent from editions published before incidents
    if events is not None:
        mine = figures["incidents"]
        for name in EVENT_FIELDS:
            check(f"incidents.total.{name}", events["total"].get(name), mine["total"][name])
        check("incidents.exempt", events["exempt"], mine["exempt"])
        check("incidents.sources", events["sources"], mine["sources"])
    listed = report["exempt"]
    for i, item in enumerate(listed):
        mine = figures["exempt"][i] if i < len(figures["exempt"]) else {}
        for name in ("report_id", "killed", "injured"):
            check(f"exempt[{i}].{name}", item.get(name), mine.get(name))
    besieged = {b["area"]: b for b in report["besieged"]}
    for area in sorted(set(besieged) | set(figures["besieged"])):
        theirs, mine = besieged.get(area, {}), figures["besieged"].get(area, {})
        for name in BESIEGED_FIELDS:
            check(f"besieged.{area}.{name}", theirs.get(name), mine.get(name))
    for scope in ("week", "cumulative"):
        for name in REQUEST_FIELDS:
            check(
                f"access.{scope}.{name}",
                report["access"][scope].get(name),
                figures["requests"][scope][name],
            )
    return out
