"""Every version of every alert, in memory, rebuilt from the alerts topic at start (the
alerter never reads ClickHouse), and the CAP message each version becomes: the first
firing version of an episode is an ``Alert``, later firing versions ``Update``s, the
resolution a ``Cancel`` (reports retracted or the spike over), each referencing the
earlier messages of its episode.

A message is *sent* when the stream wrote that alert version (its record's time), not at
the alert's own times, which are event times (a replay of 2016 reports raises 2016
alerts today). A version written twice keeps its first time."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from schemas import Alert
from services.alerter.replay import record_time

MsgType = Literal["Alert", "Update", "Cancel"]


@dataclass(frozen=True, slots=True)
class CapMessage:
    alert: Alert
    identifier: str
    msg_type: MsgType
    sent: datetime
    references: tuple[tuple[str, datetime], ...]
    """(identifier, sent) of the earlier messages of the same episode, oldest first."""


def identifier(alert: Alert) -> str:
    """The CAP identifier of one alert version (no spaces, commas or reserved characters)."""
    return f"truce-{alert.fingerprint}-{alert.version}"


class AlertHistory:
    """Thread-safe: filled by the consumer loop, read by the HTTP handlers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._versions: dict[str, dict[int, tuple[Alert, datetime]]] = {}
        self._messages: dict[str, list[CapMessage]] | None = {}

    def add(self, alert: Alert, sent: datetime) -> None:
        with self._lock:
            versions = self._versions.setdefault(alert.fingerprint, {})
            known = versions.get(alert.version)
            versions[alert.version] = (alert, min(sent, known[1]) if known else sent)
            self._messages = None  # derived lazily; the versions are the truth

    def add_record(self, record: Any) -> None:
        """A raw alerts record (undecodable ones are not history)."""
        try:
            alert = Alert.model_validate_json(record.value)
        except ValueError:
            return
        self.add(alert, record_time(record))

    def messages(self) -> list[CapMessage]:
        """Every CAP message, newest first."""
        by_fingerprint = self._derived()
        found = [m for messages in by_fingerprint.values() for m in messages]
        return sorted(found, key=lambda m: (m.sent, m.alert.version, m.identifier), reverse=True)

    def current(self) -> list[Alert]:
        """The latest version of every alert."""
        with self._lock:
            return [v[max(v)][0] for v in self._versions.values() if v]

    def message(self, ident: str) -> CapMessage | None:
        fingerprint = ident.removeprefix("truce-").rpartition("-")[0]
        for message in self._derived().get(fingerprint, []):
            if message.identifier == ident:
                return message
        return None

    def _derived(self) -> dict[str, list[CapMessage]]:
        with self._lock:
            if self._messages is None:
                self._messages = {
                    fingerprint: _episode_messages(sorted(v.values(), key=lambda a: a[0].version))
                    for fingerprint, v in self._versions.items()
                }
            return self._messages


def _episode_messages(versions: list[tuple[Alert, datetime]]) -> list[CapMessage]:
    messages: list[CapMessage] = []
    episode: list[tuple[str, datetime]] = []
    for alert, sent in versions:
        if alert.state == "resolved":
            msg_type: MsgType = "Cancel"
        elif episode:
            msg_type = "Update"
        else:
            msg_type = "Alert"
        ident = identifier(alert)
        messages.append(CapMessage(alert, ident, msg_type, sent, tuple(episode)))
        episode = [] if alert.state == "resolved" else [*episode, (ident, sent)]
    return messages
