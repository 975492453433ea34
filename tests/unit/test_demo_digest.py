"""The demo prints the weekly report in a terminal without its long listings."""

from __future__ import annotations

from services.demo.run import terminal_digest

REPORT = """# Truce weekly report 2016-W09

## Cessation of hostilities: violations per party

| Party | Violations |
|---|--:|
| gos | 13 |

## Exempt incidents (2)

| Report | Area |
|---|---|
| `r-1` | raqqa |
| `r-2` | tadmur |

## Coverage: who reported from each area

33 of 35 areas monitored this week. No reports from: Daraya (besieged), Bqine (besieged).

| Area | Coverage |
|---|---|
| Madaya | monitored |
| Daraya | **no reports** |

## Access requests

Cumulative approval rate: **42 %**

## Alerts of the week (1)

| Started | State |
|---|---|
| 2016-02-19 | firing |

---
Sources: OCHA
"""


def test_long_listings_keep_their_heading_and_lose_their_rows() -> None:
    digest = terminal_digest(REPORT)
    assert "## Exempt incidents (2)" in digest
    assert "## Alerts of the week (1)" in digest
    assert "`r-1`" not in digest
    assert "2016-02-19" not in digest
    assert "| gos | 13 |" in digest
    assert "Cumulative approval rate: **42 %**" in digest
    assert digest.rstrip().endswith("Sources: OCHA")
    assert digest.count("Listed in full in the HTML, CSV and JSON reports") == 3
    assert "No reports from: Daraya (besieged), Bqine (besieged)." in digest
    assert "| Madaya | monitored |" not in digest
    assert "**no reports**" not in digest
