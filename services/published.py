"""Reading back the weekly metrics the query API publishes, and comparing them with another
count (the demo scenario's own, or the same API before a rebuild). A row holds every figure
of its set (schemas/figures.py), so a figure added there is read and compared too."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from core.errors import TruceError
from schemas.figures import ACCESS, COMPLIANCE, FigureSet

Row = dict[str, int]
"""One weekly row's figures by name (:attr:`FigureSet.names`)."""


@dataclass
class MetricsSet:
    compliance: dict[str, dict[tuple[str, str], Row]]
    """week → (area, party) → row, only rows with any violation (as the API lists them)."""
    access: dict[str, dict[str, Row]]
    """week → area → row."""


@dataclass(frozen=True)
class Difference:
    metric: str
    week: str
    key: str
    published: dict[str, int] | None
    expected: dict[str, int] | None


class QueryClient:
    """The monitor's view of the query API."""

    def __init__(self, query_url: str, key: str) -> None:
        self.client = httpx.Client(
            base_url=query_url, headers={"Authorization": f"Bearer {key}"}, timeout=60
        )

    def close(self) -> None:
        self.client.close()

    def get(self, path: str, **params: str) -> httpx.Response:
        response = self.client.get(path, params=params)
        if response.status_code != 200:
            detail = response.json().get("detail") if response.content else ""
            raise TruceError(
                f"GET {path} answered {response.status_code}: {detail or response.text}",
                hint="`truce status` shows whether the query service is ready",
            )
        return response

    def json(self, path: str, **params: str) -> Any:
        return self.get(path, **params).json()


def counts(row: Mapping[str, Any], figures: FigureSet) -> Row:
    """The figures of one row (an API row, or any mapping with at least those names)."""
    return {name: int(row[name]) for name in figures.names}


def fetch_published(client: QueryClient, weeks: list[str]) -> MetricsSet:
    """The published weekly metrics of ``weeks``, in the expectation's shape."""
    compliance: dict[str, dict[tuple[str, str], Row]] = {}
    access: dict[str, dict[str, Row]] = {}
    for week in weeks:
        rows = client.json("/v1/metrics/weekly", week=week)["rows"]
        if rows:
            compliance[week] = {(r["area"], r["party"]): counts(r, COMPLIANCE) for r in rows}
        rows = client.json("/v1/metrics/access", week=week)["rows"]
        if rows:
            access[week] = {r["area"]: counts(r, ACCESS) for r in rows}
    return MetricsSet(compliance=compliance, access=access)


def compare(published: MetricsSet, expected: MetricsSet) -> list[Difference]:
    """Every (metric, week, key) where the published metrics differ from the expectation."""
    differences: list[Difference] = []
    pairs: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
        ("weekly", published.compliance, expected.compliance),
        ("access", published.access, expected.access),
    ]
    for metric, got_weeks, want_weeks in pairs:
        for week in sorted(set(got_weeks) | set(want_weeks)):
            got, want = got_weeks.get(week, {}), want_weeks.get(week, {})
            for key in sorted(set(got) | set(want), key=str):
                a, b = got.get(key), want.get(key)
                if a != b:
                    differences.append(
                        Difference(
                            metric,
                            week,
                            "/".join(key) if isinstance(key, tuple) else key,
                            None if a is None else dict(a),
                            None if b is None else dict(b),
                        )
                    )
    return differences
