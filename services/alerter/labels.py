"""The labels of an alert that routes, groups and silences match on (governorate comes
from the reference data, so a route can cover a whole governorate)."""

from __future__ import annotations

from schemas import Alert, areas


def alert_labels(alert: Alert) -> dict[str, str]:
    area = areas().get(alert.area)
    return {
        "rule": alert.rule,
        "area": alert.area,
        "governorate": area.governorate if area is not None else "",
        "party": alert.party,
        "severity": alert.severity,
    }
