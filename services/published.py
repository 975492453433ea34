"""Reading back the weekly metrics the query API publishes, and comparing them with another
count (the demo scenario's own, or the same API before a rebuild)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import httpx

from core.errors import TruceError


@dataclass
class ComplianceRow:
    violations: int = 0
    violations_verified: int = 0
    violations_exempt: int = 0
    killed: int = 0
    injured: int = 0


@dataclass
class AccessRow:
    deliveries_completed: int = 0
    deliveries_partial: int = 0
    deliveries_blocked: int = 0
    deliveries_cancelled: int = 0
    beneficiaries: int = 0
    requests_submitted: int = 0
    requests_approved: int = 0
    requests_denied: int = 0
    requests_withdrawn: int = 0


def row_dict(row: ComplianceRow | AccessRow) -> dict[str, int]:
    return {f.name: getattr(row, f.name) for f in fields(row)}


@dataclass
class MetricsSet:
    compliance: dict[str, dict[tuple[str, str], ComplianceRow]]
    """week → (area, party) → row, only rows with any violation (as the API lists them)."""
    access: dict[str, dict[str, AccessRow]]
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


def fetch_published(client: QueryClient, weeks: list[str]) -> MetricsSet:
    """The published weekly metrics of ``weeks``, in the expectation's shape."""
    compliance: dict[str, dict[tuple[str, str], ComplianceRow]] = {}
    access: dict[str, dict[str, AccessRow]] = {}
    for week in weeks:
        rows = client.json("/v1/metrics/weekly", week=week)["rows"]
        if rows:
            compliance[week] = {
                (r["area"], r["party"]): ComplianceRow(**_counts(r, ComplianceRow)) for r in rows
            }
        rows = client.json("/v1/metrics/access", week=week)["rows"]
        if rows:
            access[week] = {r["area"]: AccessRow(**_counts(r, AccessRow)) for r in rows}
    return MetricsSet(compliance=compliance, access=access)


def _counts(row: dict[str, Any], shape: type[ComplianceRow | AccessRow]) -> dict[str, int]:
    return {f.name: int(row[f.name]) for f in fields(shape)}


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
                            row_dict(a) if a else None,
                            row_dict(b) if b else None,
                        )
                    )
    return differences
