"""Renders a WeeklyReport as JSON, Markdown, HTML (Jinja2 templates), CSV or HXL CSV.

Every format is a view of the same model, so the numbers cannot differ between them."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import re
from collections.abc import Iterator
from datetime import date, datetime
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from core.spreadsheet import safe_cell
from schemas.columns import HXL_TAGS
from schemas.figures import FIGURE_SETS
from schemas.reference import adm1_pcodes, reference_source
from schemas.weekly_report import BesiegedArea, PartyViolations, RequestCounts, WeeklyReport
from services.store.weekly.formats import Format

# (CSV column, HXL hashtag): one wide table, a `section` column says what a row is. A
# column named as a report field has that field's hashtag, the one spreadsheet import reads.
_LISTED: tuple[tuple[str, str], ...] = (
    ("week", "#meta+week"),  # 2016-W09 is a label, not a date; the period's dates are below
    ("period_start", "#date+start"),
    ("period_end", "#date+end"),
    ("section", "#meta+section"),
    ("governorate", "#adm1+name"),
    ("governorate_pcode", "#adm1+code"),  # OCHA's P-code, to join the COD datasets
    ("area", HXL_TAGS["area"]),
    ("area_name", "#loc+name"),
    ("party", HXL_TAGS["perpetrator"]),  # the violations' party is their perpetrator
    ("party_name", "#group+name"),
    ("report_id", HXL_TAGS["report_id"]),
    ("target", HXL_TAGS["target"]),
    ("occurred_at", HXL_TAGS["occurred_at"]),
    ("violations", "#indicator+violations+num"),
    ("previous_week", "#indicator+violations+previous+num"),
    ("change", "#indicator+violations+change+num"),
    ("verified", "#indicator+violations+verified+num"),
    ("verified_share", "#indicator+violations+verified+pct"),
    ("killed", HXL_TAGS["killed"]),
    ("injured", HXL_TAGS["injured"]),
    ("deliveries_completed", "#indicator+deliveries+completed+num"),
    ("deliveries_partial", "#indicator+deliveries+partial+num"),
    ("deliveries_blocked", "#indicator+deliveries+blocked+num"),
    ("deliveries_cancelled", "#indicator+deliveries+cancelled+num"),
    ("beneficiaries", HXL_TAGS["beneficiaries"]),
    ("people_in_need", "#inneed+num"),
    ("coverage", "#reached+pct"),
    ("last_completed_delivery", "#date+delivery+last"),
    ("days_since_last_completed_delivery", "#indicator+days_since_delivery+num"),
    ("besieged", "#meta+besieged"),
    ("reporting_orgs", "#org+reporting+num"),
    ("reports", "#meta+reports+num"),
    ("last_report_at", "#date+report+last"),
    ("requests_submitted", "#access+requests+submitted+num"),
    ("requests_approved", "#access+requests+approved+num"),
    ("requests_denied", "#access+requests+denied+num"),
    ("requests_withdrawn", "#access+requests+withdrawn+num"),
    ("requests_pending", "#access+requests+pending+num"),
    ("approval_rate", "#access+requests+approved+pct"),
    ("status", HXL_TAGS["status"]),
    ("severity", "#severity"),
    ("description", HXL_TAGS["description"]),
    ("late_reports", "#meta+reports+late+num"),
    ("revised_reports", "#meta+reports+revised+num"),
    ("edition", "#meta+edition+num"),
    ("against_edition", "#meta+edition+against+num"),
    ("reports", "#indicator+violations+reports+num"),
    ("events", "#indicator+events+num"),
    ("corroborated", "#indicator+events+corroborated+num"),
    ("corroborated_share", "#indicator+events+corroborated+pct"),
    ("sources", "#indicator+events+sources+num"),
    ("figure", "#indicator+name"),
    ("was", "#indicator+was+num"),
    ("now", "#indicator+now+num"),
    ("because", "#meta+because"),
)


def _figure_columns(listed: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """A weekly figure the report's models show beyond the listed columns: a column of its
    name, tagged ``#indicator`` with the name's words as HXL attributes (as the deliveries'
    are), so that a figure added to a report model needs no edit here."""
    listed_names = {name for name, _ in listed}
    figures = {name for figure_set in FIGURE_SETS for name in figure_set.names}
    fields = [
        *PartyViolations.model_fields,
        *BesiegedArea.model_fields,
        *(f"requests_{name}" for name in RequestCounts.model_fields),  # see _rows
    ]
    return tuple(
        (name, "#indicator+" + name.replace("_", "+") + "+num")
        for name in dict.fromkeys(fields)
        if name in figures and name not in listed_names
    )


COLUMNS = _LISTED + _figure_columns(_LISTED)


def _rows(report: WeeklyReport) -> Iterator[dict[str, Any]]:
    """The report as flat rows, section by section (keys are CSV columns)."""
    for p in [*report.violations.parties, report.violations.total]:
        yield {"section": "violations", "party_name": p.name, **p.model_dump(exclude={"name"})}
    yield from _event_rows(report)
    for e in report.exempt:
        yield {
            "section": "exempt", **e.model_dump(exclude={"reason", "verification"}),
            "status": e.verification, "description": e.reason,
        }  # fmt: skip
    for b in report.besieged:
        yield {"section": "besieged", "area_name": b.name, **b.model_dump(exclude={"name"})}
    yield from _coverage_rows(report)
    access = report.access
    for scope, counts in (("week", access.week), ("cumulative", access.cumulative)):
        row = {f"requests_{k}": v for k, v in counts.model_dump().items()}
        if scope == "cumulative":
            row["approval_rate"] = access.cumulative_approval_rate
        yield {"section": f"access_{scope}", **row}
    for a in report.alerts:
        yield {
            "section": "alert", "area": a.area, "party": a.party, "occurred_at": a.starts_at,
            "status": a.state, "severity": a.severity, "description": f"{a.rule}: {a.summary}",
        }  # fmt: skip
    quality = report.data_quality
    yield {
        "section": "data_quality",
        "late_reports": quality.late_reports,
        "revised_reports": quality.revised_reports,
        "against_edition": quality.edition,
    }
    for x in report.restatements:  # "because": report_id:reason, space-separated
        yield {
            "section": "restatement", "against_edition": report.restated_against,
            "figure": x.figure,
            "area": x.area, "party": x.party, "was": x.was, "now": x.now,
            "because": " ".join(f"{c.report_id}:{c.reason}" for c in x.because),
        }  # fmt: skip


def _coverage_rows(report: WeeklyReport) -> Iterator[dict[str, Any]]:
    """One ``coverage`` row per area; ``status`` says "monitored" or "no reports" in
    words, so an unmonitored area never reads as a row of zeros."""
    for c in report.coverage:
        yield {
            "section": "coverage", "area_name": c.name,
            **c.model_dump(exclude={"name", "monitored"}),
            "status": COVERAGE_STATUS[c.monitored],
        }  # fmt: skip


COVERAGE_STATUS = {True: "monitored", False: "no reports"}
"""How every format names an area's coverage."""


