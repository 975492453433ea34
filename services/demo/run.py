"""`truce demo`: start the stack, replay the scenario through the public API, wait for
the metrics, check them against the scenario's own count and print the weekly report."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from rich.console import Console
from rich.markdown import Markdown
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from core.errors import TruceError
from core.settings import Settings
from schemas.weeks import previous_week, week_monday
from services.demo.expectation import Headline, expected_coverage, expected_metrics, headline
from services.demo.keys import demo_keys
from services.demo.replay import ReplayTotals, replay
from services.demo.scenario import Scenario, Submission, build_scenario
from services.publish import publish_edition
from services.published import Difference, QueryClient, compare, fetch_published
from services.runtime import control

LONG_SECTIONS = ("Exempt incidents", "Alerts of the week", "Coverage")
REPORT_FORMATS = {"md": "md", "html": "html", "csv": "csv", "hxl": "hxl.csv", "json": "json"}


class DemoMismatch(TruceError):
    """The published metrics differ from the scenario's own count."""


@dataclass
class DemoResult:
    scenario: Scenario
    week: str
    totals: ReplayTotals
    expected: Headline
    published: Headline
    differences: list[Difference]
    report_dir: Path
    report_files: list[Path] = field(default_factory=list)
    dashboard_url: str = ""
    monitor_key: str = ""


OPENROSA_SHARE = 0.25
"""The share of first field reports the demo sends as phones do, through OpenRosa
(CONTRACT 10), the rest through the JSON API: the figures must be the same."""


def _progress(console: Console) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=console,
    )


def _replay(
    scenario: Scenario,
    settings: Settings,
    keys: dict[str, str],
    console: Console,
    submissions: list[Submission],
    label: str,
    openrosa: float,
) -> ReplayTotals:
    started = time.monotonic()
    total = sum(len(s.reports) for s in submissions)
    with _progress(console) as progress:
        task = progress.add_task(f"replaying reports {label}", total=total, rate="")

        def sent(n: int) -> None:
            progress.advance(task, n)
            done = progress.tasks[task].completed
            rate = done / max(time.monotonic() - started, 1e-6)
            progress.update(task, rate=f"{rate:,.0f} reports/s")

        return replay(
            scenario,
            settings.ingest_url,
            keys,
            on_sent=sent,
            submissions=submissions,
            openrosa=openrosa,
        )


def edition_days(report_week: str) -> list[tuple[str, date]]:
    """(week, day) of the editions the demo publishes: the report week's and the one
    before, each on the Monday after it, before that Monday's submissions (the late
    reports and corrections that follow are what the report then restates)."""
    weeks = [previous_week(report_week), report_week]
    return [(week, week_monday(week) + timedelta(days=7)) for week in weeks]


def phases(scenario: Scenario) -> list[tuple[list[Submission], str | None]]:
    """The submissions in order, cut before each edition's day: (submissions, the week to
    publish once they are in, or None for the last phase)."""
    result: list[tuple[list[Submission], str | None]] = []
    sent = 0
    for week, day in edition_days(scenario.timeline.report_week):
        upto = sent + sum(1 for s in scenario.submissions[sent:] if s.day < day)
        result.append((scenario.submissions[sent:upto], week))
        sent = upto
    result.append((scenario.submissions[sent:], None))
    return result


def _publish(
    settings: Settings, client: QueryClient, key: str, week: str, console: Console
) -> None:
    """The week's first edition, unless an earlier demo published it already."""
    if client.json("/v1/editions", week=week):
        console.print(f"{week} has an edition already (an earlier demo); not publishing again")
        return
    answer = publish_edition(settings.query_url, key, week)
    head = answer.get("log_head") or {}
    console.print(
        f"published [bold]{week} edition {answer['edition']}[/] (sha256 {answer['sha256'][:16]}…, "
        f"tree head of {head.get('tree_size', 0):,} entries)"
    )


def _replay_and_publish(
    scenario: Scenario,
    settings: Settings,
    keys: dict[str, str],
    console: Console,
    timeout_s: float,
    openrosa: float,
) -> ReplayTotals:
    """Replay up to each edition's day, wait until the store has it all, publish."""
    totals = ReplayTotals()
    taskforce = keys[scenario.timeline.organisations.taskforce]
    client = QueryClient(settings.query_url, keys["monitor"])
    try:
        for submissions, week in phases(scenario):
            label = f"before the {week} edition" if week else "sent after the editions"
            done = _replay(scenario, settings, keys, console, submissions, label, openrosa)
            for name in ("requests", "accepted", "duplicates", "retries", "sheets"):
                setattr(totals, name, getattr(totals, name) + getattr(done, name))
            if week is not None:
                _catch_up(settings, console, timeout_s)
                _publish(settings, client, taskforce, week, console)
    finally:
        client.close()
    return totals


