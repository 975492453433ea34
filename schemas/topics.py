"""Kafka topic names: the only place in the code base where they are written.

Tests and parallel deployments sharing one cluster get their own namespace through a
prefix, so every component asks :func:`topic_names` instead of using the constants."""

from __future__ import annotations

from dataclasses import astuple, dataclass

REPORTS = "truce.reports"
"""Every accepted revision as received (the system of record)."""
FOLDED = "truce.folded"
"""Stream-internal: current report states re-keyed by area for classification."""
VERDICTS = "truce.verdicts"
"""Stream-internal: each verification's current verdict about each report it ever named,
keyed by that report (so a moved subject reaches its old partition too)."""
EVENTS = "truce.events"
"""Canonical reports (current state and classification), compacted."""
METRICS = "truce.metrics"
"""Aggregate updates (weekly rows), compacted."""
ALERTS = "truce.alerts"
"""Alerts raised by the spike rules."""
DEADLETTER = "truce.deadletter"
"""Records refused downstream (undecodable, conflicting, foreign)."""
DELIVERIES = "truce.alert-deliveries"
"""The alerter's delivery log (one record per attempt outcome)."""
EDITIONS = "truce.editions"
"""Published editions of the weekly report, keyed by week: a system of record like the
reports topic (never rebuilt, infinite retention)."""
SILENCES = "truce.alert-silences"
"""Alert silences, compacted by silence id (the alerter's own state; see silences_topic)."""
LOG_HEADS = "truce.log-heads"
"""Signed tree heads of the tamper-evident log, one partition, never compacted nor dropped:
with the reports topic they are the system of record of the Merkle tree (see log_heads_topic)."""


@dataclass(frozen=True, slots=True)
class TopicNames:
    """The full set of topic names under one prefix."""

    reports: str
    folded: str
    verdicts: str
    events: str
    metrics: str
    alerts: str
    deadletter: str
    deliveries: str
    editions: str

    def all(self) -> tuple[str, ...]:
        """Every topic, e.g. to create or delete them together."""
        return tuple(str(name) for name in astuple(self))


def topic_names(prefix: str = "") -> TopicNames:
    """Topic names with ``prefix`` prepended verbatim ("t123." gives "t123.truce.reports")."""
    return TopicNames(
        reports=prefix + REPORTS,
        folded=prefix + FOLDED,
        verdicts=prefix + VERDICTS,
        events=prefix + EVENTS,
        metrics=prefix + METRICS,
        alerts=prefix + ALERTS,
        deadletter=prefix + DEADLETTER,
        deliveries=prefix + DELIVERIES,
        editions=prefix + EDITIONS,
    )


STREAMS_GROUP = "truce-streams"
"""The stream worker's Faust application id (its consumer group)."""
STORE_SINK_GROUP = "truce-store-sink"
"""The store's ClickHouse sink consumer group."""
ALERTER_GROUP = "truce-alerter"
"""The alerter's consumer group on the alerts topic."""


@dataclass(frozen=True, slots=True)
class GroupNames:
    streams: str
    store_sink: str
    alerter: str


def group_names(prefix: str = "") -> GroupNames:
    """Consumer group names under the same prefix as the topics."""
    return GroupNames(
        streams=prefix + STREAMS_GROUP,
        store_sink=prefix + STORE_SINK_GROUP,
        alerter=prefix + ALERTER_GROUP,
    )


def group_inputs(prefix: str = "") -> dict[str, tuple[str, tuple[str, ...]]]:
    """Each consumer group of the stack, by role, with the topics it reads: where its lag
    is measured (`truce status`, `/metrics`, waiting until the pipeline is idle)."""
    names, groups = topic_names(prefix), group_names(prefix)
    return {
        "streams": (groups.streams, (names.reports, names.verdicts, names.folded)),
        "store": (
            groups.store_sink,
            (
                names.reports,
                names.events,
                names.metrics,
                names.deadletter,
                names.alerts,
                names.deliveries,
                names.editions,
            ),
        ),
        "alerter": (groups.alerter, (names.alerts,)),
    }


def silences_topic(prefix: str = "") -> str:
    """The alerter's silences topic under ``prefix``. Kept out of :class:`TopicNames`: only
    the alerter (which creates it, compacted) and the CLI use it, and nothing sinks it."""
    return prefix + SILENCES


def log_heads_topic(prefix: str = "") -> str:
    """The signed tree heads topic under ``prefix``. Kept out of :class:`TopicNames`: it has
    one partition (the heads' one order), only the store writes and reads it, nothing sinks
    it, and `truce rebuild` never drops it."""
    return prefix + LOG_HEADS
