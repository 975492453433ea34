"""What the alerter has already done, rebuilt from the deliveries topic at start.

It answers two questions after a restart: was this (receiver, alert version) already
delivered, dead-lettered or silenced (then a redelivered alerts record is skipped, so a
restart sends no duplicate), and what did a receiver last hear about a fingerprint (so
the next message is an Update or a Cancel rather than a fresh Alert)."""

from __future__ import annotations

import contextlib

from core.kafka_access import Cluster
from schemas import AlertDelivery
from services.alerter.replay import replay, values

TERMINAL = frozenset({"delivered", "dead_lettered", "silenced"})


class DeliveryLedger:
    def __init__(self) -> None:
        self._done: set[tuple[str, str, int]] = set()
        self._told: dict[tuple[str, str], str] = {}

    def record(self, delivery: AlertDelivery) -> None:
        if delivery.outcome not in TERMINAL:
            return
        self._done.add((delivery.receiver, delivery.fingerprint, delivery.alert_version))
        if delivery.outcome != "silenced":
            self._told[(delivery.receiver, delivery.fingerprint)] = delivery.alert_state

    def handled(self, receiver: str, fingerprint: str, version: int) -> bool:
        return (receiver, fingerprint, version) in self._done

    def last_told(self, receiver: str, fingerprint: str) -> str | None:
        """``firing``/``resolved`` as last notified (delivered or dead-lettered), or None."""
        return self._told.get((receiver, fingerprint))

    def tell(self, receiver: str, fingerprint: str, state: str) -> None:
        self._told[(receiver, fingerprint)] = state

    def load(self, bootstrap: Cluster, topic: str) -> None:
        """Read the whole deliveries topic (undecodable records are skipped)."""

        def handle(value: bytes) -> None:
            with contextlib.suppress(ValueError):
                self.record(AlertDelivery.model_validate_json(value))

        replay(bootstrap, topic, values(handle))
