"""A notification: one message to one receiver about one group of alerts, with the
idempotency key that identifies it on every attempt and after any restart."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from schemas import Alert
from services.alerter.history import MsgType
from services.alerter.labels import alert_labels
from services.alerter.offsets import RecordRef
from services.alerter.wording import area_name, headline, links, party_name, rule_text

ALERTMANAGER_ZERO_TIME = "0001-01-01T00:00:00Z"
"""Alertmanager's ``endsAt`` of an alert that has not ended."""


@dataclass(frozen=True, slots=True)
class Item:
    alert: Alert
    msg_type: MsgType


def idempotency_key(receiver: str, items: list[Item], repeat: int) -> str:
    """Derived from what is said (receiver, each alert's fingerprint, version and state,
    and the repeat number of a reminder), never from when: a redelivery after a restart
    has the same key."""
    said = sorted((i.alert.fingerprint, i.alert.version, i.alert.state) for i in items)
    encoded = json.dumps([receiver, said, repeat], separators=(",", ":"))
    return hashlib.sha256(encoded.encode()).hexdigest()[:32]


@dataclass(slots=True)
class Notification:
    receiver: str
    group_labels: dict[str, str]
    items: list[Item]
    refs: list[RecordRef] = field(default_factory=list)
    repeat: int = 0
    enqueued_at: float = 0.0
    key: str = ""

    def __post_init__(self) -> None:
        self.key = idempotency_key(self.receiver, self.items, self.repeat)

    @property
    def status(self) -> str:
        return "firing" if any(i.alert.state == "firing" for i in self.items) else "resolved"

    def payload(self, base_url: str) -> dict[str, Any]:
        """The JSON body of Truce-format webhooks; ``base_url`` is the query service's."""
        return {
            "version": "1",
            "idempotency_key": self.key,
            "receiver": self.receiver,
            "status": self.status,
            "repeat": self.repeat,
            "group_labels": self.group_labels,
            "alerts": [
                {
                    "msg_type": item.msg_type,
                    **item.alert.model_dump(mode="json"),
                    "labels": alert_labels(item.alert),
                    **_words(item.alert, base_url),
                }
                for item in self.items
            ],
        }

    def alertmanager_payload(self, base_url: str) -> dict[str, Any]:
        """The body Prometheus Alertmanager's webhook receiver sends (version 4), so
        receivers and bridges written for Alertmanager take Truce's alerts unchanged."""
        alerts = [_alertmanager_alert(item.alert, base_url) for item in self.items]
        common_labels = _common([a["labels"] for a in alerts])
        group = ", ".join(f'{k}="{v}"' for k, v in sorted(self.group_labels.items()))
        return {
            "version": "4",
            "groupKey": f"{{}}:{{{group}}}",
            "truncatedAlerts": 0,
            "status": self.status,
            "receiver": self.receiver,
            "groupLabels": self.group_labels,
            "commonLabels": common_labels,
            "commonAnnotations": _common([a["annotations"] for a in alerts]),
            "externalURL": base_url.rstrip("/"),
            "alerts": alerts,
        }


def _words(alert: Alert, base_url: str) -> dict[str, Any]:
    found = links(alert, base_url)
    return {
        "headline": headline(alert),
        "area_name": area_name(alert.area),
        "party_name": party_name(alert.party) if alert.party else "",
        "runbook": rule_text(alert.rule).runbook,
        "dashboard_url": found.dashboard,
        "report_urls": list(found.reports),
    }


def _alertmanager_alert(alert: Alert, base_url: str) -> dict[str, Any]:
    words = _words(alert, base_url)
    labels = {"alertname": alert.rule, **{k: v for k, v in alert_labels(alert).items() if v}}
    return {
        "status": alert.state,
        "labels": labels,
        "annotations": {
            "summary": words["headline"],
            "description": alert.summary,
            "runbook": words["runbook"],
            "dashboard": words["dashboard_url"],
        },
        "startsAt": alert.starts_at.isoformat().replace("+00:00", "Z"),
        "endsAt": (
            alert.updated_at.isoformat().replace("+00:00", "Z")
            if alert.state == "resolved"
            else ALERTMANAGER_ZERO_TIME
        ),
        "generatorURL": words["dashboard_url"],
        "fingerprint": alert.fingerprint,
    }


def _common(maps: list[dict[str, str]]) -> dict[str, str]:
    """The pairs every map shares (Alertmanager's common labels and annotations)."""
    if not maps:
        return {}
    shared = dict(maps[0])
    for other in maps[1:]:
        shared = {k: v for k, v in shared.items() if other.get(k) == v}
    return shared
