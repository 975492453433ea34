"""The labels of an alert that routes, groups and silences match on (governorate comes
from the reference data, so a route can cover a whole governorate)."""

from __future__ import annotations

from typing import get_args

from schemas import Alert, areas, parties
from services.alerter.wording import RULES


def alert_labels(alert: Alert) -> dict[str, str]:
    area = areas().get(alert.area)
    return {
        "rule": alert.rule,
        "area": alert.area,
        "governorate": area.governorate if area is not None else "",
        "party": alert.party,
        "severity": alert.severity,
    }


def known_values(label: str) -> frozenset[str]:
    """Every value ``label`` can take, so a silence on a misspelled one is refused."""
    if label == "rule":
        return frozenset(RULES)
    if label == "area":
        return frozenset(areas())
    if label == "governorate":
        return frozenset(area.governorate for area in areas().values())
    if label == "party":
        return frozenset(parties())
    if label == "severity":
        return frozenset(get_args(Alert.model_fields["severity"].annotation))
    return frozenset()
