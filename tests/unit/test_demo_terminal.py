"""The demo's terminal output read in a log: the report keeps party names on one line when
stdout is not a terminal, COLUMNS is honoured, and the waiting bar counts records."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.progress import Progress
from rich.text import Text

from schemas.reference import party_list
from services.demo.run import CatchUp, print_report

REPORT = "\n".join(
    [
        "# Truce weekly report 2016-W09",
        "",
        "## Cessation of hostilities: violations per party",
        "",
        "| Party | Side | Violations | Verified | Killed | Injured |",
        "|---|---|--:|--:|--:|--:|",
        *(f"| {p.name} | {p.side} | 13 | 7 | 2 | 5 |" for p in party_list()),
    ]
)


def printed(**console: object) -> list[str]:
    buffer = io.StringIO()
    print_report(Console(file=buffer, **console), REPORT)  # type: ignore[arg-type]
    return buffer.getvalue().splitlines()


def test_a_log_gets_every_party_name_on_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    lines = printed()
    longest = max(len(p.name) for p in party_list())
    assert longest > 30  # names that wrapped at rich's 80 columns
    for party in party_list():
        assert any(party.name in line for line in lines), party.name


def test_columns_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "70")
    lines = printed()
    assert max(len(line) for line in lines) <= 70


def test_a_terminal_keeps_its_width(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    lines = printed(force_terminal=True, width=90)
    assert max(Text.from_ansi(line).cell_len for line in lines) == 90


def test_the_waiting_bar_counts_the_records_read() -> None:
    progress = Progress(console=Console(file=io.StringIO()))
    bar = CatchUp(progress, progress.add_task("waiting", total=None, rate=""))
    bar.polled(2000)
    (task,) = progress.tasks
    assert (task.completed, task.total) == (0, 2000)
    bar.polled(500)
    assert (task.completed, task.total, task.fields["rate"]) == (1500, 2000, "500 records behind")
    bar.polled(0)
    assert task.completed == task.total == 2000
