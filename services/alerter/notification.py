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

    def payload(self) -> dict[str, Any]:
        """The JSON body of webhooks (and the source of every other channel's text)."""
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
                }
                for item in self.items
            ],
        }
