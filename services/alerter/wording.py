"""What a person reads in an alert: names instead of codes, what the rule means, what to
do, and where to look (the dashboard at the area and week, the reports behind it).

Every channel (webhook, Alertmanager, Slack, email, log, CAP) takes its words from here."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlencode

from schemas import Alert, areas, parties
from schemas.weeks import iso_week


@dataclass(frozen=True, slots=True)
class RuleText:
    cap_category: str
    event: str
    runbook: str
    """One line: what on-call staff do first."""


RULES: dict[str, RuleText] = {
    "violation_spike": RuleText(
        "Security",
        "Ceasefire violation spike",
        "Open the area's reports on the dashboard, check whether they come from several "
        "organisations, ask the task force to verify them and to raise it with the party.",
    ),
    "delivery_gap": RuleText(
        "Other",
        "Besieged area without humanitarian delivery",
        "Check the area's pending access requests and the last convoy's status, and raise "
        "the gap with the humanitarian access task force for the next weekly meeting.",
    ),
    "stale_access_request": RuleText(
        "Other",
        "Humanitarian access request unanswered",
        "Ask the access task force to follow up the request with the authority it was "
        "submitted to; record the answer as a new revision of the request.",
    ),
    "reporting_gap": RuleText(
        "Security",
        "No reports from an area's usual reporters",
        "Call the area's usual reporting partners: a silence can mean communications are "
        "cut or the siege has tightened, not calm. Mark the area unmonitored until they "
        "answer.",
    ),
}


def rule_text(rule: str) -> RuleText:
    known = RULES.get(rule)
    if known is not None:
        return known
    title = rule.replace("_", " ")
    return RuleText("Other", title.capitalize(), "See the rule's description in rules.yaml.")


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def area_name(code: str) -> str:
    """``Madaya (Rif Dimashq)``; the code itself when it is not in the reference data."""
    area = areas().get(code)
    return f"{area.name} ({area.governorate})" if area is not None else (code or "Syria")


def party_name(code: str) -> str:
    party = parties().get(code)
    return party.name if party is not None else code


@dataclass(frozen=True, slots=True)
class Links:
    dashboard: str
    reports: tuple[str, ...]


def links(alert: Alert, base_url: str) -> Links:
    """The dashboard at the alert's area and week (in event time, the week the alert is
    about) and each report behind it on the query API."""
    fragment = {"week": iso_week(alert.updated_at)}
    if alert.area:
        fragment["area"] = alert.area
    if alert.party:
        fragment["party"] = alert.party
    base = base_url.rstrip("/")
    return Links(
        f"{base}/dashboard#{urlencode(fragment)}",
        tuple(f"{base}/v1/reports/{quote(r, safe='')}" for r in alert.report_ids),
    )


def headline(alert: Alert) -> str:
    where = area_name(alert.area)
    who = f", {party_name(alert.party)}" if alert.party else ""
    state = "resolved: " if alert.state == "resolved" else ""
    return f"{state}{rule_text(alert.rule).event} in {where}{who}"


def description(alert: Alert, base_url: str) -> str:
    """Plain text every channel shares: what fired, how much, since when, on what
    reports, what to do, where to look."""
    found = links(alert, base_url)
    lines = [
        headline(alert) + ".",
        alert.summary,
        f"Value {alert.value:g}, threshold {alert.threshold:g}, over {alert.window}; "
        f"{alert.state}, severity {alert.severity}, since {alert.starts_at:%Y-%m-%d %H:%M} UTC.",
        f"What to do: {rule_text(alert.rule).runbook}",
        f"Dashboard: {found.dashboard}",
    ]
    if found.reports:
        lines.append(f"Behind it, {plural(len(found.reports), 'report')}:")
        lines.extend(f"  {url}" for url in found.reports)
    return "\n".join(lines)