CATCH_UP = "waiting for the stream worker, store and alerter to read every record"


@dataclass
class CatchUp:
    """The waiting bar: records read out of the most the consumers were behind, so it moves
    as they catch up (a bare spinner said "0/?" for a minute)."""

    progress: Progress
    task: TaskID
    peak: int = 0

    def polled(self, behind: int) -> None:
        self.peak = max(self.peak, behind)
        self.progress.update(
            self.task,
            total=max(self.peak, 1),
            completed=max(self.peak, 1) - behind,
            rate=f"{behind:,} records behind" if behind else "settling",
        )


def _catch_up(settings: Settings, console: Console, timeout_s: float) -> None:
    with _progress(console) as progress:
        bar = CatchUp(progress, progress.add_task(CATCH_UP, total=None, rate="asking Kafka"))
        control.wait_until_idle(settings, timeout_s, on_poll=bar.polled)


def _table_width(rows: list[list[str]]) -> int:
    """The columns a Markdown table needs with no cell wrapped (rich adds 3 per column)."""
    widths = [max(len(row[i]) if i < len(row) else 0 for row in rows) for i in range(len(rows[0]))]
    return sum(widths) + 3 * len(widths) + 1


def report_width(markdown: str, console: Console) -> int | None:
    """The width to print the report at: None (the terminal's, or COLUMNS when set) or, in a
    log or a pipe (where rich would take 80 columns), wide enough for its widest table, so
    party names stay on one line; prose wraps as it would anyway."""
    if console.is_terminal or os.environ.get("COLUMNS", "").isdigit():
        return None
    tables: list[list[list[str]]] = [[]]
    for line in markdown.splitlines():
        if not line.startswith("|"):
            tables.append([])
        elif not set(line) <= set("|-: "):  # not the header's separator row
            tables[-1].append([cell.strip() for cell in line.strip().strip("|").split("|")])
    widest = max((_table_width(rows) for rows in tables if rows), default=0)
    return min(max(console.width, widest + 2), 240)


def print_report(console: Console, markdown: str) -> None:
    width = report_width(markdown, console)
    if width is None:
        console.print(Markdown(markdown))
        return
    kept = console.width
    console.width = width  # print(width=) cannot go past the console's own
    try:
        console.print(Markdown(markdown))
    finally:
        console.width = kept


def _check(
    client: QueryClient, scenario: Scenario, timeout_s: float
) -> tuple[list[Difference], Headline, Headline]:
    """Compare, retrying briefly: the sink's last batch may land just after the lag hit 0."""
    latest = scenario.latest_revisions()
    expected = expected_metrics(latest, scenario.owners())
    weeks = sorted(set(expected.compliance) | set(expected.access))
    week = scenario.timeline.report_week
    coverage = expected_coverage(latest, scenario.owners(), week)
    deadline = time.monotonic() + timeout_s
    while True:
        published = fetch_published(client, weeks)
        differences = compare(published, expected) + _coverage_differences(client, week, coverage)
        if not differences or time.monotonic() > deadline:
            return differences, headline(expected, week), headline(published, week)
        time.sleep(1.0)


def _coverage_differences(
    client: QueryClient, week: str, expected: dict[str, dict[str, int]]
) -> list[Difference]:
    """The report week's coverage (CONTRACT 9) against the scenario's own count."""
    rows = client.json("/v1/metrics/coverage", week=week)["rows"]
    published = {
        r["area"]: {k: int(r[k]) for k in ("reports", "reporting_orgs", "monitored")} for r in rows
    }
    return [
        Difference("coverage", week, area, published.get(area), expected.get(area))
        for area in sorted(set(published) | set(expected))
        if published.get(area) != expected.get(area)
    ]


def coverage_line(week: str, expected: dict[str, dict[str, int]]) -> str:
    """Which areas sent no report of any kind in the report week."""
    silent = [area for area, row in expected.items() if not row["monitored"]]
    return (
        f"coverage {week}: {len(expected) - len(silent)} of {len(expected)} areas monitored; "
        f"no reports of any kind from: {', '.join(silent) or 'none'}"
    )