def _event_rows(report: WeeklyReport) -> Iterator[dict[str, Any]]:
    """The events section (CONTRACT section 9): per party and total, then one row per
    number of sources with how many events have it."""
    incidents = report.incidents
    if incidents is None:
        return
    for p in [*incidents.parties, incidents.total]:
        yield {"section": "events", "party_name": p.name, **p.model_dump(exclude={"name"})}
    yield {"section": "events_exempt", "events": incidents.exempt}
    for s in incidents.sources:
        yield {"section": "event_sources", "sources": s.sources, "events": s.events}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):  # what partners wrote (a report id like "-2-3")
        return safe_cell(value)
    return str(value)


def to_csv(report: WeeklyReport, hxl: bool = False) -> str:
    """One header row (plus the HXL hashtag row for ``hxl``), then one row per item."""
    names = [c for c, _ in COLUMNS]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(names)
    if hxl:
        writer.writerow([tag for _, tag in COLUMNS])
    common = {
        "edition": report.edition.edition if report.edition else None,
        "week": report.week,
        "period_start": report.period.start,
        "period_end": report.period.end,
    }
    for row in _rows(report):
        merged = {**common, **row}
        if merged.get("governorate"):
            merged["governorate_pcode"] = adm1_pcodes().get(str(merged["governorate"]))
        unknown = set(merged) - set(names)
        if unknown:  # a model field without a column would be lost silently
            raise ValueError(f"no CSV column for {sorted(unknown)}")
        writer.writerow([_cell(merged.get(name)) for name in names])
    return out.getvalue()


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.0f} %"


def _num(value: int | None) -> str:
    return "n/a" if value is None else f"{value:,}"


def _signed(value: int) -> str:
    return f"+{value:,}" if value > 0 else f"{value:,}"


def _md_cell(value: Any) -> str:
    """Text safe inside a Markdown table cell, shown as written (no HTML, no markup)."""
    text = str(value).replace("\\", "\\\\").replace("\n", " ")
    for char in "|<>*_`[]":
        text = text.replace(char, "\\" + char)
    return text


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


def _position(offsets: dict[str, int]) -> str:
    """A log position as people read it: offset per partition of the reports topic."""
    parts = ", ".join(f"partition {p} offset {o:,}" for p, o in offsets.items())
    return parts or "its beginning (no report yet)"


@cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("services.store.weekly", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        pct=_pct, num=_num, signed=_signed, md=_md_cell, when=_when, position=_position
    )
    env.globals["coverage_status"] = COVERAGE_STATUS
    return env


def _template(name: str, report: WeeklyReport) -> str:
    sources = {"areas": reference_source("areas"), "parties": reference_source("parties")}
    return _environment().get_template(name).render(r=report, sources=sources)


def render(report: WeeklyReport, fmt: Format) -> str:
    if fmt.name == "json":
        return report.model_dump_json()
    if fmt.name == "md":
        return _template("weekly.md.j2", report)
    if fmt.name == "html":
        return _template("weekly.html", report)
    return to_csv(report, hxl=fmt.name == "hxl")


NONE = "'none'"
_STYLE = re.compile(r"<style>(.*?)</style>", re.S)


def html_policy(page: str) -> str:
    """The HTML report's Content-Security-Policy: nothing runs or loads, and only its own
    inline stylesheet applies (by hash; the first one, in the template's head, before any
    text partners wrote), so that text stays inert even if escaping ever failed."""
    found = _STYLE.search(page)
    digest = hashlib.sha256(found.group(1).encode()).digest() if found else None
    style = f"'sha256-{base64.b64encode(digest).decode()}'" if digest else NONE
    return (
        f"default-src 'none'; style-src {style}; "
        "img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
