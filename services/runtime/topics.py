"""Creating every Truce topic with its intended configuration before any process uses it,
so no consumer's metadata request auto-creates one with the broker's defaults; and checking
the ones that exist against the replication settings."""

from __future__ import annotations

from dataclasses import astuple

from core.kafka import admin_client, ensure_topics, replication, replication_mismatches
from core.kafka_access import kafka_access
from core.settings import Settings
from schemas import group_names, log_heads_topic, silences_topic, topic_names


def ensure_all_topics(settings: Settings) -> list[str]:
    """Create the missing topics; the replication mismatches of the others (logged)."""
    names = topic_names(settings.topic_prefix)
    return ensure_topics(
        kafka_access(settings),
        astuple(names),
        partitions=settings.kafka_partitions,
        compacted=[names.events, names.metrics],
        replication=replication(settings),
    )


def truce_topics(settings: Settings) -> list[str]:
    """Every topic Truce creates that exists now: its own, the alerter's silences, the log's
    signed heads and the stream workers' table changelogs (``<app id>-<table>-changelog``)."""
    prefix = settings.topic_prefix
    wanted = {*astuple(topic_names(prefix)), silences_topic(prefix), log_heads_topic(prefix)}
    app_id = group_names(settings.topic_prefix).streams
    admin = admin_client(kafka_access(settings))
    try:
        existing = admin.list_topics()
    finally:
        admin.close()
    return sorted(
        name
        for name in existing
        if name in wanted or (name.startswith(f"{app_id}-") and name.endswith("-changelog"))
    )


def topic_mismatches(settings: Settings) -> list[str]:
    """How the existing Truce topics differ from the replication settings (`truce status`)."""
    return replication_mismatches(
        kafka_access(settings), truce_topics(settings), replication(settings)
    )