def _headline_table(week: str, published: Headline, expected: Headline) -> Table:
    table = Table(title=f"{week}: the first full week of the cessation of hostilities")
    for column in ("figure", "published", "scenario's own count", ""):
        table.add_column(column, justify="right" if column != "figure" else "left")
    rows = [
        ("violations (not exempt)", published.violations, expected.violations),
        ("  of which verified", published.violations_verified, expected.violations_verified),
        ("exempt (designated groups)", published.violations_exempt, expected.violations_exempt),
        ("killed", published.killed, expected.killed),
        ("deliveries completed", published.deliveries_completed, expected.deliveries_completed),
        ("beneficiaries reached", published.beneficiaries, expected.beneficiaries),
        (
            "access requests approved to date",
            published.requests_approved_to_date,
            expected.requests_approved_to_date,
        ),
        ("access requests to date", published.requests_to_date, expected.requests_to_date),
    ]
    for name, got, want in rows:
        mark = "[green]✓[/]" if got == want else "[red]✗[/]"
        table.add_row(name, f"{got:,}", f"{want:,}", mark)
    return table


def terminal_digest(markdown: str, collapse: tuple[str, ...] = LONG_SECTIONS) -> str:
    """The report for a terminal: long listings keep their heading (with its count) and
    their text (coverage: which areas sent no report) but lose their table rows, and point
    to the written files, which have every row."""
    kept: list[str] = []
    skipping = False
    for line in markdown.splitlines():
        if line.startswith("## ") or line.startswith("---"):
            skipping = line.startswith("## ") and line[3:].startswith(collapse)
            kept.append(line)
            if skipping:
                kept += ["", "Listed in full in the HTML, CSV and JSON reports written below.", ""]
            continue
        if not skipping or not line.startswith("|"):
            kept.append(line)
    return "\n".join(kept)


def _save_reports(client: QueryClient, week: str, folder: Path) -> tuple[list[Path], str]:
    folder.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    markdown = ""
    for fmt, ext in REPORT_FORMATS.items():
        response = client.get(f"/v1/weekly-report/{week}", format=fmt)
        path = folder / f"truce-weekly-{week}.{ext}"
        path.write_bytes(response.content)
        files.append(path)
        if fmt == "md":
            markdown = response.text
    return files, markdown


def run_demo(
    settings: Settings,
    console: Console,
    *,
    scale: float = 1.0,
    out_dir: Path | None = None,
    keep_running: bool = False,
    catch_up_timeout_s: float = 600.0,
    openrosa: float = OPENROSA_SHARE,
) -> DemoResult:
    scenario = build_scenario(scale)
    t = scenario.timeline
    console.print(
        f"[bold]Scenario[/]: the weeks after Munich, {t.start:%d %b} to {t.end:%d %b %Y} "
        f"(a reconstruction from public facts, not evidence; seed {t.seed}, scale {scale}): "
        f"{len(scenario.latest_revisions()):,} reports, {scenario.revisions:,} submissions "
        f"from {len(scenario.organisations())} organisations."
    )
    started_here = control.supervisor_pid(settings) is None
    if started_here:
        with console.status(f"starting Truce in {settings.home} (first run: set-up included)"):
            control.start_detached(settings)
    else:
        console.print(f"Truce is already running for {settings.home}; using it.")
    try:
        partners = [o for o in scenario.organisations() if o != t.organisations.taskforce]
        keys = demo_keys(settings, partners, t.organisations.taskforce)
        totals = _replay_and_publish(
            scenario, settings, keys, console, catch_up_timeout_s, openrosa
        )
        console.print(
            f"sent {totals.requests:,} requests ({totals.sheets:,} of them CSV sheets): "
            f"{totals.accepted:,} revisions accepted, "
            f"{totals.duplicates:,} duplicates (resent batches, or a previous demo)"
        )
        _catch_up(settings, console, catch_up_timeout_s)
        client = QueryClient(settings.query_url, keys["monitor"])
        try:
            differences, expected, published = _check(client, scenario, timeout_s=30)
            console.print(_headline_table(t.report_week, published, expected))
            console.print(coverage_line(t.report_week, expected_coverage(
                scenario.latest_revisions(), scenario.owners(), t.report_week
            )))  # fmt: skip
            folder = out_dir or settings.home / "reports"
            files, markdown = _save_reports(client, t.report_week, folder)
        finally:
            client.close()
        print_report(console, terminal_digest(markdown))
        result = DemoResult(
            scenario=scenario,
            week=t.report_week,
            totals=totals,
            expected=expected,
            published=published,
            differences=differences,
            report_dir=folder,
            report_files=files,
            dashboard_url=f"{settings.query_url}/dashboard#key={keys['monitor']}&week={t.report_week}",
            monitor_key=keys["monitor"],
        )
    finally:
        if started_here and not keep_running:
            with console.status("stopping Truce"):
                control.stop_stack(settings)
    return result
