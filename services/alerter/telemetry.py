"""Prometheus metrics of the alerter, per receiver."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class AlerterMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.consumed = Counter(
            "truce_alerter_alerts_consumed_total", "Alert records read from the alerts topic.",
            registry=r,
        )  # fmt: skip
        self.sent = Counter(
            "truce_alerter_notifications_sent_total", "Notifications delivered.", ["receiver"],
            registry=r,
        )  # fmt: skip
        self.failed = Counter(
            "truce_alerter_delivery_failures_total", "Failed delivery attempts.", ["receiver"],
            registry=r,
        )  # fmt: skip
        self.retried = Counter(
            "truce_alerter_delivery_retries_total", "Attempts after a failed one.", ["receiver"],
            registry=r,
        )  # fmt: skip
        self.dead_lettered = Counter(
            "truce_alerter_notifications_dead_lettered_total",
            "Notifications given up after the last attempt.", ["receiver"], registry=r,
        )  # fmt: skip
        self.silenced = Counter(
            "truce_alerter_alerts_silenced_total", "Alerts muted by a silence.", ["receiver"],
            registry=r,
        )  # fmt: skip
        self.queued = Gauge(
            "truce_alerter_queue_depth", "Notifications waiting for a receiver.", ["receiver"],
            registry=r,
        )  # fmt: skip
        self.seconds = Histogram(
            "truce_alerter_delivery_seconds", "From queueing to delivery, per receiver.",
            ["receiver"], registry=r,
        )  # fmt: skip
        self.in_flight = Gauge(
            "truce_alerter_records_in_flight", "Alert records consumed but not yet committable.",
            registry=r,
        )  # fmt: skip
        self.config_reload_failures = Gauge(
            "truce_alerter_config_reload_failures", "Routing file edits refused since start.",
            registry=r,
        )  # fmt: skip
